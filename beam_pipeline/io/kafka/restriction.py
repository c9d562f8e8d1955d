"""The restriction a partition is read under: an offset range that splits only to checkpoint."""

from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.transforms.core import RestrictionProvider

from beam_pipeline.records import UNBOUNDED_STOP_OFFSET, PartitionRead


class CheckpointOnlyOffsetTracker(OffsetRestrictionTracker):
  """Splits only to checkpoint: a partition is read in order by one reader at a time.

  Kafka offsets are committed per partition as a single position, which is only correct if the ranges
  before it were processed; splitting a range in the middle for parallel reads would break that.
  """

  def __init__(self, offset_range: OffsetRange, bounded: bool):
    super().__init__(offset_range)
    self._bounded = bounded

  def try_split(self, fraction_of_remainder):
    if fraction_of_remainder != 0:
      return None
    return super().try_split(0)

  def is_bounded(self):
    return self._bounded


class PartitionRestrictionProvider(RestrictionProvider):

  def initial_restriction(self, element: PartitionRead) -> OffsetRange:
    return OffsetRange(element.start_offset, element.stop_offset)

  def create_tracker(self, restriction: OffsetRange) -> CheckpointOnlyOffsetTracker:
    return CheckpointOnlyOffsetTracker(restriction, bounded=restriction.stop != UNBOUNDED_STOP_OFFSET)

  def restriction_size(self, element, restriction: OffsetRange) -> int:
    if restriction.stop == UNBOUNDED_STOP_OFFSET:
      return 1  # the backlog of a live partition is unknown here; any positive size keeps it scheduled
    return restriction.size()
