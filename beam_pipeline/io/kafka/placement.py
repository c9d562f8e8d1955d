"""Spreading the partition reads evenly over a job's parallel readers: the k-th partition planned (topics in the
order given, partitions in order, then those the topic may gain) goes to reader k mod N.

A runner that keys the reads (Flink, streaming) places each by a hash of the element, which leaves some readers
with several partitions and others with none (4 partitions on 2 readers: an even split in 6 cases of 16). Each
read gets a ``placement`` number, the first that makes the runner's hash land it on its reader; the number means
nothing else. Runners that deal the reads out in turn (Flink batch, the local runner's worker processes) keep
the order, which is already even.
"""

import itertools
from typing import List

import apache_beam as beam

from beam_pipeline.compat.flink import keyed_subtask
from beam_pipeline.records import PartitionRead

# The coder of the reads as they reach the reader: they are planned without a declared type.
_READ_CODER = beam.coders.FastPrimitivesCoder()


def spread_over_readers(reads: List, readers: int, max_parallelism: int = 0) -> List:
  """``reads`` with each PartitionRead placed on reader (its index among them) mod ``readers``; other elements
  (a pattern's NewTopicsRead) as they are."""
  if readers <= 1:
    return list(reads)
  spread, index = [], 0
  for read in reads:
    if isinstance(read, PartitionRead):
      reader = index % readers
      read = next(candidate for candidate in (read._replace(placement=n) for n in itertools.count())
                  if keyed_subtask(_READ_CODER.encode(candidate), readers, max_parallelism or None) == reader)
      index += 1
    spread.append(read)
  return spread
