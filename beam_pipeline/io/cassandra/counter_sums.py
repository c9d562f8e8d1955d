"""A bundle's increments summed per counter key.

Increments are summed per date (the table's partition), then per site_id, so each key gets one UPDATE per bundle.
A sum that would pass the 64-bit range of an increment is closed and a new one begun, so a key may be written in
parts. The batches as read are kept only for naming the offsets of a failed bundle.
"""

import datetime
from typing import Dict, List, Tuple

from beam_pipeline.records import IncrementBatch
from beam_pipeline.transforms.validate import MAX_COUNT

CounterKey = Tuple[datetime.date, int]  # (date, site_id)


class KeySum:
  """The sum of some of one key's increments in a bundle, and how many messages it holds."""
  __slots__ = ('views', 'clicks', 'messages')

  def __init__(self):
    self.views = 0
    self.clicks = 0
    self.messages = 0


CounterWrite = Tuple[CounterKey, KeySum]


class BundleSums:
  """Sums the increments of one bundle per key; lists the writes they make."""

  def __init__(self):
    self._batches: List[IncrementBatch] = []
    self._by_date: Dict[datetime.date, Dict[int, KeySum]] = {}
    self._closed: List[CounterWrite] = []  # parts that reached the 64-bit limit

  def add(self, increments: IncrementBatch) -> None:
    self._batches.append(increments)
    by_date, closed = self._by_date, self._closed
    for day, site_id, views, clicks in zip(increments.dates, increments.site_ids, increments.views,
                                           increments.clicks):
      by_site = by_date.get(day)
      if by_site is None:
        by_site = by_date[day] = {}
      key_sum = by_site.get(site_id)
      if key_sum is None:
        key_sum = by_site[site_id] = KeySum()
      elif key_sum.views + views > MAX_COUNT or key_sum.clicks + clicks > MAX_COUNT:
        # A bigint increment cannot hold the sum: what we have becomes a write of its own.
        closed.append(((day, site_id), key_sum))
        key_sum = by_site[site_id] = KeySum()
      key_sum.views += views
      key_sum.clicks += clicks
      key_sum.messages += 1

  def writes(self) -> List[CounterWrite]:
    return self._closed + [((day, site_id), key_sum) for day, by_site in self._by_date.items()
                           for site_id, key_sum in by_site.items()]

  def offset_ranges(self) -> str:
    """The offset range of each partition in this bundle, for the message of a failed bundle."""
    spans: Dict[Tuple[str, int], List[int]] = {}
    for batch in self._batches:
      if not batch.positions:
        continue
      records = batch.records
      low, high = records.offsets[batch.positions[0]], records.offsets[batch.positions[-1]]
      span = spans.setdefault((records.topic, records.partition), [low, high])
      span[0], span[1] = min(span[0], low), max(span[1], high)
    return ', '.join(f'{topic}[{partition}] {low}..{high}'
                     for (topic, partition), (low, high) in sorted(spans.items())) or 'none'
