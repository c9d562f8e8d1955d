"""ReadFromKafka in pure Python: a splittable DoFn over Kafka partitions, fetching with kafka-python (or
librdkafka, see fetch.py).

Beam's own ``apache_beam.io.kafka.ReadFromKafka`` is a Java cross-language transform; this one needs no JVM, so
the same graph runs on the Python runner locally, on Flink and on Dataflow.

Shape: ``Impulse -> plan one PartitionRead per partition -> Reshuffle -> read each partition (SDF)``.
Each partition's restriction is an offset range; the reader checkpoints (``defer_remainder``) every
``max_records_per_bundle`` records or ``max_bundle_seconds``. A streaming read commits the offsets it read to the
consumer group only when the runner finalizes the bundle. That waits for everything downstream because the runner
finalizes a bundle only after the bundle's output is durable, and the stages downstream of the read (parse, validate,
the counter write, the dead letters: no shuffle between them, which tests/test_graph_shape.py keeps) are fused
with it, so that output is theirs. A bounded read registers no finalizer (Flink runs batch jobs without bundle
finalization): a catch-up run commits the offsets it planned to stop at in a last stage, ``CommitPlannedOffsets``,
which the runner can only start once every stage it waits on has finished.
"""

import functools
import gc
import logging
import threading
import time
from typing import NamedTuple, Optional

import apache_beam as beam
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipeline import metrics
from beam_pipeline.io.kafka.commit import FinalizedOffsetCommitter
from beam_pipeline.errors import KafkaReadError
from beam_pipeline.io.kafka.config import FETCH_WAIT_MS, OFFSET_RESET_FAIL, KafkaReadConfig
from beam_pipeline.io.kafka.fetch import open_fetcher
from beam_pipeline.io.kafka.lag import PartitionRateLog
from beam_pipeline.io.kafka.membership import MemberClient
from beam_pipeline.io.kafka.growth import PARTITION_CHECK_INTERVAL_S, NewPartitionsWatch, NewTopicsWatch
from beam_pipeline.io.kafka.planning import PlanPartitionReadsFn, offset_outside_log_message
from beam_pipeline.io.kafka.restriction import PartitionRestrictionProvider
from beam_pipeline.records import NewTopicsRead, PartitionRead, RecordBatch

_LOGGER = logging.getLogger(__name__)
# Batches are emitted as ready-made windowed values: the reader's output is always in the global window, and
# this skips the window assignment Beam runs for each TimestampedValue.
_GLOBAL_WINDOWS = (GlobalWindow(),)
_GC_FIRST_GENERATION_THRESHOLD = 50000
# One poll hands over at most this many records. A client builds an object per message it hands over, all alive at
# once, so a bundle's worth in one poll made a large bundle's peak memory several times what the bundle keeps.
_MAX_RECORDS_PER_POLL = 50000
# One poll waits at most this long for data; it bounds how long an idle reader holds a bundle open.
_POLL_TIMEOUT_S = 0.5
# While another partition this reader holds has messages waiting, a partition that has none is polled this long at a
# time, and left as soon as its end is known to be reached: one reader reads its partitions one after another, so
# an idle partition's wait would hold up the backlog (half a second per idle partition and bundle). Brokers answer
# a fetch that finds nothing within FETCH_WAIT_MS (config.py): this is long enough for the answer to a fetch still
# held for the previous partition and then to this partition's own, so the end it shows is this bundle's.
_BUSY_POLL_S = 2 * FETCH_WAIT_MS / 1000
# A streaming partition with nothing new, or that another copy of the job holds, is looked at again after this long.
_IDLE_RESUME_DELAY = Duration(seconds=1)


class KafkaRead(NamedTuple):
  """What ReadFromKafka produces: the batches read, and the reads planned at job start (a catch-up commits
  their stop offsets once every write is durable)."""
  records: beam.PCollection
  planned: beam.PCollection


def _stamped(batch: RecordBatch):
  """The batch stamped with the time of its newest message, and that time (None: no message has a timestamp, and
  the batch keeps its input's)."""
  newest_ms = max(batch.timestamps_ms)
  if newest_ms < 0:
    return batch, None
  newest = Timestamp(micros=newest_ms * 1000)
  return WindowedValue(batch, newest, _GLOBAL_WINDOWS), newest


def _advance_watermark(watermark, timestamp: Timestamp):
  current = watermark.current_watermark()
  if current is None or timestamp > current:
    watermark.set_watermark(timestamp)


