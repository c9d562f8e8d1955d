"""The reader's fetches through librdkafka (confluent-kafka): ``--kafka_client confluent``.

librdkafka fetches and decodes record batches in C, on its own threads, and hands over whole messages: about 2.5
times kafka-python's reading rate on one core. It is configured to behave as the job's kafka-python consumers do:
no group membership, no automatic commits or offset stores, read_uncommitted unless told otherwise, the oldest
message left when a position fell off the log.
"""

import logging
import threading
import time
from typing import Dict, Optional, Tuple

from beam_pipeline.errors import KafkaReadError
from beam_pipeline.io.kafka.config import FETCH_WAIT_MS
from beam_pipeline.io.kafka.consumer_settings import librdkafka_settings
from beam_pipeline.io.kafka.fetch import OffsetsError, PartitionFetcher
from beam_pipeline.records import RecordBatch

_LOGGER = logging.getLogger(__name__)
# librdkafka hands over at most this many messages per call.
_MAX_MESSAGES_PER_CONSUME = 1000000
_QUEUED_MESSAGES_PER_PARTITION = 50000
# Offsets below 0 are librdkafka's markers (OFFSET_INVALID and the like), not positions.
_NO_OFFSET = 0
# An assigned partition that has had no fetch answer for this long gets a new consumer. After a broker restart,
# librdkafka has been seen to leave one partition of a consumer that assigns unfetched until the consumer is
# recreated (librdkafka issue #5153); a broker that is down costs one new consumer per interval.
UNANSWERED_REOPEN_S = 30.0


def client_settings(config, client_role: str) -> dict:
  """librdkafka's configuration for a consumer of this read."""
  passed = librdkafka_settings(config.consumer_settings)
  client_prefix = passed.pop('client.id', 'site-stats')
  return {
      'bootstrap.servers': config.bootstrap_servers,
      # librdkafka wants a group even for a consumer that only assigns; without the job's group nothing commits.
      'group.id': config.consumer_group or f'{client_prefix}-{client_role}',
      'client.id': f'{client_prefix}-{client_role}',
      'enable.auto.commit': False,
      'enable.auto.offset.store': False,
      'auto.offset.reset': 'earliest',
      # kafka-python's default; librdkafka's own is read_committed.
      'isolation.level': 'read_uncommitted',
      'max.partition.fetch.bytes': 4 * 1024 * 1024,
      'fetch.max.bytes': 32 * 1024 * 1024,
      # When a partition's prefetch queue is full, librdkafka waits this long before fetching it again; its default
      # (1 s) left the reader idle most of the time: 200,000 msgs/s against 740,000 with 10 ms on one 1 M topic.
      'fetch.queue.backoff.ms': 10,
      # Messages prefetched per partition (librdkafka's default: 100,000): a poll's worth keeps the reader fed, and
      # a worker of two partitions held about 30 MB less at its peak, reading as fast.
      'queued.min.messages': _QUEUED_MESSAGES_PER_PARTITION,
      'fetch.wait.max.ms': FETCH_WAIT_MS,
      'logger': logging.getLogger('confluent_kafka'),
      **passed,
      **config.security.librdkafka_config()}


class CommitInThread:
  """A synchronous commit awaited for at most a deadline. confluent-kafka's synchronous commit takes none, and waits
  for as long as the group's coordinator does not answer (a frozen broker held it for minutes); librdkafka's calls
  are thread-safe, so it runs in a thread of its own."""

  def __init__(self, consumer, offsets: list, name: str):
    from confluent_kafka import KafkaException
    self._failures = []

    def send():
      try:
        consumer.commit(offsets=offsets, asynchronous=False)
      except KafkaException as error:
        self._failures.append(error)

    self._sender = threading.Thread(target=send, name=name, daemon=True)
    self._sender.start()

  @property
  def pending(self) -> bool:
    return self._sender.is_alive()

  def wait(self, timeout_s: float) -> None:
    """Raises OffsetsError if the commit failed, or has not been answered within ``timeout_s``."""
    self._sender.join(timeout_s)
    if self._sender.is_alive():
      raise OffsetsError(f'the group coordinator did not answer the commit within {timeout_s:.0f}s')
    if self._failures:
      raise OffsetsError(self._failures[0].args[0].str()) from self._failures[0]


