"""Event-date ranges: ``--dates 2017-02-01..2017-02-07``, a single ``2017-02-04``, or a comma list."""

import datetime
from typing import List, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_pipeline import metrics
from beam_pipeline.records import IncrementBatch

MAX_DATES = 3660


def parse_dates(text: str, today: datetime.date = None) -> List[datetime.date]:
  """The dates named by ``text``; ``yesterday`` and ``today`` are understood (UTC). Raises ValueError."""
  today = today or datetime.datetime.now(datetime.timezone.utc).date()
  named = {'today': today, 'yesterday': today - datetime.timedelta(days=1)}
  dates = set()
  for part in (p.strip() for p in text.split(',')):
    if not part:
      raise ValueError(f'empty date in {text!r}')
    first, separator, last = part.partition('..')
    start = named.get(first) or _day(first)
    end = (named.get(last) or _day(last)) if separator else start
    if end < start:
      raise ValueError(f'{part!r}: the range ends before it starts')
    if (end - start).days >= MAX_DATES:
      raise ValueError(f'{part!r} spans more than {MAX_DATES} days')
    dates.update(start + datetime.timedelta(days=i) for i in range((end - start).days + 1))
  return sorted(dates)


def _day(text: str) -> datetime.date:
  try:
    if len(text) != 10:
      raise ValueError
    return datetime.date.fromisoformat(text)
  except ValueError:
    raise ValueError(f'{text!r} is not a date: use YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD, today or yesterday') from None


def day_start_ms(day: datetime.date) -> int:
  return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc).timestamp() * 1000)


class _KeepDatesFn(beam.DoFn):

  def __init__(self, dates: Sequence[datetime.date]):
    self._dates = frozenset(dates)
    self._skipped = Metrics.counter(metrics.NAMESPACE, metrics.SKIPPED_OTHER_DATES)

  def process(self, increments: IncrementBatch):
    dates = self._dates
    kept = [index for index, day in enumerate(increments.dates) if day in dates]
    if len(kept) < len(increments):
      self._skipped.inc(len(increments) - len(kept))
      increments = increments.select(kept)
    if kept:
      yield increments


class KeepDates(beam.PTransform):
  """Keeps the increments (of each IncrementBatch) of the given event dates; the others are counted as skipped,
  not lost."""

  def __init__(self, dates: Sequence[datetime.date]):
    super().__init__()
    if not dates:
      raise ValueError('KeepDates needs at least one date')
    self._dates = list(dates)

  def expand(self, increments):
    return increments | 'KeepRequestedDates' >> beam.ParDo(_KeepDatesFn(self._dates))