class _ReadPartitionFn(beam.DoFn):
  """Reads one partition's offset range, a bundle's worth at a time."""

  def __init__(self, config: KafkaReadConfig):
    self._config = config
    self._fetcher = None
    self._lock = threading.Lock()  # the fetcher is shared with finalization callbacks
    self._read = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_READ)
    self._lost = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_LOST)

  def setup(self):
    # Each record allocates a few small container objects on its way through the fused stages (kafka-python's
    # record tuples, the JSON object); CPython's default first generation threshold (700) collects every few
    # hundred records, for objects that never form cycles.
    # Collecting less often saved a tenth of the run time and no memory (peak RSS unchanged on 1 M records).
    gc.set_threshold(_GC_FIRST_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
    self._fetcher = open_fetcher(self._config, 'reader')
    self._member = MemberClient(self._config.group_member) if self._config.group_member else None
    self._committer = FinalizedOffsetCommitter(self._fetcher, self._lock, self._config, self._member)
    self._bundle_started = time.monotonic()
    self._read_in_bundle = 0
    self._last_bundle_read = 0

  def start_bundle(self):
    self._bundle_started = time.monotonic()
    self._last_bundle_read, self._read_in_bundle = self._read_in_bundle, 0

  def teardown(self):
    if self._fetcher is not None:
      self._fetcher.close()
      self._fetcher = None

  def process(
      self,
      element: PartitionRead,
      tracker=beam.DoFn.RestrictionParam(PartitionRestrictionProvider()),
      watermark=beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())):
    # No bundle finalizer: a bounded read commits in CommitPlannedOffsets, after the whole run.
    yield from self._read_range(element, tracker, watermark, finalizer=None)

  def _read_range(self, element: PartitionRead, tracker, watermark, finalizer, start=None):
    """Reads the restriction from its start, or from ``start`` beyond it (what lies before was read elsewhere)."""
    from kafka import TopicPartition
    config = self._config
    tp = TopicPartition(element.topic, element.partition)
    restriction = tracker.current_restriction()
    if start is not None and start > restriction.start:
      if not tracker.try_claim(min(start, restriction.stop) - 1):
        return
    else:
      start = restriction.start
    if start >= restriction.stop:
      return  # nothing to read (a bounded run's partition with nothing new): not even one poll's wait
    deadline = time.monotonic() + config.max_bundle_seconds
    emitted = 0
    last_offset = None
    others_waiting = not config.bounded and self._others_waiting(tp)
    empty_since = None  # while others wait: when this partition's polls began to come back empty
    with self._lock:
      self._fetcher.assign({tp: start})
    try:
      while emitted < config.max_records_per_bundle:
        if not self._keeps_reading(tp, start if last_offset is None else last_offset + 1):
          break
        # No more than the range holds: a client may wait for as many records as it was asked for.
        wanted = min(config.max_records_per_bundle - emitted, _MAX_RECORDS_PER_POLL,
                     restriction.stop - (start if last_offset is None else last_offset + 1))
        poll_started = time.monotonic()
        with self._lock:
          records = self._fetcher.fetch(max(wanted, 1), _BUSY_POLL_S if others_waiting else _POLL_TIMEOUT_S).get(tp)
        if not records:
          with self._lock:
            position = self._fetcher.position(tp)
          if position >= restriction.stop:
            # Past the range with nothing left to read (the end may be a transaction marker): done.
            tracker.try_claim(restriction.stop)
            return
          if not config.bounded:
            if others_waiting and not self._at_end(tp):
              empty_since = empty_since or poll_started
              if time.monotonic() - empty_since < _POLL_TIMEOUT_S:
                continue  # no sign yet that the partition is caught up (no answer, or its end still ahead)
            # Caught up: nothing older than now can still arrive from this partition's reader.
            _advance_watermark(watermark, Timestamp.now())
            break
          if time.monotonic() > deadline:
            break
          continue
        expected = start if last_offset is None else last_offset + 1
        if records.offsets[0] != expected:
          self._check_jump(tp, expected, records.offsets[0])
        in_range = records.before(restriction.stop)
        # Claiming the batch's last offset claims the whole batch: offsets only ever grow within a partition,
        # and this tracker splits only at the last claimed position.
        if not in_range or not tracker.try_claim(in_range.offsets[-1]):
          tracker.try_claim(restriction.stop)
          return
        batch, newest = _stamped(in_range)
        yield batch
        emitted += len(in_range)
        last_offset = in_range.offsets[-1]
        if newest is not None:
          _advance_watermark(watermark, newest)
        if last_offset + 1 >= restriction.stop:
          return  # the whole range is claimed: no residual to schedule
        empty_since = None
        if others_waiting and self._at_end(tp):
          _advance_watermark(watermark, Timestamp.now())
          break  # caught up, as far as the fetch that brought these messages knew: on to the partitions waiting
        if time.monotonic() > deadline:
          break
      tracker.defer_remainder(_IDLE_RESUME_DELAY if emitted == 0 else None)
    finally:
      self._read.inc(emitted)
      self._read_in_bundle += emitted
      if finalizer is not None and config.commit_offsets and config.consumer_group:
        if last_offset is not None:
          next_offset = last_offset + 1
          finalizer.register(lambda: self._committer.commit(tp, next_offset))
        elif self._committer.is_behind(tp, start):
          # Nothing new, but what the partition's earlier bundles read is written (they ended before this one
          # started) and may not be committed yet: a runner may drop a finalization (Flink, when a bundle ends
          # across a checkpoint). An idle partition commits it from its next bundles, so that its committed
          # offset does not wait for a message that may never come.
          finalizer.register(functools.partial(self._committer.catch_up, tp, start))
      self._observe_read(tp, emitted, start if last_offset is None else last_offset + 1)

  def _check_jump(self, tp, expected: int, first: int) -> None:
    """A fetch that does not start at the reader's position: a gap in the log (compaction, transaction markers), or
    the client's reset (auto_offset_reset earliest) after the log moved past the position: retention removed
    unread messages, or the topic was recreated. Those two follow --offset_reset."""
    if first < expected:
      # The log restarted below the reader's range, which cannot go back: a restart plans from the group's offset.
      raise KafkaReadError(f'topic {tp.topic} partition {tp.partition}: the log now starts at {first}, below the '
                           f'reader\'s position {expected} (the topic was recreated): restart the job; its plan '
                           'applies --offset_reset to the committed offset')
    with self._lock:
      beginning, end = self._fetcher.log_range(tp)
    if beginning <= expected:
      return  # a gap: nothing was removed
    config = self._config
    if config.offset_reset != OFFSET_RESET_FAIL:
      # kafka-python and librdkafka have already moved to the log's start: read on from there (latest too: the
      # reader cannot tell how far the end was when the messages went).
      _LOGGER.warning('topic %s partition %d: offsets %d..%d were removed before they were read (--offset_reset '
                      '%s): reading on from %d', tp.topic, tp.partition, expected, beginning - 1, config.offset_reset,
                      first)
      self._lost.inc(beginning - expected)
      return
    raise KafkaReadError(offset_outside_log_message(config, tp, 'the reader\'s position', expected, beginning, end))

  def _left_to_read(self, tp) -> Optional[int]:
    """How far the reader's position is from the partition's end as the client last saw it (its high watermark,
    from a fetch answer); None before any answer. The position is the client's, past transaction markers too."""
    with self._lock:
      highwater = self._fetcher.highwater(tp)
      position = self._fetcher.position(tp)
    return None if highwater is None else max(highwater - position, 0)

  def _at_end(self, tp) -> bool:
    return self._left_to_read(tp) == 0

  def _others_waiting(self, tp) -> bool:
    """Whether another partition this reader holds had messages left when it last read it."""
    return False

  def _observe_read(self, tp, read: int, next_offset: int) -> None:
    """Called after each stretch of reading one partition; a bounded run's progress is shown by its launcher."""

  def _keeps_reading(self, tp, position: int) -> bool:
    """Whether to go on reading the partition from ``position`` in this bundle."""
    return True


