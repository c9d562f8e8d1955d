"""Sets of Kafka offsets as sorted, disjoint, half-open ranges ``[(start, stop), ...]``, merged where they touch.

A partition is read in order, so what a table has counted of it is one range, or a few after a backfill of a
window: the ledger keeps these lists small.
"""

from typing import Iterable, List, Sequence, Tuple

OffsetRange = Tuple[int, int]  # [start, stop)


def merged(ranges: Iterable[OffsetRange]) -> List[OffsetRange]:
  """The same offsets as sorted, disjoint ranges, adjacent ones joined; empty ranges dropped."""
  result: List[List[int]] = []
  for start, stop in sorted(r for r in ranges if r[0] < r[1]):
    if result and start <= result[-1][1]:
      result[-1][1] = max(result[-1][1], stop)
    else:
      result.append([start, stop])
  return [(start, stop) for start, stop in result]


def union(*sets: Sequence[OffsetRange]) -> List[OffsetRange]:
  return merged(r for ranges in sets for r in ranges)


def minus(ranges: Sequence[OffsetRange], taken: Sequence[OffsetRange]) -> List[OffsetRange]:
  """The offsets of ``ranges`` that are not in ``taken``."""
  result = []
  taken = merged(taken)
  for start, stop in merged(ranges):
    for taken_start, taken_stop in taken:
      if taken_stop <= start or taken_start >= stop:
        continue
      if taken_start > start:
        result.append((start, taken_start))
      start = max(start, taken_stop)
      if start >= stop:
        break
    if start < stop:
      result.append((start, stop))
  return result


def size(ranges: Sequence[OffsetRange]) -> int:
  return sum(stop - start for start, stop in ranges)


def contains(ranges: Sequence[OffsetRange], offset: int) -> bool:
  return any(start <= offset < stop for start, stop in ranges)


def covers(ranges: Sequence[OffsetRange], start: int, stop: int) -> bool:
  """Whether one of the (merged) ranges holds all of [start, stop)."""
  return any(first <= start and stop <= last for first, last in ranges)


def describe(ranges: Sequence[OffsetRange]) -> str:
  """``[0, 500), [700, 900)`` for logs and messages."""
  return ', '.join(f'[{start}, {stop})' for start, stop in ranges) or 'none'
