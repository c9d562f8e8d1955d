"""Every compression codec a producer may use is read out of the box, by both clients, and a codec the reader
cannot decompress stops the job with one line saying what to install.

Events are written by Kafka's own Java producer (testing/java_producer.py), as most users' producers write them;
the load generator's --compression_type is checked too.
"""

import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.testing.counters import expected_counters, read_counters
from beam_pipeline.testing.java_producer import CODECS, produce_with_java
from beam_pipeline.testing.jobs import job_args, run_bounded
from beam_pipeline.testing.topics import end_offsets, read_dead_letters
from beam_pipeline.tools.produce import INVALID_KINDS, SyntheticMessage, generate

# The default run reads lz4 (the codec the issue met) with both clients; the slow run the other codecs.
_DEFAULT_CODEC = 'lz4'


def _launch(*args: str, pythonpath: Path) -> subprocess.CompletedProcess:
  """The bounded job as a user runs it, with ``pythonpath`` ahead of the installed packages."""
  env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(pythonpath), os.environ.get('PYTHONPATH')]))}
  return subprocess.run([sys.executable, '-m', 'beam_pipeline', *args, '--bounded'], cwd=REPO_ROOT, env=env,
                        capture_output=True, text=True, timeout=180)


def _without_lz4(directory: Path) -> Path:
  """A directory that, first on PYTHONPATH, hides the lz4 package, as on a machine where it is not installed."""
  package = directory / 'lz4'
  package.mkdir(parents=True)
  for module in ('__init__.py', 'frame.py'):
    (package / module).write_text("raise ImportError('No module named lz4 (hidden by the test)')\n")
  return directory


@pytest.mark.parametrize('codec', [codec if codec == _DEFAULT_CODEC else pytest.param(codec, marks=pytest.mark.slow)
                                   for codec in CODECS])
def test_events_a_java_producer_compressed_are_counted_exactly(
    local_stack, topic, keyspace, cassandra_port, cassandra_session, kafka_client, codec):
  expected = produce_with_java(local_stack.kafka, topic, generate(2000, keys=120, bad_ratio=0.05, seed=41), codec)
  assert set(expected.invalid_by_kind) == set(INVALID_KINDS), 'the dataset must hold every invalid kind'
  bootstrap_servers = local_stack.kafka.address

  summary = run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--kafka_client', kafka_client))

  assert read_counters(cassandra_session, keyspace) == expected_counters(expected)
  dead_letters = {(d['partition'], d['offset']): d for d in read_dead_letters(bootstrap_servers, topic)}
  assert {position: d['stage'] for position, d in dead_letters.items()} == {
      position: INVALID_KINDS[kind][0] for position, kind in expected.invalid_offsets.items()}
  assert (summary.read, summary.counted) == (expected.messages, expected.valid)


def test_a_batch_kafka_python_cannot_decompress_stops_the_job_with_one_line_naming_what_to_install(
    local_stack, topic, keyspace, cassandra_port, tmp_path):
  def events(first, last):  # one key: every message in one partition
    return [SyntheticMessage(b'7', f'{{"date": "2017-02-04", "site_id": {i}, "views": 1}}'.encode(), None,
                             (datetime.date(2017, 2, 4), i, 1, 0)) for i in range(first, last)]
  produce_with_java(local_stack.kafka, topic, events(0, 5), 'none')
  produce_with_java(local_stack.kafka, topic, events(5, 50), 'lz4')
  [(partition, end)] = [(p, end) for p, end in end_offsets(local_stack.kafka.address, topic).items() if end]
  assert end == 50

  result = _launch(*job_args(local_stack.kafka.address, topic, keyspace, cassandra_port),
                   pythonpath=_without_lz4(tmp_path / 'site'))

  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: ') and 'lz4-compressed' in last and 'pip install lz4' in last, last
  # The first five messages are readable: the line points at the first lz4 batch, not at the partition's start.
  assert f'topic {topic} partition {partition} offset 5 ' in last, last


def test_produce_compresses_with_the_codec_asked_for(bootstrap_servers, topic, keyspace, cassandra_port,
                                                     cassandra_session, tmp_path):
  totals_file = tmp_path / 'totals.json'
  produced = subprocess.run(
      [sys.executable, '-m', 'beam_pipeline.tools.produce', '--bootstrap_servers', bootstrap_servers, '--topic', topic,
       '--count', '800', '--keys', '60', '--bad_ratio', '0', '--compression_type', 'lz4',
       '--totals_file', str(totals_file)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert produced.returncode == 0, produced.stderr
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)

  # Without lz4 nothing can be read: every batch is lz4-compressed.
  hidden = _launch(*args, pythonpath=_without_lz4(tmp_path / 'site'))
  summary = run_bounded(*args)

  assert hidden.returncode == 1 and 'pip install lz4' in hidden.stderr.strip().splitlines()[-1]
  assert re.search(r'partition \d offset 0 ', hidden.stderr)
  want = {(row['date'], row['site_id']): (row['views'], row['clicks']) for row in json.loads(totals_file.read_text())}
  got = {(day.isoformat(), site_id): counts for (day, site_id), counts in read_counters(cassandra_session,
                                                                                        keyspace).items()}
  assert got == want
  assert summary.read == summary.counted == json.loads(produced.stdout)['messages'] == 800


def test_produce_refuses_kafka_security_options_that_do_not_fit_together():
  result = subprocess.run(
      [sys.executable, '-m', 'beam_pipeline.tools.produce', '--topic', 't', '--count', '1',
       '--kafka_security_protocol', 'SASL_SSL', '--kafka_username', 'u', '--kafka_password_env', 'P'],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)

  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].endswith(
      '--kafka_security_protocol=SASL_SSL needs --kafka_sasl_mechanism, one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512')
