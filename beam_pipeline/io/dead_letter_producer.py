"""The dead letters' Kafka producer, through the client the job reads with (``--kafka_client``).

kafka-python is the default. With ``--kafka_client confluent`` the dead letters go through librdkafka's producer
as well, which batches and sends in C: each ``produce`` costs a few microseconds of Python where kafka-python's
``send`` builds the record and its future in Python. Both are configured alike (every replica acknowledges, no
idempotence, retries until the delivery timeout, no compression, a key lands on the partition Java's producer
would choose, no request larger than the topic takes), and both tell at ``flush`` how many records were
acknowledged, which failed and why, and how many had no answer in time.
"""

import abc
import logging
from typing import List, NamedTuple

from beam_pipeline.errors import DeadLetterPublishError
from beam_pipeline.io.kafka.config import METADATA_RETRY_BACKOFF_MS
from beam_pipeline.io.kafka.fetch import CONFLUENT
from beam_pipeline.io.security import KafkaSecurity

_LOGGER = logging.getLogger(__name__)
_CLIENT_ID = 'site-stats-dead-letters'
# kafka-python's default batch size: records smaller than this share a batch.
_KAFKA_PYTHON_BATCH_BYTES = 16384
# kafka-python's default delivery timeout: how long a record is retried before it counts as failed.
_DELIVERY_TIMEOUT_MS = 120000


class Delivery(NamedTuple):
  """What became of the records sent since the previous flush."""
  acknowledged: int
  failures: List  # the client's error for each record refused or given up, in the order they came
  unanswered: int  # still waiting for an answer when the flush gave up


class DeadLetterProducer(abc.ABC):
  """Publishes records to the dead-letter topic. Not thread-safe: one per DoFn instance."""

  @abc.abstractmethod
  def send(self, key, value: bytes) -> None:
    """Queues one record; a record the client refuses at once is one of the next flush's failures."""

  @abc.abstractmethod
  def flush(self) -> Delivery:
    """Waits, up to the producer's timeout, until every record sent since the previous flush is answered."""

  @abc.abstractmethod
  def close(self) -> None:
    """Delivers what is still queued, up to the timeout, and closes the connections."""


def _unavailable(topic: str, bootstrap_servers: str, reason) -> DeadLetterPublishError:
  return DeadLetterPublishError(f'dead-letter topic {topic!r} is not available on {bootstrap_servers} ({reason}); '
                                'create it, or name another with --dead_letter_topic')


class KafkaPythonProducer(DeadLetterProducer):

  def __init__(self, bootstrap_servers: str, topic: str, security: KafkaSecurity, max_record_bytes: int,
               timeout_s: float):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError
    self._topic = topic
    self._timeout_s = timeout_s
    self._futures = []
    self._producer = None
    try:
      # No batch larger than the topic takes, and no record larger than the batch the topic takes.
      self._producer = KafkaProducer(
          bootstrap_servers=bootstrap_servers.split(','), acks='all', linger_ms=20, client_id=_CLIENT_ID,
          max_block_ms=int(timeout_s * 1000), retry_backoff_ms=METADATA_RETRY_BACKOFF_MS,
          max_request_size=max_record_bytes, batch_size=min(_KAFKA_PYTHON_BATCH_BYTES, max_record_bytes),
          delivery_timeout_ms=_DELIVERY_TIMEOUT_MS, **security.client_config())
      partitions = self._producer.partitions_for(topic)
    except KafkaError as error:
      self.close()
      raise _unavailable(topic, bootstrap_servers, error) from None
    if not partitions:
      self.close()
      raise DeadLetterPublishError(f'dead-letter topic {topic!r} has no partitions')

  def send(self, key, value: bytes) -> None:
    self._futures.append(self._producer.send(self._topic, value=value, key=key))

  def flush(self) -> Delivery:
    from kafka.errors import KafkaTimeoutError
    futures, self._futures = self._futures, []
    try:
      self._producer.flush(timeout=self._timeout_s)
    except KafkaTimeoutError:
      pass  # the records still waiting are counted below
    failures = [future.exception for future in futures if future.is_done and future.failed()]
    unanswered = sum(not future.is_done for future in futures)
    return Delivery(len(futures) - len(failures) - unanswered, failures, unanswered)

  def close(self) -> None:
    from kafka.errors import KafkaTimeoutError
    if self._producer is not None:
      producer, self._producer = self._producer, None
      try:
        producer.close(timeout=self._timeout_s)
      except KafkaTimeoutError:
        # kafka-python's close flushes first and gives up there; the records it could not deliver belong to a
        # bundle that already failed, and its sender thread drops them when their delivery timeout passes.
        _LOGGER.warning('closed the producer of dead-letter topic %s with records still unanswered', self._topic)


