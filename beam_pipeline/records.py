"""The typed records that flow between the pipeline's stages, defined once.

Between the reader and the counter write, messages travel in batches: one element holds the messages a reader
fetched from one partition in one poll (up to ``--max_records_per_bundle``), column by column. Beam's cost per
element (dispatch to each DoFn, timestamps, windows) is then paid once per batch instead of once per message, and
no stage builds a record object per message (the per-message types below are views, built for dead letters and
tests). Later stages keep a reference to the batch as read, so a dead letter can always carry its message's
bytes. Dead letters stay one element per refused message.
"""

import array
import bisect
import dataclasses
import datetime
import pickle
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

import apache_beam as beam


class PartitionRead(NamedTuple):
  """What the reader is asked to read of one Kafka partition: offsets [start_offset, stop_offset)."""
  topic: str
  partition: int
  start_offset: int
  stop_offset: int  # UNBOUNDED_STOP_OFFSET for a streaming read
  # A partition the topic may gain while the job streams: wait until it exists, then read it.
  awaits_creation: bool = False
  # Only steers which parallel reader a runner that keys the reads hands this one to (placement.py).
  placement: int = 0


class NewTopicsRead(NamedTuple):
  """Streaming with a topic pattern: read the matching topics that are not in ``known_topics`` (those the job
  planned PartitionReads for), every partition from its first offset, as they are created."""
  known_topics: Tuple[str, ...]


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
  """A message whose value decoded to a JSON object."""
  # The object as a dict, not yet checked against the contract; or, when ParseJson decoded and checked it in one
  # pass (transforms/contract_decoder.py), the checked event.
  fields: Any
  source: KafkaRecord


class SiteIncrement(NamedTuple):
  """A valid event: what it adds to the counters of (date, site_id)."""
  date: datetime.date
  site_id: int
  views: int
  clicks: int
  source: KafkaRecord


def _one_partition(records: Sequence[KafkaRecord]) -> Tuple[str, int]:
  where = {(record.topic, record.partition) for record in records}
  if len(where) != 1:
    raise ValueError(f'a batch holds the messages of one partition, not of {sorted(where) or "none"}')
  return where.pop()


@dataclasses.dataclass(slots=True)
class RecordBatch:
  """The messages of one partition from one poll, in offset order, as columns: no object per message."""
  topic: str
  partition: int
  offsets: List[int]
  timestamps_ms: List[int]
  keys: List[Optional[bytes]]
  values: List[Optional[bytes]]

  @classmethod
  def of(cls, records: Sequence[KafkaRecord]) -> 'RecordBatch':
    topic, partition = _one_partition(records)
    return cls(topic, partition, [r.offset for r in records], [r.timestamp_ms for r in records],
               [r.key for r in records], [r.value for r in records])

  def __len__(self) -> int:
    return len(self.offsets)

  def record(self, position: int) -> KafkaRecord:
    """The message at ``position`` (0 is the batch's first) as one KafkaRecord."""
    return KafkaRecord(self.keys[position], self.values[position], self.topic, self.partition,
                       self.offsets[position], self.timestamps_ms[position])

  def __iter__(self) -> Iterator[KafkaRecord]:
    return map(self.record, range(len(self)))

  def offsets_only(self) -> 'RecordBatch':
    """This batch without its messages' keys, values and timestamps: what a stage that holds batches until its
    bundle ends keeps of them. Offsets that follow one another (a partition's usually do) are kept as a range,
    whatever their number; others 8 bytes each."""
    offsets = self.offsets
    if offsets and offsets[-1] - offsets[0] == len(offsets) - 1:  # in offset order, each once: no gap
      return RecordBatch(self.topic, self.partition, range(offsets[0], offsets[-1] + 1), [], [], [])
    return RecordBatch(self.topic, self.partition, array.array('q', offsets), [], [], [])

  def before(self, offset: int) -> 'RecordBatch':
    """The messages whose offset is below ``offset`` (this batch itself when that is all of them)."""
    if not self.offsets or self.offsets[-1] < offset:
      return self
    end = bisect.bisect_left(self.offsets, offset)
    return RecordBatch(self.topic, self.partition, self.offsets[:end], self.timestamps_ms[:end], self.keys[:end],
                       self.values[:end])


@dataclasses.dataclass(slots=True)
class ParsedBatch:
  """The messages of a RecordBatch that decoded to JSON objects: each one's position in it and its object (a dict),
  or its event when ParseJson checked it against the contract already (a msgspec Struct, which pickles)."""
  records: RecordBatch
  positions: List[int]
  documents: List[Any]

  @classmethod
  def of(cls, messages: Sequence[ParsedMessage]) -> 'ParsedBatch':
    return cls(RecordBatch.of([m.source for m in messages]), list(range(len(messages))),
               [m.fields for m in messages])

  def __len__(self) -> int:
    return len(self.positions)

  def __iter__(self) -> Iterator[ParsedMessage]:
    record = self.records.record
    return (ParsedMessage(document, record(position)) for position, document in zip(self.positions, self.documents))


