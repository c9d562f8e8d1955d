"""ReadFromKafka in pure Python: a splittable DoFn over Kafka partitions, built on kafka-python.

Beam's own ``apache_beam.io.kafka.ReadFromKafka`` is a Java cross-language transform; this one needs no JVM, so
the same graph runs on the Python runner locally, on Flink and on Dataflow.

Shape: ``Impulse -> plan one PartitionRead per partition -> Reshuffle -> read each partition (SDF)``.
Each partition's restriction is an offset range; the reader checkpoints (``defer_remainder``) every
``max_records_per_bundle`` records or ``max_bundle_seconds``. A streaming read commits the offsets it read to the
consumer group only when the runner finalizes the bundle, i.e. once everything downstream of it is durable. A
bounded read registers no finalizer (Flink runs batch jobs without bundle finalization): a catch-up run commits
the offsets it planned to stop at in a last stage, ``CommitPlannedOffsets``, which the runner can only start once
every stage it waits on has finished.
"""

import dataclasses
import gc
import logging
import threading
import time
from typing import Dict, Iterable, List, Optional, Tuple

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from beam_pipeline import metrics
from beam_pipeline.records import UNBOUNDED_STOP_OFFSET, PartitionRead, RecordBatch
from beam_pipeline.security import KafkaSecurity

_LOGGER = logging.getLogger(__name__)
# Batches are emitted as ready-made windowed values: the reader's output is always in the global window, and
# this skips the window assignment Beam runs for each TimestampedValue.
_GLOBAL_WINDOWS = (GlobalWindow(),)
_GC_FIRST_GENERATION_THRESHOLD = 50000

# How long to wait, by default, for a broker or a topic's metadata before calling the source unreachable.
DEFAULT_CONNECT_TIMEOUT_S = 30.0
# What one partition reads into a bundle, by default, before checkpointing. The writer sums a bundle's increments
# per key, so larger bundles mean fewer writes (1 M messages over 10 k keys: 131 k writes at 20 000, 30 k at
# 100 000, and 40 % less run time); memory grows with it (about 300 bytes per message held).
DEFAULT_MAX_RECORDS_PER_BUNDLE = 100000
# How long, at most by default, one partition reads into a bundle.
DEFAULT_MAX_BUNDLE_SECONDS = 5.0
# One poll waits at most this long for data; it bounds how long an idle reader holds a bundle open.
_POLL_TIMEOUT_S = 0.5
# A streaming partition with nothing new is looked at again after this long.
_IDLE_RESUME_DELAY = Duration(seconds=1)
# How often a reader asks the brokers whether the topic gained partitions, and how long it waits for the answer.
_PARTITION_CHECK_INTERVAL_S = 5.0
_PARTITION_CHECK_TIMEOUT_S = 5.0


class KafkaReadError(RuntimeError):
  """The source cannot be read: no broker at the address, or no such topic."""