class _StreamPartitionFn(_ReadPartitionFn):
  """The same reader, declared unbounded so that runners treat its output as a stream.

  It also reads partitions the topic gains while the job runs. The planner gives it one element per partition
  number the topic may grow into (``awaits_creation``); such an element checkpoints until its partition exists.
  With a topic pattern, one NewTopicsRead element reads the matching topics created while it runs (growth.py).
  A separate watcher transform would be the textbook shape, but the local runner never runs a stage that follows
  an endless one; this way the reads stay in one splittable DoFn, which every runner runs.
  """

  def setup(self):
    super().setup()
    self._new_partitions = NewPartitionsWatch(self._fetcher.metadata_consumer(), self._lock)
    self._rates = {}  # by topic: each logs one line per interval
    self._held = metrics.PartitionGauges(metrics.PARTITION_HELD)
    self._lag_elsewhere = metrics.PartitionGauges(metrics.PARTITION_LAG)
    # By partition: how far from its end it was when this reader last read it, in this bundle and the one before.
    # A partition this reader no longer reads (given to another copy, or moved by the runner) drops out with them.
    self._left_this_bundle, self._left_last_bundle = {}, {}
    self._new_topics = None
    if self._config.topic_pattern:
      self._new_topics = NewTopicsWatch(self._fetcher.metadata_consumer(), self._lock, self._config.topic_pattern,
                                        self._config.topic_discovery_interval_s)

  def _rate_log(self, topic: str) -> PartitionRateLog:
    if topic not in self._rates:
      self._rates[topic] = PartitionRateLog(self._config.progress_interval_s)
    return self._rates[topic]

  def _observe_read(self, tp, read: int, next_offset: int) -> None:
    with self._lock:
      highwater = self._fetcher.highwater(tp)  # the partition's end, as of the last fetch
    lag = None if highwater is None else max(highwater - next_offset, 0)
    self._left_this_bundle[(tp.topic, tp.partition)] = self._left_to_read(tp)
    self._rate_log(tp.topic).observe(tp.topic, tp.partition, read, lag, self._committer.committed_offset(tp))

  @beam.DoFn.unbounded_per_element()
  def process(
      self,
      element: PartitionRead,
      # Beam fills the finalizer positionally and the tracker and watermark by name: keep this order.
      finalizer=beam.DoFn.BundleFinalizerParam,
      tracker=beam.DoFn.RestrictionParam(PartitionRestrictionProvider()),
      watermark=beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())):
    if isinstance(element, NewTopicsRead):
      yield from self._read_new_topics(element, tracker, watermark, finalizer)
      return
    if element.awaits_creation and not self._new_partitions.exists(element.topic, element.partition):
      # Whatever the partition will hold is written after this check: the watermark may move up to it.
      _advance_watermark(watermark, Timestamp.now())
      self._pace_idle_bundle()
      tracker.defer_remainder(Duration(seconds=PARTITION_CHECK_INTERVAL_S))
      return
    start = None
    if self._member is not None:
      start = self._held_from(element.topic, element.partition, tracker.current_restriction().start)
      if start is None:
        self._pace_idle_bundle()
        tracker.defer_remainder(_IDLE_RESUME_DELAY)
        return
    yield from self._read_range(element, tracker, watermark, finalizer, start)

  def start_bundle(self):
    super().start_bundle()
    self._left_last_bundle, self._left_this_bundle = self._left_this_bundle, {}

  def _others_waiting(self, tp) -> bool:
    left = {**self._left_last_bundle, **self._left_this_bundle}
    left.pop((tp.topic, tp.partition), None)
    return any(left.values())

  def _pace_idle_bundle(self) -> None:
    """Holds an idle copy's bundle open until _POLL_TIMEOUT_S after it started, as an idle partition's poll does.

    The resume delay a checkpoint asks for is a request: Beam's FnApiRunner hands the element back at once. A copy
    whose elements all return without a poll (partitions other copies hold, partitions not created yet) would spin
    through empty bundles, a core's worth of CPU taken from the copies that read. A copy that read something in
    its last bundle or in this one does not wait: its elements come back with data to read."""
    if self._last_bundle_read or self._read_in_bundle:
      return
    remaining = self._bundle_started + _POLL_TIMEOUT_S - time.monotonic()
    if remaining > 0:
      time.sleep(remaining)

  def _keeps_reading(self, tp, position: int) -> bool:
    # A partition the group takes from this copy is given up within a poll, not at the end of the bundle: its
    # next holder waits for what was read to be committed, which happens once the bundle is done.
    if self._member is None or self._member.start_offset(tp.topic, tp.partition) is not None:
      return True  # per poll: only the member's cached answer, no gauge, no request
    self._held_from(tp.topic, tp.partition, position, written=False)  # parks it
    return False

  def _held_from(self, topic: str, partition: int, position: int, written: bool = True):
    """Where to read the partition from while this copy holds it in the group (the group's offset when the copy
    was given it, if another copy read further meanwhile); None: another copy holds it, and this reader parks.

    ``written``: everything before ``position`` was read by bundles that have ended, so it is written; a reader
    that parks then commits it, which is what lets the group hand the partition on."""
    group_offset = self._member.start_offset(topic, partition)
    self._held.set(topic, partition, 0 if group_offset is None else 1)
    if group_offset is None:
      if written and self._config.commit_offsets:
        from kafka import TopicPartition
        self._committer.catch_up(TopicPartition(topic, partition), position)
      self._member.parked(topic, partition, position)
      # The holder reports the partition's lag: summed over the copies, the lag is the holder's.
      self._lag_elsewhere.set(topic, partition, 0)
      return None
    if group_offset > position:
      _LOGGER.info('%s/%d: reading from offset %d, where the group\'s previous holder left it (this copy was at %d)',
                   topic, partition, group_offset, position)
    return max(group_offset, position)

  def _read_new_topics(self, element: NewTopicsRead, tracker, watermark, finalizer):
    """Reads every partition of the new matching topics, a bundle's worth at a time, from where the restriction
    says (a partition not read yet: from its first offset)."""
    config = self._config
    partitions = self._new_topics.partitions(element.known_topics)
    positions = tracker.current_restriction().as_dict()
    if self._member is not None:
      held = []
      for tp in partitions:
        start = self._held_from(tp.topic, tp.partition, positions.get((tp.topic, tp.partition), 0))
        if start is not None:
          held.append(tp)
          positions[(tp.topic, tp.partition)] = start
      partitions = held
    emitted, reached, deadline = 0, {}, time.monotonic() + config.max_bundle_seconds
    if partitions:
      with self._lock:
        # A partition not read yet starts at 0: below the log's start, which is where the read then starts.
        self._fetcher.assign({tp: positions.get((tp.topic, tp.partition), 0) for tp in partitions})
    try:
      while partitions and emitted < config.max_records_per_bundle and time.monotonic() < deadline:
        with self._lock:
          fetched = self._fetcher.fetch(min(config.max_records_per_bundle - emitted, _MAX_RECORDS_PER_POLL),
                                        _POLL_TIMEOUT_S)
        if not fetched:
          break
        for tp, records in fetched.items():
          next_offset = records.offsets[-1] + 1
          if not tracker.try_claim(((tp.topic, tp.partition), next_offset)):
            return
          batch, newest = _stamped(records)
          yield batch
          emitted += len(records)
          reached[tp] = (next_offset, reached.get(tp, (0, 0))[1] + len(records))
          if newest is not None:
            _advance_watermark(watermark, newest)
      if not emitted:
        _advance_watermark(watermark, Timestamp.now())  # caught up: what comes next is written after now
        if not partitions:
          self._pace_idle_bundle()
      tracker.defer_remainder(None if emitted else _IDLE_RESUME_DELAY)
    finally:
      self._read.inc(emitted)
      self._read_in_bundle += emitted
      for tp, (next_offset, read) in reached.items():
        self._observe_read(tp, read, next_offset)
        if config.commit_offsets and config.consumer_group:
          finalizer.register(functools.partial(self._committer.commit, tp, next_offset))