class LibrdkafkaFetcher(PartitionFetcher):

  def __init__(self, config, client_role: str):
    from confluent_kafka import Consumer, KafkaException
    self._config = config
    self._client_role = client_role
    self._consumer = Consumer(client_settings(config, client_role))
    self._next: Dict = {}  # by partition: the offset after the last record handed over
    # By partition: when its polls began, and last were, without an answer from its leader (no end known).
    self._unanswered: Dict = {}
    self._commits = []  # commits still waiting: the consumer they use is not replaced under them
    self._metadata_consumer = None
    try:
      # librdkafka connects in the background; one metadata round trip shows that the brokers answer as Kafka.
      self._consumer.list_topics(timeout=config.connect_timeout_s)
    except KafkaException as error:
      self._consumer.close()
      raise config.no_metadata_error(error.args[0].str()) from None

  def _partition(self, tp, offset: int = -1001):
    from confluent_kafka import TopicPartition
    return TopicPartition(tp.topic, tp.partition, offset)

  def assign(self, positions: Dict) -> None:
    self._consumer.assign([self._partition(tp, offset) for tp, offset in positions.items()])
    self._next = dict(positions)

  def fetch(self, max_records: int, timeout_s: float) -> Dict:
    from kafka import TopicPartition
    messages = self._consumer.consume(num_messages=min(max_records, _MAX_MESSAGES_PER_CONSUME), timeout=timeout_s)
    by_partition: Dict = {}
    for message in messages:
      error = message.error()
      if error is not None:
        if error.fatal():
          raise KafkaReadError(f'librdkafka stopped reading: {error.str()}')
        _LOGGER.warning('reading %s [%s]: %s', message.topic(), message.partition(), error.str())
        continue
      by_partition.setdefault((message.topic(), message.partition()), []).append(message)
    batches = {}
    for (topic, partition), records in by_partition.items():
      tp = TopicPartition(topic, partition)
      offsets = [m.offset() for m in records]
      batches[tp] = RecordBatch(topic, partition, offsets, [m.timestamp()[1] for m in records],
                                [m.key() for m in records], [m.value() for m in records])
      self._next[tp] = offsets[-1] + 1
    self._reopen_if_unanswered(batches)
    return batches

  def _reopen_if_unanswered(self, batches: Dict) -> None:
    now = time.monotonic()
    for tp in self._next:
      if tp in batches or self.highwater(tp) is not None:
        self._unanswered.pop(tp, None)
        continue
      since, last = self._unanswered.get(tp, (now, now))
      # A partition this reader stopped reading for a while starts its count again.
      self._unanswered[tp] = (since if now - last < UNANSWERED_REOPEN_S else now, now)
    stalled = sorted(f'{tp.topic}/{tp.partition}' for tp, (since, unused_last) in self._unanswered.items()
                     if tp in self._next and now - since >= UNANSWERED_REOPEN_S)
    self._commits = [commit for commit in self._commits if commit.pending]
    if not stalled or self._commits:
      return
    from confluent_kafka import Consumer
    _LOGGER.warning('no fetch answer for %s in %.0fs: reading through a new librdkafka consumer',
                    ', '.join(stalled), UNANSWERED_REOPEN_S)
    self._consumer.close()
    self._consumer = Consumer(client_settings(self._config, self._client_role))
    self._consumer.assign([self._partition(tp, offset) for tp, offset in self._next.items()])
    self._unanswered.clear()

  def position(self, tp) -> int:
    # librdkafka's position also moves past transaction markers and aborted records it skipped.
    fetched = self._consumer.position([self._partition(tp)])[0].offset
    return max(fetched, self._next.get(tp, _NO_OFFSET))

  def highwater(self, tp) -> Optional[int]:
    unused_low, high = self._consumer.get_watermark_offsets(self._partition(tp), cached=True)
    return high if high >= 0 else None

  def log_range(self, tp) -> Tuple[int, int]:
    return self._consumer.get_watermark_offsets(self._partition(tp), timeout=self._config.connect_timeout_s)

  def commit(self, tp, next_offset: int, timeout_s: float) -> None:
    commit = CommitInThread(self._consumer, [self._partition(tp, next_offset)], f'commit-{tp.topic}-{tp.partition}')
    self._commits.append(commit)
    commit.wait(timeout_s)

  def committed(self, tp, timeout_s: float) -> Optional[int]:
    from confluent_kafka import KafkaException
    try:
      offset = self._consumer.committed([self._partition(tp)], timeout=timeout_s)[0].offset
    except KafkaException as error:
      raise OffsetsError(error.args[0].str()) from error
    return offset if offset >= 0 else None

  def metadata_consumer(self):
    if self._metadata_consumer is None:
      self._metadata_consumer = self._config.connected_consumer(f'{self._client_role}-metadata')
    return self._metadata_consumer

  def close(self) -> None:
    self._consumer.close()
    if self._metadata_consumer is not None:
      self._metadata_consumer.close(autocommit=False)
