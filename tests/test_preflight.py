"""A new user's first runs on their own topic and cluster: what is missing is created or refused at launch, in
seconds, with one line that says how to fix it."""

import json
import subprocess
import sys
import time

import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.io.kafka.admin import delete_topics, ensure_topics
from beam_pipeline.testing.counters import expected_counters, read_counters
from beam_pipeline.testing.datasets import allow_messages_up_to, fresh_keyspace, produce_dataset, TEST_PARTITIONS
from beam_pipeline.testing.jobs import job_args, run_bounded
from beam_pipeline.testing.topics import read_dead_letters


def _launch(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', 'beam_pipeline', '--bounded', *args], cwd=REPO_ROOT,
                        capture_output=True, text=True, timeout=timeout_s)


def _refused_in_seconds(*args: str):
  """Launches the job, which must refuse to start: (exit code, its only stderr line, seconds taken)."""
  started = time.monotonic()
  result = _launch(*args)
  elapsed = time.monotonic() - started
  lines = result.stderr.strip().splitlines()
  assert result.stdout == ''
  assert len(lines) == 1, result.stderr
  return result.returncode, lines[0], elapsed


@pytest.fixture
def source_only_topic(request, bootstrap_servers):
  """A topic with TEST_PARTITIONS partitions and no dead-letter topic, as on a user's own cluster."""
  name = f'own_{request.node.name[:30]}_{int(time.time() * 1000) % 100000}'.replace('[', '_').replace(']', '_')
  ensure_topics(bootstrap_servers, [name], TEST_PARTITIONS)
  yield name
  delete_topics(bootstrap_servers, [name, f'{name}-dlq', f'{name}-other-dlq'])


def _partitions(bootstrap_servers: str, topic: str):
  """The topic's partition numbers, or None if the topic does not exist."""
  from kafka import KafkaConsumer
  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers)
  try:
    return consumer.partitions_for_topic(topic) if topic in consumer.topics() else None
  finally:
    consumer.close()


def test_a_missing_dead_letter_topic_is_created_with_the_source_partitions_and_receives_the_dead_letters(
    bootstrap_servers, source_only_topic, keyspace, cassandra_port, cassandra_session):
  expected = produce_dataset(bootstrap_servers, source_only_topic, count=500, keys=20, bad_ratio=0.1, seed=3)

  summary = run_bounded(*job_args(bootstrap_servers, source_only_topic, keyspace, cassandra_port))

  assert _partitions(bootstrap_servers, f'{source_only_topic}-dlq') == set(range(TEST_PARTITIONS))
  assert len(read_dead_letters(bootstrap_servers, source_only_topic)) == summary.dead_lettered_total == (
      expected.messages - expected.valid)
  assert read_counters(cassandra_session, keyspace) == expected_counters(expected)


def test_a_missing_dead_letter_topic_is_refused_at_launch_when_the_job_may_not_create_topics(
    bootstrap_servers, source_only_topic, keyspace, cassandra_port):
  code, line, elapsed = _refused_in_seconds(
      *job_args(bootstrap_servers, source_only_topic, keyspace, cassandra_port, '--no_create_dead_letter_topic',
                '--dead_letter_topic', f'{source_only_topic}-other-dlq'))

  assert code == 2 and elapsed < 10
  assert line.startswith(f"error: dead-letter topic '{source_only_topic}-other-dlq' does not exist")
  assert f'--partitions {TEST_PARTITIONS}' in line and '--no_create_dead_letter_topic' in line
  assert _partitions(bootstrap_servers, f'{source_only_topic}-other-dlq') is None


def test_a_dead_letter_topic_too_small_for_any_dead_letter_is_refused_at_launch_naming_the_setting(
    bootstrap_servers, source_only_topic, keyspace, cassandra_port):
  dead_letters = f'{source_only_topic}-dlq'
  ensure_topics(bootstrap_servers, [dead_letters], 1)
  allow_messages_up_to(bootstrap_servers, dead_letters, 1000)
  code, line, elapsed = _refused_in_seconds(
      *job_args(bootstrap_servers, source_only_topic, keyspace, cassandra_port, '--dead_letter_topic', dead_letters))

  assert code == 2 and elapsed < 10
  assert line.startswith(f"error: dead-letter topic '{dead_letters}' takes records of at most 1000 bytes")
  assert 'max.message.bytes=' in line


def test_a_missing_topic_is_refused_in_seconds_with_one_line(bootstrap_servers, keyspace, cassandra_port):
  code, line, elapsed = _refused_in_seconds(
      *job_args(bootstrap_servers, 'no_such_topic_here', keyspace, cassandra_port))

  assert code == 2 and elapsed < 10
  assert line == (f"error: topic 'no_such_topic_here' does not exist on {bootstrap_servers}: check --topic (and "
                  '--bootstrap_servers), or create the topic')


