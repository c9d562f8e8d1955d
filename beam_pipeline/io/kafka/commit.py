"""Moving the consumer group's offsets only past what is durable: a streaming read commits when the runner
finalizes a bundle; a bounded catch-up commits once, at the end, after every stage that must be durable first."""

import logging
import threading
from typing import Dict, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_pipeline import metrics
from beam_pipeline.io.kafka.config import KafkaReadConfig
from beam_pipeline.io.kafka.fetch import OffsetsError

_LOGGER = logging.getLogger(__name__)
_COMMITTED_TIMEOUT_S = 5.0
_COMMIT_TIMEOUT_S = 10.0


class _RunCommits:
  """The offsets one run of the job committed from this process, by group and partition, and the lock that orders
  each partition's commits.

  Every commit checks the offset under its partition's lock, so that the group never moves back: Flink finalizes
  all the bundles of a checkpoint at once, and the SDK harness runs their callbacks on concurrent threads, each
  holding its own instance of the reader; an older bundle's commit that went out after a newer one's left a
  partition's group offset behind what was written, for good once no new message came. One lock per partition: a
  coordinator that does not answer holds up that partition's commits (for _COMMIT_TIMEOUT_S at most), not every
  reader's in the process. Kept per run: a worker that serves a later job (Beam's worker pools are reused) must not
  refuse that job's commits because an earlier job, before a group reset, committed further.
  """

  def __init__(self):
    self._guard = threading.Lock()
    self._offsets: Dict[tuple, int] = {}
    self._locks: Dict[tuple, threading.Lock] = {}

  def lock(self, key: tuple) -> threading.Lock:
    with self._guard:
      return self._locks.setdefault(key, threading.Lock())

  def offset(self, key: tuple) -> Optional[int]:
    return self._offsets.get(key)

  def remember(self, key: tuple, committed: int) -> None:
    with self._guard:
      self._offsets[key] = max(committed, self._offsets.get(key, -1))


_RUNS: Dict[str, _RunCommits] = {}
_RUNS_GUARD = threading.Lock()


def _run_commits(run_id: str) -> _RunCommits:
  with _RUNS_GUARD:
    return _RUNS.setdefault(run_id, _RunCommits())


class FinalizedOffsetCommitter:
  """Commits a streaming reader's offsets, from the bundle finalization callbacks the runner calls once the
  bundle's output is durable. The fetcher is shared with the reader, hence the lock."""

  def __init__(self, fetcher, lock: threading.Lock, config: KafkaReadConfig, member=None):
    self._fetcher = fetcher
    self._lock = lock
    self._consumer_group = config.consumer_group
    self._run = _run_commits(config.run_id)
    self._member = member  # a membership.MemberClient: the copy's group member commits (Kafka refuses others)
    self._failed = Metrics.counter(metrics.NAMESPACE, metrics.OFFSET_COMMITS_FAILED)

  def committed_offset(self, tp) -> Optional[int]:
    """The group's offset for ``tp`` as this run last committed it or found it committed (the group's next read);
    None before either."""
    return self._run.offset((self._consumer_group, tp))

  def is_behind(self, tp, next_offset: int) -> bool:
    """Whether the group's offset for ``tp``, as far as this run knows, is below ``next_offset``."""
    committed = self.committed_offset(tp)
    return committed is None or committed < next_offset

  def catch_up(self, tp, next_offset: int) -> None:
    """Commits ``next_offset`` unless the group is there or beyond already (another process may have committed
    more: a job restored from an older checkpoint must not move the group back)."""
    if not self.is_behind(tp, next_offset):
      return  # an earlier bundle's callback caught up already
    try:
      with self._lock:
        committed = self._fetcher.committed(tp, _COMMITTED_TIMEOUT_S)
    except OffsetsError as error:
      _LOGGER.warning('reading the committed offset of %s for group %r failed: %s', tp, self._consumer_group, error)
      return
    if committed is not None and committed >= next_offset:
      self._run.remember((self._consumer_group, tp), committed)
      return
    self.commit(tp, next_offset)

  def commit(self, tp, next_offset: int) -> None:
    """The group may now move past what the finalized bundle read (never backwards)."""
    key = (self._consumer_group, tp)
    with self._run.lock(key):
      if not self.is_behind(tp, next_offset):
        return  # a later bundle of this partition committed already
      try:
        if self._member is not None:
          if not self._member.commit(tp.topic, tp.partition, next_offset):
            # Not held, so not committed: remembered, it would stop this reader from sending the same offset
            # once the copy holds the partition, and letting the partition go waits for that commit.
            return
        else:
          with self._lock:
            self._fetcher.commit(tp, next_offset, _COMMIT_TIMEOUT_S)
        self._run.remember(key, next_offset)
      except (OffsetsError, OSError) as error:
        # Losing a commit only means a restart replays a little more; the data is already counted.
        self._failed.inc()
        _LOGGER.warning('committing offset %d for %s to group %r failed: %s', next_offset, tp,
                        self._consumer_group, error)


class _CommitPlannedOffsetsFn(beam.DoFn):
  """Commits each planned partition's stop offset to the group; runs once, after every stage it waits on."""

  def __init__(self, config: KafkaReadConfig):
    self._config = config

  def process(self, unused_impulse, planned, *finished_stages):
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata
    del finished_stages  # only waited for: a side input is complete when its stage has finished everywhere
    offsets = {TopicPartition(read.topic, read.partition): OffsetAndMetadata(read.stop_offset, '', -1)
               for read in planned}
    consumer = self._config.connected_consumer('committer')
    try:
      # A failure fails the run: what it counted stays counted, and the next catch-up reads it again.
      consumer.commit(offsets)
    finally:
      consumer.close(autocommit=False)
    for tp, offset in sorted(offsets.items()):
      _LOGGER.info('%s: committed offset %d to group %r', tp, offset.offset, self._config.consumer_group)


class CommitPlannedOffsets(beam.PTransform):
  """After a bounded catch-up, moves the group to the offsets the read planned to stop at.

  ``finished`` are the outputs of every stage that must be durable first (the counter writes, the dead letters).
  They are side inputs of the one commit step, so every runner, batch or streaming, starts it only once those
  stages have finished all their bundles; if any bundle fails for good, the run fails and nothing is committed
  (the next run reads the range again: at-least-once). The commit needs no bundle finalization, which Flink does
  not run in batch mode.
  """

  def __init__(self, config: KafkaReadConfig, planned, finished):
    super().__init__()
    if not config.commits_at_end:
      raise ValueError('CommitPlannedOffsets commits a bounded read of a consumer group that commits offsets')
    self._config = config
    self._planned = planned
    self._finished = list(finished)

  def expand(self, pbegin):
    return (
        pbegin
        | 'Impulse' >> beam.Impulse()
        | 'Commit' >> beam.ParDo(_CommitPlannedOffsetsFn(self._config), beam.pvalue.AsList(self._planned),
                                 *(beam.pvalue.AsIter(stage) for stage in self._finished)))