class ReadFromKafka(beam.PTransform):
  """Reads topics as RecordBatches (the messages of one partition from one poll, each batch stamped with the time
  of its newest message): bounded (up to the end at job start, or a stop time) or streaming."""

  def __init__(self, config: KafkaReadConfig):
    super().__init__()
    if not config.topics and not config.topic_pattern:
      raise ValueError('ReadFromKafka needs topics or a topic pattern')
    if not config.bootstrap_servers:
      raise ValueError('ReadFromKafka needs bootstrap servers')
    if config.start_offset not in ('earliest', 'latest'):
      raise ValueError(f'start_offset must be "earliest" or "latest", not {config.start_offset!r}')
    if config.stop_time_ms is not None and not config.bounded:
      raise ValueError('a stop time needs a bounded read')
    self._config = config

  def expand(self, pbegin):
    read_fn = _ReadPartitionFn if self._config.bounded else _StreamPartitionFn
    planned = (
        pbegin
        | 'Impulse' >> beam.Impulse()
        | 'PlanPartitionReads' >> beam.ParDo(PlanPartitionReadsFn(self._config)))
    records = (
        planned
        # Spread partitions over workers before the long-running reads start.
        | 'SpreadPartitions' >> beam.Reshuffle()
        | 'ReadPartitions' >> beam.ParDo(read_fn(self._config)).with_output_types(RecordBatch))
    return KafkaRead(records, planned)

  def display_data(self):
    return {
        'bootstrap_servers': self._config.bootstrap_servers,
        'topic': ','.join(self._config.topics) or f'pattern {self._config.topic_pattern}',
        'consumer_group': self._config.consumer_group or '',
        'bounded': self._config.bounded,
        'security_protocol': self._config.security.protocol,
        'kafka_client': self._config.kafka_client,
    }
