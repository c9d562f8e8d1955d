"""Spreading the partition reads evenly over the parallel readers of a runner that places each element by a hash
of it: the k-th partition planned (topics in the order given, partitions in order, then those the topic may gain)
goes to reader k mod N.

Such a runner (Flink, streaming) left alone puts some readers on several partitions and others on none (4
partitions on 2 readers: an even split in 6 cases of 16). Each read gets a ``placement`` number, the first that
makes the runner's hash land it on its reader; the number means nothing else. How the runner hashes is the
runner's knowledge, handed to the read as a ReaderPlacement (``runners/flink/key_groups.py``). Runners that deal
the reads out in turn (Flink batch, the local runner's worker processes) need none: the order is already even.
"""

import itertools
from typing import List, Optional, Protocol

import apache_beam as beam

from beam_pipeline.records import PartitionRead

# The coder of the reads as they reach the reader: they are planned without a declared type.
_READ_CODER = beam.coders.FastPrimitivesCoder()


class ReaderPlacement(Protocol):
  """How a runner places elements on its parallel readers."""

  readers: int

  def reader_of(self, encoded_element: bytes) -> int:
    """The reader (0 to readers - 1) that gets the element encoded as ``encoded_element``."""


def spread_over_readers(reads: List, placement: Optional[ReaderPlacement]) -> List:
  """``reads`` with each PartitionRead placed on reader (its index among them) mod ``placement.readers``; other
  elements (a pattern's NewTopicsRead) as they are."""
  if placement is None or placement.readers <= 1:
    return list(reads)
  spread, index = [], 0
  for read in reads:
    if isinstance(read, PartitionRead):
      reader = index % placement.readers
      read = next(candidate for candidate in (read._replace(placement=n) for n in itertools.count())
                  if placement.reader_of(_READ_CODER.encode(candidate)) == reader)
      index += 1
    spread.append(read)
  return spread
