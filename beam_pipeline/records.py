"""The typed records that flow between the pipeline's stages, defined once.

Between the reader and the counter write, messages travel in batches: one element is a list of the messages a
reader fetched from one partition in one poll (up to ``--max_records_per_bundle``). Beam's cost per element
(dispatch to each DoFn, timestamps, windows) is then paid once per batch instead of once per message. Dead
letters stay one element per refused message.
"""

import datetime
import pickle
from typing import Any, Dict, NamedTuple, Optional

import apache_beam as beam


class PartitionRead(NamedTuple):
  """What the reader is asked to read of one Kafka partition: offsets [start_offset, stop_offset)."""
  topic: str
  partition: int
  start_offset: int
  stop_offset: int  # UNBOUNDED_STOP_OFFSET for a streaming read
  # A partition the topic may gain while the job streams: wait until it exists, then read it.
  awaits_creation: bool = False


# Kafka offsets are signed 64-bit; a streaming read's range is open up to the largest one.
UNBOUNDED_STOP_OFFSET = 2**63 - 1


class KafkaRecord(NamedTuple):
  """One message as read from Kafka, untouched."""
  key: Optional[bytes]
  value: Optional[bytes]
  topic: str
  partition: int
  offset: int
  timestamp_ms: int


class RecordBatch(list):
  """KafkaRecords of one partition, in offset order."""


class ParsedMessage(NamedTuple):
  """A message whose value decoded to a JSON object, not yet checked against the contract."""
  fields: Dict[str, Any]
  source: KafkaRecord


class ParsedBatch(list):
  """ParsedMessages of one partition, in offset order."""


class SiteIncrement(NamedTuple):
  """A valid event: what it adds to the counters of (date, site_id)."""
  date: datetime.date
  site_id: int
  views: int
  clicks: int
  source: KafkaRecord


class IncrementBatch(list):
  """SiteIncrements of one partition, in offset order."""


class DeadLetter(NamedTuple):
  """A message that a stage refused, with the reason; nothing is dropped without one of these."""
  stage: str  # 'parse' | 'validate' | 'write'
  reason: str
  source: KafkaRecord


class MessageBatchCoder(beam.coders.Coder):
  """Encodes a batch with pickle; estimates its encoded size from its messages without encoding it.

  Beam estimates the size of a sample of each stage's output elements for its metrics, and with few elements per
  bundle (as batches are) it samples nearly all of them: encoding each batch for that took a fifth of the run.
  """

  _BYTES_PER_MESSAGE = 64  # the pickled record's fields besides key and value, roughly
  _SIZE_SAMPLE = 32  # messages looked at per estimate

  def encode(self, batch) -> bytes:
    return pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)

  def decode(self, encoded: bytes):
    return pickle.loads(encoded)

  def is_deterministic(self) -> bool:
    return False

  def estimate_size(self, batch) -> int:
    # Extrapolated from the first messages: sizes vary little within a batch, and this runs on most batches.
    head = batch[:self._SIZE_SAMPLE]
    size = 0
    for message in head:
      record = message if type(message) is KafkaRecord else message.source
      size += len(record.value or b'') + len(record.key or b'') + self._BYTES_PER_MESSAGE
    return size * len(batch) // max(len(head), 1)


for _batch_type in (RecordBatch, ParsedBatch, IncrementBatch):
  beam.coders.registry.register_coder(_batch_type, MessageBatchCoder)