@dataclasses.dataclass(frozen=True)
class KafkaReadConfig:
  bootstrap_servers: str
  topic: str
  consumer_group: Optional[str]
  start_offset: str = 'earliest'
  start_time_ms: Optional[int] = None
  stop_time_ms: Optional[int] = None
  bounded: bool = False
  # A window backfill neither starts from nor moves the group's offsets.
  commit_offsets: bool = True
  use_committed_offsets: bool = True
  start_offsets: Tuple[Tuple[int, int], ...] = ()  # (partition, offset) pairs
  stop_offsets: Tuple[Tuple[int, int], ...] = ()
  max_records_per_bundle: int = DEFAULT_MAX_RECORDS_PER_BUNDLE
  max_bundle_seconds: float = DEFAULT_MAX_BUNDLE_SECONDS
  connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
  security: KafkaSecurity = KafkaSecurity()
  # Streaming: how many partitions the topic may gain while the job runs and still be read without a restart.
  partition_headroom: int = 0
  # Streaming: how often each reader logs the rate and lag of the partitions it reads (0: never).
  progress_interval_s: float = 10.0

  @property
  def commits_at_end(self) -> bool:
    """A bounded catch-up: the group's offsets move once, to where the read stopped, after the whole run."""
    return self.bounded and self.commit_offsets and bool(self.consumer_group)

  def consumer(self, client_role: str):
    """A kafka-python consumer that is assigned partitions by hand; it never joins the group."""
    from kafka import KafkaConsumer
    from kafka.errors import NoBrokersAvailable
    try:
      return KafkaConsumer(
          bootstrap_servers=self.bootstrap_servers.split(','),
          group_id=self.consumer_group,
          client_id=f'site-stats-{client_role}',
          enable_auto_commit=False,
          # Where a stored position fell off the log (retention), continue from the oldest message left.
          auto_offset_reset='earliest',
          max_partition_fetch_bytes=4 * 1024 * 1024,
          fetch_max_bytes=32 * 1024 * 1024,
          # A fetch response may be as large as fetch_max_bytes; kafka-python's 1 MB frame cap would drop it.
          receive_message_max_bytes=64 * 1024 * 1024,
          request_timeout_ms=30000,
          api_version_auto_timeout_ms=int(self.connect_timeout_s * 1000),
          **self.security.client_config())
    except NoBrokersAvailable:
      raise KafkaReadError(
          f'no Kafka broker answered at {self.bootstrap_servers} within {self.connect_timeout_s:.0f}s '
          '(check --bootstrap_servers and that the brokers are reachable from the workers)') from None

  def connected_consumer(self, client_role: str):
    """A consumer that has fetched cluster metadata, or KafkaReadError after connect_timeout_s.

    kafka-python's metadata calls wait forever when every connection fails after the TCP handshake (a refused
    SASL login, a TLS mismatch), so the first metadata round trip is awaited here with a deadline.
    """
    consumer = self.consumer(client_role)
    if refresh_metadata(consumer, self.connect_timeout_s):
      return consumer
    consumer.close()
    raise KafkaReadError(
        f'the Kafka brokers at {self.bootstrap_servers} sent no metadata within {self.connect_timeout_s:.0f}s. '
        f'They answered a connection, so check the security settings (--kafka_security_protocol='
        f'{self.security.protocol}, --kafka_sasl_mechanism, --kafka_username, the password\'s variable or file, '
        '--kafka_ssl_ca_file): the kafka logger names the refused step')


def refresh_metadata(consumer, timeout_s: float) -> bool:
  """One metadata round trip for the consumer's topics, waited for at most ``timeout_s``; whether it succeeded."""
  client = consumer._client  # pylint: disable=protected-access
  update = client.cluster.request_update()
  deadline = time.monotonic() + timeout_s
  while not update.is_done and time.monotonic() < deadline:
    client.poll(timeout_ms=200, future=update)
  return update.succeeded()


def cluster_topics(consumer, timeout_s: float) -> Optional[set]:
  """The names of every topic the brokers report, from one metadata round trip waited for at most ``timeout_s``;
  None when no answer came. A topic missing from the answer does not exist (or may not be seen)."""
  consumer._client.cluster.need_all_topic_metadata = True  # pylint: disable=protected-access
  if not refresh_metadata(consumer, timeout_s):
    return None
  return consumer._client.cluster.topics()  # pylint: disable=protected-access


def wait_for_partitions(consumer, config: KafkaReadConfig) -> Iterable[int]:
  """The topic's partition numbers; raises KafkaReadError naming the topic as soon as the brokers say it does
  not exist, or if they do not answer in time."""
  deadline = time.monotonic() + config.connect_timeout_s
  first_missing = None
  while True:
    topics = cluster_topics(consumer, max(deadline - time.monotonic(), 0.1))
    if topics is not None and config.topic not in topics:
      # Asked twice: a topic created a moment ago may not have reached the broker that answered first.
      if first_missing is not None and time.monotonic() - first_missing >= 1:
        raise KafkaReadError(missing_topic_message(config.topic, config.bootstrap_servers))
      first_missing = first_missing or time.monotonic()
    partitions = consumer.partitions_for_topic(config.topic)
    if partitions:
      return sorted(partitions)
    if time.monotonic() > deadline:
      raise KafkaReadError(
          f'the brokers at {config.bootstrap_servers} sent no metadata for topic {config.topic!r} within '
          f'{config.connect_timeout_s:.0f}s')
    time.sleep(0.5)


def missing_topic_message(topic: str, bootstrap_servers: str) -> str:
  return (f'topic {topic!r} does not exist on {bootstrap_servers}: check --topic (and --bootstrap_servers), '
          'or create the topic')


