"""The restrictions the reader works under: a partition's offset range, which splits only to checkpoint, and the
positions reached in the topics a streaming job discovers (a topic pattern's new topics)."""

from typing import NamedTuple, Tuple

from apache_beam.io.iobase import RestrictionProgress, RestrictionTracker
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.transforms.core import RestrictionProvider

from beam_pipeline.records import UNBOUNDED_STOP_OFFSET, NewTopicsRead


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


class TopicPositions(NamedTuple):
  """Where reading the discovered topics got to: (topic, partition, next offset); a partition not listed is read
  from its first offset."""
  positions: Tuple[Tuple[str, int, int], ...] = ()

  def as_dict(self):
    return {(topic, partition): offset for topic, partition, offset in self.positions}


class TopicPositionsTracker(RestrictionTracker):
  """Claims ``((topic, partition), next offset)`` positions; never done (the topics are endless), and split only to
  checkpoint, the residual carrying on from every position reached."""

  def __init__(self, restriction: TopicPositions):
    self._positions = restriction.as_dict()
    self._checkpointed = False

  def current_restriction(self) -> TopicPositions:
    return TopicPositions(tuple(sorted((t, p, offset) for (t, p), offset in self._positions.items())))

  def try_claim(self, position) -> bool:
    if self._checkpointed:
      return False
    where, next_offset = position
    self._positions[where] = next_offset
    return True

  def try_split(self, fraction_of_remainder):
    if fraction_of_remainder != 0 or self._checkpointed:
      return None
    self._checkpointed = True
    reached = self.current_restriction()
    return reached, reached

  def current_progress(self) -> RestrictionProgress:
    return RestrictionProgress(completed=0, remaining=1)

  def check_done(self):
    pass  # an unbounded restriction is only ever checkpointed

  def is_bounded(self):
    return False


class PartitionRestrictionProvider(RestrictionProvider):

  def initial_restriction(self, element):
    if isinstance(element, NewTopicsRead):
      return TopicPositions()
    return OffsetRange(element.start_offset, element.stop_offset)

  def create_tracker(self, restriction):
    if isinstance(restriction, TopicPositions):
      return TopicPositionsTracker(restriction)
    return CheckpointOnlyOffsetTracker(restriction, bounded=restriction.stop != UNBOUNDED_STOP_OFFSET)

  def restriction_size(self, element, restriction) -> int:
    if isinstance(restriction, TopicPositions) or restriction.stop == UNBOUNDED_STOP_OFFSET:
      return 1  # the backlog of a live partition is unknown here; any positive size keeps it scheduled
    return restriction.size()
