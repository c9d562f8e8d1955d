"""The partition reads are spread evenly over the parallel readers of a runner that keys them (Flink streaming);
tests/test_flink.py checks the same on the session cluster, from Flink's own per-subtask metrics."""

import apache_beam as beam
import pytest

from beam_pipeline.compat.flink import default_max_parallelism, keyed_subtask
from beam_pipeline.io.kafka.placement import spread_over_readers
from beam_pipeline.records import UNBOUNDED_STOP_OFFSET, NewTopicsRead, PartitionRead

_CODER = beam.coders.FastPrimitivesCoder()


def _reads(topic, partitions, headroom=0):
  return ([PartitionRead(topic, p, 0, UNBOUNDED_STOP_OFFSET) for p in range(partitions)] +
          [PartitionRead(topic, p, 0, UNBOUNDED_STOP_OFFSET, awaits_creation=True)
           for p in range(partitions, partitions + headroom)])


@pytest.mark.parametrize('readers', [2, 3, 4, 7])
@pytest.mark.parametrize('max_parallelism', [0, 256])
def test_the_kth_read_lands_on_reader_k_mod_n_placeholders_included(readers, max_parallelism):
  reads = _reads('site-events', 6, headroom=8) + _reads('other-topic', 3)
  spread = spread_over_readers(reads, readers, max_parallelism)
  assert [read._replace(placement=0) for read in spread] == reads
  assert [keyed_subtask(_CODER.encode(read), readers, max_parallelism or None) for read in spread] == [
      k % readers for k in range(len(reads))]


def test_a_single_reader_and_a_patterns_new_topics_read_are_left_as_they_are():
  reads = _reads('t', 4) + [NewTopicsRead(('t',))]
  assert spread_over_readers(reads, 1) == reads
  assert spread_over_readers(reads, 2)[-1] == NewTopicsRead(('t',))


def test_flinks_default_max_parallelism():
  assert [default_max_parallelism(p) for p in (1, 2, 85, 86, 200, 30000)] == [128, 128, 128, 256, 512, 32768]