def _packed(numbers: Sequence[int]) -> array.array:
  """Numbers of the contract or positions, all at least 0 and below 2**63: 4 bytes each when all fit, else 8."""
  return array.array('I' if not numbers or max(numbers) < 2**32 else 'q', numbers)


class DayColumn:
  """The dates of a batch's increments as the batch's distinct days and an index into them per increment (2 bytes
  each while there are at most 65,536 distinct days): a sequence of dates, read like the list it replaces."""
  __slots__ = ('days', 'indexes')

  def __init__(self, dates: Sequence[datetime.date]):
    index_of = {}
    indexes = [index_of.setdefault(day, len(index_of)) for day in dates]
    self.days = tuple(index_of)
    self.indexes = array.array('H' if len(self.days) <= 2**16 else 'I', indexes)

  def __len__(self) -> int:
    return len(self.indexes)

  def __getitem__(self, position: int) -> datetime.date:
    return self.days[self.indexes[position]]

  def __iter__(self) -> Iterator[datetime.date]:
    return map(self.days.__getitem__, self.indexes)


@dataclasses.dataclass(slots=True)
class IncrementBatch:
  """The valid events of a RecordBatch: each one's position in it and what it adds to which counters."""
  records: RecordBatch
  positions: Sequence[int]  # lists, or packed once held (without_messages)
  dates: Sequence[datetime.date]
  site_ids: Sequence[int]
  views: Sequence[int]
  clicks: Sequence[int]

  @classmethod
  def of(cls, increments: Sequence[SiteIncrement]) -> 'IncrementBatch':
    return cls(RecordBatch.of([i.source for i in increments]), list(range(len(increments))),
               [i.date for i in increments], [i.site_id for i in increments], [i.views for i in increments],
               [i.clicks for i in increments])

  def __len__(self) -> int:
    return len(self.positions)

  def distinct_dates(self) -> Set[datetime.date]:
    """The dates of the batch's increments, each once; a held batch's DayColumn has them already."""
    return set(self.dates.days if isinstance(self.dates, DayColumn) else self.dates)

  def __iter__(self) -> Iterator[SiteIncrement]:
    record = self.records.record
    return (SiteIncrement(day, site_id, views, clicks, record(position)) for position, day, site_id, views, clicks
            in zip(self.positions, self.dates, self.site_ids, self.views, self.clicks))

  def without_messages(self) -> 'IncrementBatch':
    """The increments with only the offsets of the batch as read (RecordBatch.offsets_only), their numbers packed
    (_packed) and their dates as DayColumn, where lists hold an object of 32 bytes per number and per date: what a
    stage that holds batches until its bundle ends keeps of them, about 18 bytes an increment."""
    return IncrementBatch(self.records.offsets_only(), _packed(self.positions), DayColumn(self.dates),
                          _packed(self.site_ids), _packed(self.views), _packed(self.clicks))

  def select(self, indexes: Sequence[int]) -> 'IncrementBatch':
    """The increments at the given indexes (into this batch), in that order."""
    return IncrementBatch(self.records, [self.positions[i] for i in indexes], [self.dates[i] for i in indexes],
                          [self.site_ids[i] for i in indexes], [self.views[i] for i in indexes],
                          [self.clicks[i] for i in indexes])


class DeadLetter(NamedTuple):
  """A message that a stage refused, with the reason; nothing is dropped without one of these."""
  stage: str  # 'parse' | 'validate'
  reason: str
  source: KafkaRecord


class MessageBatchCoder(beam.coders.Coder):
  """Encodes a batch with pickle; estimates its encoded size from its messages without encoding it.

  Beam estimates the size of a sample of each stage's output elements for its metrics, and with few elements per
  bundle (as batches are) it samples nearly all of them: encoding each batch for that took a fifth of the run.
  """

  _BYTES_PER_MESSAGE = 24  # a pickled message's offset and timestamp, roughly
  _SIZE_SAMPLE = 32  # messages looked at per estimate

  def encode(self, batch) -> bytes:
    return pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)

  def decode(self, encoded: bytes):
    return pickle.loads(encoded)

  def is_deterministic(self) -> bool:
    return False

  def estimate_size(self, batch) -> int:
    # Extrapolated from the first messages: sizes vary little within a batch, and this runs on most batches.
    # A parsed or increment batch carries the whole batch as read.
    records = batch if type(batch) is RecordBatch else batch.records
    head = range(min(len(records.values), self._SIZE_SAMPLE))  # none in a batch kept as offsets only
    size = sum(len(records.values[i] or b'') + len(records.keys[i] or b'') + self._BYTES_PER_MESSAGE for i in head)
    return size * len(records) // max(len(head), 1)


for _batch_type in (RecordBatch, ParsedBatch, IncrementBatch):
  beam.coders.registry.register_coder(_batch_type, MessageBatchCoder)