def plan_partition_reads(config: KafkaReadConfig, log_plan: bool = False) -> List[PartitionRead]:
  """One PartitionRead per partition, with offsets resolved now (and, streaming, one per partition the topic may
  gain). The reader plans at job start; a bounded run's launcher plans too, to know how much it will read."""
  from kafka import TopicPartition
  consumer = config.connected_consumer('planner')
  try:
    partitions = [TopicPartition(config.topic, p) for p in wait_for_partitions(consumer, config)]
    beginning = consumer.beginning_offsets(partitions)
    end = consumer.end_offsets(partitions)
    start_at_time = _offsets_at(consumer, partitions, config.start_time_ms, end)
    stop_at_time = _offsets_at(consumer, partitions, config.stop_time_ms, end)
    start_offsets, stop_offsets = dict(config.start_offsets), dict(config.stop_offsets)
    reads = []
    for tp in partitions:
      committed = (consumer.committed(tp, timeout_ms=int(config.connect_timeout_s * 1000))
                   if config.consumer_group and config.use_committed_offsets else None)
      if tp.partition in start_offsets:
        start = start_offsets[tp.partition]
      elif committed is not None:
        start = committed
      elif start_at_time is not None:
        start = start_at_time[tp]
      else:
        start = beginning[tp] if config.start_offset == 'earliest' else end[tp]
      if start < beginning[tp]:
        _LOGGER.warning('%s: offsets %d..%d expired before they were read; starting at %d',
                        tp, start, beginning[tp] - 1, beginning[tp])
        start = beginning[tp]
      if config.bounded:
        stop = stop_at_time[tp] if stop_at_time is not None else end[tp]
        stop = min(stop_offsets.get(tp.partition, stop), end[tp])
        stop = max(stop, start)
      else:
        stop = UNBOUNDED_STOP_OFFSET
      reads.append(PartitionRead(config.topic, tp.partition, start, stop))
      if log_plan:
        _LOGGER.info('%s: reading offsets [%d, %s)%s', tp, start, stop if config.bounded else 'unbounded',
                     ' from the committed offset' if committed is not None else '')
    if not config.bounded and config.partition_headroom:
      # Partitions the topic may gain later: all they will hold is new, so they are read from their start.
      first = max(tp.partition for tp in partitions) + 1
      for partition in range(first, first + config.partition_headroom):
        reads.append(PartitionRead(config.topic, partition, 0, UNBOUNDED_STOP_OFFSET, awaits_creation=True))
      if log_plan:
        _LOGGER.info('%s: partitions %d..%d will be read if the topic gains them',
                     config.topic, first, first + config.partition_headroom - 1)
    return reads
  finally:
    consumer.close(autocommit=False)


def _offsets_at(consumer, partitions, time_ms, end) -> Optional[Dict]:
  if time_ms is None:
    return None
  found = consumer.offsets_for_times({tp: time_ms for tp in partitions})
  return {tp: found[tp].offset if found.get(tp) is not None else end[tp] for tp in partitions}


class _PlanPartitionReadsFn(beam.DoFn):
  """Turns the impulse into one PartitionRead per partition, with offsets resolved at job start."""

  def __init__(self, config: KafkaReadConfig):
    self._config = config

  def process(self, unused_impulse):
    yield from plan_partition_reads(self._config, log_plan=True)


class _CheckpointOnlyOffsetTracker(OffsetRestrictionTracker):
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


class _PartitionRestrictionProvider(RestrictionProvider):

  def initial_restriction(self, element: PartitionRead) -> OffsetRange:
    return OffsetRange(element.start_offset, element.stop_offset)

  def create_tracker(self, restriction: OffsetRange) -> _CheckpointOnlyOffsetTracker:
    return _CheckpointOnlyOffsetTracker(restriction, bounded=restriction.stop != UNBOUNDED_STOP_OFFSET)

  def restriction_size(self, element, restriction: OffsetRange) -> int:
    if restriction.stop == UNBOUNDED_STOP_OFFSET:
      return 1  # the backlog of a live partition is unknown here; any positive size keeps it scheduled
    return restriction.size()