def test_an_unreachable_broker_is_refused_in_seconds_with_one_line(keyspace, cassandra_port):
  code, line, elapsed = _refused_in_seconds(*job_args('127.0.0.1:1', 'some_topic', keyspace, cassandra_port))

  assert code == 1 and elapsed < 10
  assert line.startswith('error: no Kafka broker answered at 127.0.0.1:1: check --bootstrap_servers')


def test_a_missing_keyspace_is_refused_naming_the_schema_command_and_create_schema(
    bootstrap_servers, topic, cassandra_port):
  code, line, elapsed = _refused_in_seconds(*job_args(bootstrap_servers, topic, 'no_such_keyspace', cassandra_port))

  assert code == 2 and elapsed < 10
  assert line.startswith("error: keyspace 'no_such_keyspace' does not exist on 127.0.0.1:")
  assert (f'python -m beam_pipeline.tools.create_schema --cassandra_hosts 127.0.0.1 --cassandra_port {cassandra_port} '
          '--keyspace no_such_keyspace --table site_stats') in line and '--create_schema' in line


def test_a_table_of_the_wrong_shape_is_refused_by_name(bootstrap_servers, topic, keyspace, cassandra_port,
                                                       cassandra_session):
  cassandra_session.execute(f'CREATE TABLE {keyspace}.visits (date text, site_id int, views counter, '
                            'PRIMARY KEY (date, site_id))')

  code, line, elapsed = _refused_in_seconds(
      *job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--table', 'visits'))

  assert code == 2 and elapsed < 10
  assert line.startswith(f'error: table {keyspace}.visits is not a site counter table (date is text, not date; '
                         'no column clicks)')


def test_an_unreachable_cassandra_is_refused_in_seconds_with_one_line(bootstrap_servers, topic, keyspace):
  code, line, elapsed = _refused_in_seconds(*job_args(bootstrap_servers, topic, keyspace, 1))

  assert code == 1 and elapsed < 10
  assert line.startswith('error: no Cassandra node answered at 127.0.0.1:1: check --cassandra_hosts')


def test_nothing_is_created_when_another_check_refuses_the_launch(bootstrap_servers, source_only_topic,
                                                                  cassandra_port):
  code, _, _ = _refused_in_seconds(*job_args(bootstrap_servers, source_only_topic, 'no_such_keyspace',
                                             cassandra_port))

  assert code == 2
  assert _partitions(bootstrap_servers, f'{source_only_topic}-dlq') is None


def test_create_schema_creates_a_missing_keyspace_and_table_and_the_run_is_exact(
    bootstrap_servers, topic, cassandra_port, cassandra_session, request):
  new_keyspace = f'created_{topic[-8:]}'
  request.addfinalizer(lambda: cassandra_session.execute(f'DROP KEYSPACE IF EXISTS {new_keyspace}'))
  expected = produce_dataset(bootstrap_servers, topic, count=300, keys=15, seed=5)

  run_bounded(*job_args(bootstrap_servers, topic, new_keyspace, cassandra_port, '--create_schema'))

  assert read_counters(cassandra_session, new_keyspace) == expected_counters(expected)
  replication, = cassandra_session.execute(
      'SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s', (new_keyspace,)).one()
  assert replication['replication_factor'] == '1'  # min(3, nodes) on this one-node cluster


_THREE_REPLICAS = "{'class': 'SimpleStrategy', 'replication_factor': '3'}"


@pytest.mark.parametrize('options,refused', [
    ((), '--cassandra_write_consistency LOCAL_QUORUM: it needs 2 replicas'),  # the default
    (('--cassandra_write_consistency', 'ALL'), '--cassandra_write_consistency ALL: it needs 3 replicas'),
    (('--cassandra_write_consistency', 'ONE', '--cassandra_read_consistency', 'QUORUM', '--sink_mode', 'reconcile',
      '--dates', '2017-02-01'), '--cassandra_read_consistency QUORUM: it needs 2 replicas'),
])
def test_a_level_more_replicas_than_the_nodes_up_cannot_meet_is_refused_in_one_line(
    bootstrap_servers, topic, cassandra_port, cassandra_session, request, options, refused):
  """Three replicas asked for on this one-node Cassandra: only one exists, so a majority (or all) never answers."""
  with fresh_keyspace(cassandra_session, request.node.name, {'class': 'SimpleStrategy', 'replication_factor': 3}) as (
      keyspace):
    code, line, elapsed = _refused_in_seconds(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, *options))

  assert code == 2 and elapsed < 10
  option = refused.split()[0]
  assert line == (f'error: keyspace {keyspace} (replication {_THREE_REPLICAS}) cannot meet {refused} in the cluster, '
                  f'and only 1 of its 3 can be on nodes that are up (1 of 1 nodes in the cluster): lower {option}, or '
                  'add nodes')