class _Answers:
  """librdkafka's delivery reports for the records of one flush: each record's callback is bound to the
  ``_Answers`` it was sent under, so a late report of an earlier flush never counts in a later one."""

  def __init__(self):
    self.sent = 0
    self.acknowledged = 0
    self.failures = []

  def record(self, error, unused_message) -> None:
    if error is None:
      self.acknowledged += 1
    else:
      self.failures.append(error)


class LibrdkafkaProducer(DeadLetterProducer):
  """librdkafka answers in callbacks, run only inside ``poll`` and ``flush`` on the calling thread."""

  def __init__(self, bootstrap_servers: str, topic: str, security: KafkaSecurity, max_record_bytes: int,
               timeout_s: float):
    from confluent_kafka import KafkaException, Producer
    self._topic = topic
    self._timeout_s = timeout_s
    self._answers = _Answers()
    self._refused = KafkaException  # looked up once: send runs for every dead letter
    self._producer = Producer({
        'bootstrap.servers': bootstrap_servers,
        'client.id': _CLIENT_ID,
        'acks': 'all',
        # As kafka-python's producer: a bundle retried publishes its dead letters again anyway, and an idempotent
        # producer needs the IdempotentWrite permission on older brokers.
        'enable.idempotence': False,
        'linger.ms': 20,
        'retry.backoff.ms': METADATA_RETRY_BACKOFF_MS,
        'message.timeout.ms': _DELIVERY_TIMEOUT_MS,
        # librdkafka fills a batch only up to this, so no batch is larger than the topic takes.
        'message.max.bytes': max_record_bytes,
        # kafka-python's and Java's choice of partition for a key; librdkafka's own hashes keys with CRC32.
        'partitioner': 'murmur2_random',
        'logger': logging.getLogger('confluent_kafka'),
        **security.librdkafka_config()})
    try:
      # Asking for one topic's metadata also connects, and shows that the brokers answer as Kafka.
      described = self._producer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    except KafkaException as error:
      raise _unavailable(topic, bootstrap_servers, error.args[0].str()) from None
    if described is None:
      raise _unavailable(topic, bootstrap_servers, 'not in the brokers\' metadata')
    # An error beside known partitions (a leader being elected) is librdkafka's to wait out, as kafka-python does.
    if not described.partitions:
      if described.error is not None:
        raise _unavailable(topic, bootstrap_servers, described.error.str())
      raise DeadLetterPublishError(f'dead-letter topic {topic!r} has no partitions')

  def send(self, key, value: bytes) -> None:
    answers = self._answers
    answers.sent += 1
    try:
      self._produce(key, value, answers)
    except self._refused as error:
      answers.failures.append(error.args[0])
    self._producer.poll(0)

  def _produce(self, key, value: bytes, answers: _Answers) -> None:
    try:
      self._producer.produce(self._topic, value, key, on_delivery=answers.record)
    except BufferError:
      # librdkafka's queue is full (queue.buffering.max.messages): wait for answers to make room, as long as
      # kafka-python's send may block.
      waiting = self._producer.flush(self._timeout_s)
      if waiting:
        raise DeadLetterPublishError(f'{waiting} dead letters were not acknowledged by {self._topic!r} (no answer '
                                     f'within {self._timeout_s:.0f}s)') from None
      self._producer.produce(self._topic, value, key, on_delivery=answers.record)

  def flush(self) -> Delivery:
    answers, self._answers = self._answers, _Answers()
    self._producer.flush(self._timeout_s)
    return Delivery(answers.acknowledged, answers.failures,
                    answers.sent - answers.acknowledged - len(answers.failures))

  def close(self) -> None:
    if self._producer is not None:
      # Producer.close() is newer than the oldest confluent-kafka the package takes; librdkafka lets go of the
      # producer with its last reference.
      self._producer.flush(self._timeout_s)
      self._producer = None


def open_producer(kafka_client: str, bootstrap_servers: str, topic: str, security: KafkaSecurity,
                  max_record_bytes: int, timeout_s: float) -> DeadLetterProducer:
  """A producer of ``kafka_client`` (fetch.py's names) connected to the brokers, once they have shown they hold
  ``topic``; DeadLetterPublishError otherwise. It takes records of up to ``max_record_bytes`` and waits up to
  ``timeout_s`` for the brokers."""
  producer = LibrdkafkaProducer if kafka_client == CONFLUENT else KafkaPythonProducer
  return producer(bootstrap_servers, topic, security, max_record_bytes, timeout_s)
