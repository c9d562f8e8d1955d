"""What the reader asks of a Kafka client: a partition's records from an offset on, as RecordBatches, and the
consumer group's offsets of those partitions.

Two clients implement it. kafka-python is the default and the reference the tests hold the other to; librdkafka,
through confluent-kafka (``--kafka_client confluent``), decodes records in C and reads about 2.5 times as fast.
Planning, preflight, the watch for new partitions and the end-of-run commit stay on kafka-python whichever client
reads: they run once per job or every few seconds, and one client for metadata means one set of metadata code.
"""

import abc
from typing import Dict, Optional, Tuple

KAFKA_PYTHON = 'kafka-python'
CONFLUENT = 'confluent'
KAFKA_CLIENTS = (KAFKA_PYTHON, CONFLUENT)


class OffsetsError(Exception):
  """Committing or reading the group's offset failed (the client's own error is in the message)."""


class PartitionFetcher(abc.ABC):
  """A consumer assigned partitions by hand; it never joins the group. Not thread-safe: the reader holds a lock
  around every call, since bundle finalization commits from other threads. Partitions are kafka-python
  ``TopicPartition``s (a namedtuple of topic and partition) for both clients."""

  @abc.abstractmethod
  def assign(self, positions: Dict) -> None:
    """Reads exactly these partitions from now on, each from its offset (below the log's start: from the start)."""

  @abc.abstractmethod
  def fetch(self, max_records: int, timeout_s: float) -> Dict:
    """Up to ``max_records`` records of the assigned partitions as a RecordBatch per partition, waiting at most
    ``timeout_s`` for them; an empty dict when none came."""

  @abc.abstractmethod
  def position(self, tp) -> int:
    """The offset the next record of ``tp`` will have at least (past transaction markers once they are read)."""

  @abc.abstractmethod
  def highwater(self, tp) -> Optional[int]:
    """The partition's end as of the last fetch; None before one."""

  @abc.abstractmethod
  def log_range(self, tp) -> Tuple[int, int]:
    """The partition's first offset and end, asked of the broker now."""

  @abc.abstractmethod
  def commit(self, tp, next_offset: int, timeout_s: float) -> None:
    """Moves the group's offset of ``tp`` to ``next_offset``; OffsetsError when the broker refused it or gave no
    answer within ``timeout_s``."""

  @abc.abstractmethod
  def committed(self, tp, timeout_s: float) -> Optional[int]:
    """The group's offset of ``tp`` (None: nothing committed); OffsetsError when no answer came."""

  @abc.abstractmethod
  def metadata_consumer(self):
    """A kafka-python consumer for the metadata watches of a streaming read (guarded by the reader's lock)."""

  @abc.abstractmethod
  def close(self) -> None:
    """Closes the connections without committing anything."""


def open_fetcher(config, client_role: str) -> PartitionFetcher:
  """A connected fetcher of the client ``config.kafka_client`` names; KafkaReadError when the brokers do not answer
  within the config's connect timeout."""
  if config.kafka_client == CONFLUENT:
    from beam_pipeline.io.kafka.fetch_librdkafka import LibrdkafkaFetcher
    return LibrdkafkaFetcher(config, client_role)
  from beam_pipeline.io.kafka.fetch_kafka_python import KafkaPythonFetcher
  return KafkaPythonFetcher(config, client_role)