class _ReadPartitionFn(beam.DoFn):
  """Reads one partition's offset range, a bundle's worth at a time."""

  def __init__(self, config: KafkaReadConfig):
    self._config = config
    self._consumer = None
    self._lock = threading.Lock()  # the consumer is shared with finalization callbacks
    self._read = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_READ)
    self._committed: Dict = {}

  def setup(self):
    # Each record allocates a few small container objects on its way through the fused stages (kafka-python's
    # record tuples, the JSON object); CPython's default first generation threshold (700) collects every few
    # hundred records, for objects that never form cycles.
    # Collecting less often saved a tenth of the run time and no memory (peak RSS unchanged on 1 M records).
    gc.set_threshold(_GC_FIRST_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
    self._consumer = self._config.connected_consumer('reader')

  def teardown(self):
    if self._consumer is not None:
      self._consumer.close(autocommit=False)
      self._consumer = None

  def process(
      self,
      element: PartitionRead,
      tracker=beam.DoFn.RestrictionParam(_PartitionRestrictionProvider()),
      watermark=beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())):
    # No bundle finalizer: a bounded read commits in CommitPlannedOffsets, after the whole run.
    yield from self._read_range(element, tracker, watermark, finalizer=None)

  def _read_range(self, element: PartitionRead, tracker, watermark, finalizer):
    from kafka import TopicPartition
    config = self._config
    tp = TopicPartition(element.topic, element.partition)
    restriction = tracker.current_restriction()
    deadline = time.monotonic() + config.max_bundle_seconds
    emitted = 0
    last_offset = None
    with self._lock:
      self._consumer.assign([tp])
      self._consumer.seek(tp, restriction.start)
    try:
      while emitted < config.max_records_per_bundle:
        with self._lock:
          batch = self._consumer.poll(
              timeout_ms=int(_POLL_TIMEOUT_S * 1000), max_records=config.max_records_per_bundle - emitted)
        records = batch.get(tp, ())
        if not records:
          with self._lock:
            position = self._consumer.position(tp)
          if position >= restriction.stop:
            # Past the range with nothing left to read (the end may be a transaction marker): done.
            tracker.try_claim(restriction.stop)
            return
          if not config.bounded:
            # Caught up: nothing older than now can still arrive from this partition's reader.
            self._advance_watermark(watermark, Timestamp.now())
            break
          if time.monotonic() > deadline:
            break
          continue
        in_range = records if records[-1].offset < restriction.stop else [
            r for r in records if r.offset < restriction.stop]
        # Claiming the batch's last offset claims the whole batch: offsets only ever grow within a partition,
        # and this tracker splits only at the last claimed position.
        if not in_range or not tracker.try_claim(in_range[-1].offset):
          tracker.try_claim(restriction.stop)
          return
        timestamps_ms = [r.timestamp for r in in_range]
        batch = RecordBatch(tp.topic, tp.partition, [r.offset for r in in_range], timestamps_ms,
                            [r.key for r in in_range], [r.value for r in in_range])
        newest_ms = max(timestamps_ms)
        if newest_ms >= 0:
          yield WindowedValue(batch, Timestamp(micros=newest_ms * 1000), _GLOBAL_WINDOWS)
        else:
          yield batch  # no message has a timestamp: the batch keeps its input's
        emitted += len(in_range)
        last_offset = in_range[-1].offset
        if newest_ms >= 0:
          self._advance_watermark(watermark, Timestamp(micros=newest_ms * 1000))
        if last_offset + 1 >= restriction.stop:
          return  # the whole range is claimed: no residual to schedule
        if time.monotonic() > deadline:
          break
      tracker.defer_remainder(_IDLE_RESUME_DELAY if emitted == 0 else None)
    finally:
      self._read.inc(emitted)
      if finalizer is not None and last_offset is not None and config.commit_offsets and config.consumer_group:
        next_offset = last_offset + 1
        finalizer.register(lambda: self._commit(tp, next_offset))
      self._observe_read(tp, emitted, restriction.start if last_offset is None else last_offset + 1)

  def _observe_read(self, tp, read: int, next_offset: int) -> None:
    """Called after each stretch of reading one partition; a bounded run's progress is shown by its launcher."""

  @staticmethod
  def _advance_watermark(watermark, timestamp: Timestamp):
    current = watermark.current_watermark()
    if current is None or timestamp > current:
      watermark.set_watermark(timestamp)

  def _commit(self, tp, next_offset: int):
    """Runs after the runner made the bundle durable: the group may now move past what it read."""
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata
    if self._committed.get(tp, -1) >= next_offset:
      return
    try:
      with self._lock:
        self._consumer.commit({tp: OffsetAndMetadata(next_offset, '', -1)})
      self._committed[tp] = next_offset
    except KafkaError as error:
      # Losing a commit only means a restart replays a little more; the data is already counted.
      _LOGGER.warning('committing offset %d for %s to group %r failed: %s',
                      next_offset, tp, self._config.consumer_group, error)


