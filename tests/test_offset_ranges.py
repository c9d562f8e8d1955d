"""Offset range arithmetic of the offset ledger, checked against plain sets of offsets on generated ranges."""

from hypothesis import given, strategies as st

from beam_pipeline.io.cassandra import offset_ranges

_RANGES = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), max_size=8)


def _offsets(ranges) -> set:
  return {offset for start, stop in ranges for offset in range(start, stop)}


def _is_canonical(ranges) -> bool:
  return all(start < stop for start, stop in ranges) and all(
      ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))


@given(_RANGES)
def test_merged_ranges_hold_the_same_offsets_sorted_disjoint_and_joined(ranges):
  result = offset_ranges.merged(ranges)

  assert _offsets(result) == _offsets(ranges) and _is_canonical(result)


@given(_RANGES, _RANGES)
def test_minus_and_union_are_set_difference_and_union(ranges, taken):
  difference, union = offset_ranges.minus(ranges, taken), offset_ranges.union(ranges, taken)

  assert _offsets(difference) == _offsets(ranges) - _offsets(taken) and _is_canonical(difference)
  assert _offsets(union) == _offsets(ranges) | _offsets(taken) and _is_canonical(union)
  assert offset_ranges.size(difference) == len(_offsets(difference))


@given(_RANGES, st.integers(0, 60), st.integers(1, 10))
def test_covers_is_set_inclusion(ranges, start, length):
  ranges = offset_ranges.merged(ranges)

  assert offset_ranges.covers(ranges, start, start + length) == (
      set(range(start, start + length)) <= _offsets(ranges))


def test_a_partition_read_in_order_stays_one_range():
  counted = []
  for start in range(0, 1000, 100):
    counted = offset_ranges.union(counted, [(start, start + 100)])

  assert counted == [(0, 1000)] and offset_ranges.describe(counted) == '[0, 1000)'
