"""The typed records that flow between the pipeline's stages, defined once."""

import datetime
from typing import Any, Dict, NamedTuple, Optional


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


class ParsedMessage(NamedTuple):
  """A message whose value decoded to a JSON object, not yet checked against the contract."""
  fields: Dict[str, Any]
  source: KafkaRecord


class SiteIncrement(NamedTuple):
  """A valid event: what it adds to the counters of (date, site_id)."""
  date: datetime.date
  site_id: int
  views: int
  clicks: int
  source: KafkaRecord


class DeadLetter(NamedTuple):
  """A message that a stage refused, with the reason; nothing is dropped without one of these."""
  stage: str  # 'parse' | 'validate' | 'write'
  reason: str
  source: KafkaRecord