class _StreamPartitionFn(_ReadPartitionFn):
  """The same reader, declared unbounded so that runners treat its output as a stream.

  It also reads partitions the topic gains while the job runs. The planner gives it one element per partition
  number the topic may grow into (``awaits_creation``); such an element checkpoints until its partition exists.
  A separate watcher transform would be the textbook shape, but the local runner never runs a stage that follows
  an endless one; this way the reads stay in one splittable DoFn, which every runner runs.
  """

  def setup(self):
    super().setup()
    self._existing_partitions = set()
    self._partitions_checked_at = float('-inf')
    self._read_since_report: Dict[int, int] = {}
    self._lag: Dict[int, Optional[int]] = {}
    self._reported_at = time.monotonic()

  def _observe_read(self, tp, read: int, next_offset: int) -> None:
    """Logs, every progress interval, each partition this reader read: its rate and how far it is behind."""
    with self._lock:
      highwater = self._consumer.highwater(tp)  # the partition's end, as of the last fetch
    self._read_since_report[tp.partition] = self._read_since_report.get(tp.partition, 0) + read
    self._lag[tp.partition] = None if highwater is None else max(highwater - next_offset, 0)
    elapsed = time.monotonic() - self._reported_at
    if not self._config.progress_interval_s or elapsed < self._config.progress_interval_s:
      return
    _LOGGER.info('%s: %s', tp.topic, '; '.join(
        f'partition {partition}: {count / elapsed:,.0f} msgs/s, lag '
        f'{"unknown" if self._lag[partition] is None else f"{self._lag[partition]:,}"}'
        for partition, count in sorted(self._read_since_report.items())))
    self._read_since_report = {}
    self._reported_at = time.monotonic()

  def _partition_exists(self, element: PartitionRead) -> bool:
    if element.partition in self._existing_partitions:
      return True
    if time.monotonic() - self._partitions_checked_at >= _PARTITION_CHECK_INTERVAL_S:
      self._partitions_checked_at = time.monotonic()
      with self._lock:
        refresh_metadata(self._consumer, _PARTITION_CHECK_TIMEOUT_S)
        partitions = self._consumer.partitions_for_topic(element.topic) or set()
      for partition in sorted(partitions - self._existing_partitions):
        _LOGGER.info('%s: partition %d exists', element.topic, partition)
      self._existing_partitions |= partitions
    return element.partition in self._existing_partitions

  @beam.DoFn.unbounded_per_element()
  def process(
      self,
      element: PartitionRead,
      # Beam fills the finalizer positionally and the tracker and watermark by name: keep this order.
      finalizer=beam.DoFn.BundleFinalizerParam,
      tracker=beam.DoFn.RestrictionParam(_PartitionRestrictionProvider()),
      watermark=beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())):
    if element.awaits_creation and not self._partition_exists(element):
      # Whatever the partition will hold is written after this check: the watermark may move up to it.
      self._advance_watermark(watermark, Timestamp.now())
      tracker.defer_remainder(Duration(seconds=_PARTITION_CHECK_INTERVAL_S))
      return
    yield from self._read_range(element, tracker, watermark, finalizer)


class ReadFromKafka(beam.PTransform):
  """Reads a topic as RecordBatches (the messages of one partition from one poll, each batch stamped with the time
  of its newest message): bounded (up to the end at job start, or a stop time) or streaming."""

  def __init__(self, config: KafkaReadConfig):
    super().__init__()
    # The PartitionReads planned at job start, once applied: what CommitPlannedOffsets commits.
    self.planned = None
    if not config.topic:
      raise ValueError('ReadFromKafka needs a topic')
    if not config.bootstrap_servers:
      raise ValueError('ReadFromKafka needs bootstrap servers')
    if config.start_offset not in ('earliest', 'latest'):
      raise ValueError(f'start_offset must be "earliest" or "latest", not {config.start_offset!r}')
    if config.stop_time_ms is not None and not config.bounded:
      raise ValueError('a stop time needs a bounded read')
    self._config = config

  def expand(self, pbegin):
    read_fn = _ReadPartitionFn if self._config.bounded else _StreamPartitionFn
    self.planned = (
        pbegin
        | 'Impulse' >> beam.Impulse()
        | 'PlanPartitionReads' >> beam.ParDo(_PlanPartitionReadsFn(self._config)))
    return (
        self.planned
        # Spread partitions over workers before the long-running reads start.
        | 'SpreadPartitions' >> beam.Reshuffle()
        | 'ReadPartitions' >> beam.ParDo(read_fn(self._config)).with_output_types(RecordBatch))

  def display_data(self):
    return {
        'bootstrap_servers': self._config.bootstrap_servers,
        'topic': self._config.topic,
        'consumer_group': self._config.consumer_group or '',
        'bounded': self._config.bounded,
        'security_protocol': self._config.security.protocol,
    }


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