def test_a_level_the_keyspace_replication_cannot_meet_is_refused_naming_the_alter_keyspace_that_would(
    bootstrap_servers, topic, keyspace, cassandra_port):
  code, line, elapsed = _refused_in_seconds(
      *job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--cassandra_write_consistency', 'THREE'))

  assert code == 2 and elapsed < 10
  one_replica = "{'class': 'SimpleStrategy', 'replication_factor': '1'}"
  assert line == (f'error: keyspace {keyspace} (replication {one_replica}) cannot meet --cassandra_write_consistency '
                  'THREE: it needs 3 replicas in the cluster, and the keyspace places 1 there: lower '
                  "--cassandra_write_consistency, or raise the keyspace's replication (ALTER KEYSPACE "
                  f'{keyspace} WITH replication = {_THREE_REPLICAS}) and have 3 nodes up in the cluster')


def test_create_schema_is_refused_a_replication_the_level_cannot_meet_and_creates_nothing(
    bootstrap_servers, source_only_topic, cassandra_port, cassandra_session):
  new_keyspace = f'unmet_{source_only_topic[-5:]}'
  code, line, _ = _refused_in_seconds(*job_args(
      bootstrap_servers, source_only_topic, new_keyspace, cassandra_port, '--create_schema',
      '--schema_replication', '{"class": "SimpleStrategy", "replication_factor": 3}'))

  assert code == 2
  assert line.startswith(f'error: keyspace {new_keyspace} (replication {_THREE_REPLICAS}) cannot meet '
                         '--cassandra_write_consistency LOCAL_QUORUM')
  assert cassandra_session.execute('SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s',
                                   (new_keyspace,)).one() is None
  assert _partitions(bootstrap_servers, f'{source_only_topic}-dlq') is None


def test_verbose_adds_the_traceback_to_the_one_line_error(bootstrap_servers, keyspace, cassandra_port):
  result = _launch(*job_args(bootstrap_servers, 'no_such_topic_here', keyspace, cassandra_port, '--verbose'))

  assert result.returncode == 2
  assert 'Traceback (most recent call last)' in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith("error: topic 'no_such_topic_here' does not exist")


def test_an_error_raised_on_a_worker_is_one_line_too(bootstrap_servers, topic, cassandra_port):
  produce_dataset(bootstrap_servers, topic, count=20, keys=2, bad_ratio=0, seed=7)

  result = _launch(*job_args(bootstrap_servers, topic, 'no_such_keyspace', cassandra_port, '--skip_preflight'))

  assert result.returncode == 1
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: cannot write to no_such_keyspace.site_stats') and '--create_schema' in last


def test_an_address_that_is_not_a_kafka_broker_is_refused_as_a_setting(keyspace, cassandra_port, topic):
  code, line, elapsed = _refused_in_seconds(*job_args(f'127.0.0.1:{cassandra_port}', topic, keyspace,
                                                      cassandra_port))

  assert code == 2 and elapsed < 20
  assert line.startswith(f'error: 127.0.0.1:{cassandra_port} took a connection but did not answer as a Kafka broker')
  assert '--kafka_security_protocol=PLAINTEXT' in line


def test_a_schema_cassandra_refuses_to_create_is_one_line_and_creates_no_topic_either(
    bootstrap_servers, source_only_topic, cassandra_port):
  code, line, _ = _refused_in_seconds(*job_args(
      bootstrap_servers, source_only_topic, 'refused_schema_ks', cassandra_port, '--create_schema',
      '--schema_replication', '{"class": "NetworkTopologyStrategy", "no_such_dc": 1}'))

  assert code == 2
  assert line.startswith('error: Cassandra at 127.0.0.1:') and 'refused to create site_stats' in line
  assert '--schema_replication' in line
  assert _partitions(bootstrap_servers, f'{source_only_topic}-dlq') is None


def test_run_backfill_reports_a_refused_launch_as_its_json_line_and_verbose_adds_the_traceback(
    bootstrap_servers, keyspace, cassandra_port):
  command = [str(REPO_ROOT / 'run_backfill.sh'), '--dates', '2017-02-01', '--topic', 'no_such_topic_here',
             '--keyspace', keyspace, '--bootstrap_servers', bootstrap_servers, '--cassandra_port', str(cassandra_port)]

  quiet = subprocess.run(command, capture_output=True, text=True, timeout=120)
  verbose = subprocess.run([*command, '--verbose'], capture_output=True, text=True, timeout=120)

  for result in (quiet, verbose):
    assert result.returncode == 2
    line, = result.stdout.strip().splitlines()
    assert json.loads(line)['status'] == 'failed'
    assert json.loads(line)['error'].startswith("topic 'no_such_topic_here' does not exist")
  assert 'Traceback' not in quiet.stderr and 'Traceback (most recent call last)' in verbose.stderr
