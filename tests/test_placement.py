"""The partition reads are spread evenly over the parallel readers of a streaming Flink job: checked here against
the Java classes that place them (Beam's Flink runner and Flink, from the jars the job server runs), and in
tests/test_flink.py against a running job's per-subtask metrics."""

import re
import subprocess
from pathlib import Path

import apache_beam as beam
import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.io.kafka.placement import spread_over_readers
from beam_pipeline.processes import jvm
from beam_pipeline.records import UNBOUNDED_STOP_OFFSET, NewTopicsRead, PartitionRead
from beam_pipeline.runners.flink.jvm import SUPPORTED_JAVA
from beam_pipeline.runners.flink.key_groups import WRITTEN_FOR, FlinkKeyedReaders, default_max_parallelism

_CODER = beam.coders.FastPrimitivesCoder()
_SUBTASK_OF_ELEMENTS = REPO_ROOT / 'beam_pipeline' / 'testing' / 'java' / 'FlinkSubtaskOfElements.java'


def _reads(topic, partitions, headroom=0):
  return ([PartitionRead(topic, p, 0, UNBOUNDED_STOP_OFFSET) for p in range(partitions)] +
          [PartitionRead(topic, p, 0, UNBOUNDED_STOP_OFFSET, awaits_creation=True)
           for p in range(partitions, partitions + headroom)])


def _subtasks_flink_gives(jars_dir: Path, lines) -> list:
  """What FlinkSubtaskOfElements.java prints for ``lines`` of (parallelism, max parallelism, encoded element)."""
  java = jvm.find_java(SUPPORTED_JAVA, 'Flink 1.19')
  given = ''.join(f'{parallelism} {max_parallelism} {element.hex()}\n'
                  for parallelism, max_parallelism, element in lines)
  result = subprocess.run([java, '-cp', jvm.classpath(jars_dir), str(_SUBTASK_OF_ELEMENTS)], input=given,
                          capture_output=True, text=True, timeout=120, check=True)
  return [int(line) for line in result.stdout.split()]


def test_the_kth_read_lands_where_flinks_own_classes_put_reader_k_mod_n(flink_job_server):
  reads = _reads('site-events', 6, headroom=8) + _reads('other-topic', 3)
  cases = [(readers, max_parallelism) for readers in (2, 3, 4, 7) for max_parallelism in (0, 256)]
  lines, wanted = [], []
  for readers, max_parallelism in cases:
    spread = spread_over_readers(reads, FlinkKeyedReaders(readers, max_parallelism))
    assert [read._replace(placement=0) for read in spread] == reads
    lines += [(readers, max_parallelism, _CODER.encode(read)) for read in spread]
    wanted += [k % readers for k in range(len(reads))]
  assert _subtasks_flink_gives(flink_job_server.jars_dir, lines) == wanted


def test_the_key_hashing_copies_the_java_runner_the_pom_pins():
  # When this fails, services/flink/pom.xml moved to another Beam or Flink: check key_groups.py against its
  # Java code (the test above does so on the jars) and update WRITTEN_FOR.
  pom = (REPO_ROOT / 'services' / 'flink' / 'pom.xml').read_text()
  pinned = {name: re.search(f'<{re.escape(name)}>([^<]+)</', pom).group(1) for name in WRITTEN_FOR}
  assert pinned == WRITTEN_FOR


def test_no_placement_or_a_single_reader_leaves_the_reads_and_a_patterns_new_topics_read_as_they_are():
  reads = _reads('t', 4) + [NewTopicsRead(('t',))]
  assert spread_over_readers(reads, None) == reads
  assert spread_over_readers(reads, FlinkKeyedReaders(1)) == reads
  assert spread_over_readers(reads, FlinkKeyedReaders(2))[-1] == NewTopicsRead(('t',))


def test_flinks_default_max_parallelism():
  assert [default_max_parallelism(p) for p in (1, 2, 85, 86, 200, 30000)] == [128, 128, 128, 256, 512, 32768]
