"""The whole graph on the local runner against the real Kafka and Cassandra: exact counters, nothing lost."""

import base64
import glob
import json
import time

import pytest

from beam_pipeline.tools.produce import INVALID_KINDS
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import produce_dataset
from beam_pipeline.testing.jobs import job_args, run_bounded
from beam_pipeline.testing.topics import commit_offsets, committed_offsets, end_offsets, read_dead_letters


def _original_payload(dead_letter: dict):
  if dead_letter['payload'] is None:
    return None
  if dead_letter.get('payload_encoding') == 'base64':
    return base64.b64decode(dead_letter['payload'])
  return dead_letter['payload'].encode('utf-8')


def test_bounded_run_counts_the_exact_sums_and_dead_letters_every_invalid_message(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path, kafka_client):
  expected = produce_dataset(bootstrap_servers, topic, count=3000, keys=150, bad_ratio=0.05, seed=3)
  assert set(expected.invalid_by_kind) == set(INVALID_KINDS), 'the dataset must hold every invalid kind'

  summary = run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port,
                                  '--dead_letter_path', str(tmp_path / 'dead'), '--kafka_client', kafka_client))

  assert read_counters(cassandra_session, keyspace) == expected_counters(expected)
  dead_letters = read_dead_letters(bootstrap_servers, topic)
  by_offset = {(d['partition'], d['offset']): d for d in dead_letters}
  assert len(dead_letters) == len(by_offset) == len(expected.invalid_offsets)
  assert set(by_offset) == set(expected.invalid_offsets)
  for position, kind in expected.invalid_offsets.items():
    dead_letter = by_offset[position]
    assert dead_letter['stage'] == INVALID_KINDS[kind][0], (kind, dead_letter)
    assert dead_letter['reason'], kind
    assert dead_letter['topic'] == topic and dead_letter['timestamp'] > 0
    assert _original_payload(dead_letter) == INVALID_KINDS[kind][1](None), kind
  assert summary.read == expected.messages
  assert summary.counted == expected.valid
  assert summary.dead_lettered == dict(expected.invalid_by_stage)
  assert summary.read == summary.counted + summary.dead_lettered_total
  assert summary.cassandra_writes >= len(expected.per_key)
  files = glob.glob(str(tmp_path / 'dead' / 'dead-letters-*.jsonl'))
  from_files = [json.loads(line) for name in files for line in open(name, encoding='utf-8')]
  assert sorted((d['partition'], d['offset']) for d in from_files) == sorted(expected.invalid_offsets)


def test_bad_bytes_are_dead_lettered_as_base64(bootstrap_servers, topic, keyspace, cassandra_port):
  produce_dataset(bootstrap_servers, topic, count=200, keys=10, bad_ratio=0.2, seed=5)

  run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port))

  not_utf8 = [d for d in read_dead_letters(bootstrap_servers, topic) if d.get('payload_encoding') == 'base64']
  assert not_utf8 and all(base64.b64decode(d['payload']).startswith(b'\xff\xfe') for d in not_utf8)
  assert all('UTF-8' in d['reason'] for d in not_utf8)


def test_a_rerun_with_the_same_group_counts_only_what_arrived_since(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, kafka_client):
  first = produce_dataset(bootstrap_servers, topic, count=1000, keys=50, seed=11)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--kafka_client', kafka_client)
  run_bounded(*args)
  assert committed_offsets(bootstrap_servers, f'{topic}-group', topic) == end_offsets(bootstrap_servers, topic)

  nothing_new = run_bounded(*args)
  second = produce_dataset(bootstrap_servers, topic, count=700, keys=50, seed=12)
  only_new = run_bounded(*args)

  assert nothing_new.read == 0
  assert only_new.read == second.messages
  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(first),
                                                                    expected_counters(second))


def test_start_and_stop_times_select_a_window(bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session,
                                              kafka_client):
  before = produce_dataset(bootstrap_servers, topic, count=300, keys=20, bad_ratio=0, seed=21)
  time.sleep(0.05)
  boundary_ms = int(time.time() * 1000)
  time.sleep(0.05)
  after = produce_dataset(bootstrap_servers, topic, count=200, keys=20, bad_ratio=0, seed=22)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--kafka_client', kafka_client)

  window_after = run_bounded(*args, '--consumer_group', f'{topic}-after', '--start_time', str(boundary_ms))
  assert window_after.read == after.messages
  assert read_counters(cassandra_session, keyspace) == expected_counters(after)

  cassandra_session.execute(f'TRUNCATE {keyspace}.site_stats')
  window_before = run_bounded(*args, '--consumer_group', f'{topic}-before', '--stop_time', str(boundary_ms))
  assert window_before.read == before.messages
  assert read_counters(cassandra_session, keyspace) == expected_counters(before)


def test_start_offset_latest_skips_what_is_already_there_only_where_the_group_has_committed_nothing(
    bootstrap_servers, topic, keyspace, cassandra_port, kafka_client):
  produce_dataset(bootstrap_servers, topic, count=400, keys=100, bad_ratio=0, seed=31)
  held = end_offsets(bootstrap_servers, topic)
  assert all(held.values()), held  # every partition holds messages, so reading any of them would show
  # Partitions 0 and 1 have a committed offset (their start): the group resumes there; 2 and 3 start at their end.
  commit_offsets(bootstrap_servers, f'{topic}-group', topic, {0: 0, 1: 0})

  summary = run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--start_offset', 'latest',
                                  '--kafka_client', kafka_client))

  assert summary.read == summary.counted == held[0] + held[1]


# The launcher's preflight refuses these before anything runs (tests/test_preflight.py); a job submitted with
# --skip_preflight meets them on the workers, whose own checks must be as clear.

def test_a_missing_topic_is_a_clear_error_on_the_workers_as_soon_as_the_broker_says_so(
    bootstrap_servers, keyspace, cassandra_port):
  started = time.monotonic()
  with pytest.raises(Exception, match="topic 'no_such_topic_here' does not exist on"):
    run_bounded(*job_args(bootstrap_servers, 'no_such_topic_here', keyspace, cassandra_port, '--skip_preflight'))
  assert time.monotonic() - started < 20  # not the 30 s connect timeout: the broker answered at once


def test_an_unreachable_broker_is_a_clear_error_on_the_workers_naming_the_address(keyspace, cassandra_port):
  with pytest.raises(Exception, match=r'no Kafka broker answered at 127\.0\.0\.1:1 '):
    run_bounded(*job_args('127.0.0.1:1', 'some_topic', keyspace, cassandra_port, '--kafka_connect_timeout_s', '3',
                          '--skip_preflight'))


def test_a_missing_table_is_a_clear_error_on_the_workers_naming_the_schema_command(
    bootstrap_servers, topic, cassandra_port):
  produce_dataset(bootstrap_servers, topic, count=10, keys=2, bad_ratio=0, seed=41)

  with pytest.raises(Exception, match=f'python -m beam_pipeline.tools.create_schema --cassandra_hosts 127.0.0.1 --cassandra_port '
                                      f'{cassandra_port} --keyspace no_such_keyspace'):
    run_bounded(*job_args(bootstrap_servers, topic, 'no_such_keyspace', cassandra_port, '--skip_preflight'))


def test_an_unreachable_cassandra_fails_the_bounded_run_fast_on_the_workers_naming_the_address(
    bootstrap_servers, topic, keyspace):
  produce_dataset(bootstrap_servers, topic, count=20, keys=2, bad_ratio=0, seed=43)
  started = time.monotonic()

  with pytest.raises(Exception, match=r'no Cassandra node answered at 127\.0\.0\.1:1'):
    run_bounded(*job_args(bootstrap_servers, topic, keyspace, 1, '--skip_preflight'))
  assert time.monotonic() - started < 120
  assert committed_offsets(bootstrap_servers, f'{topic}-group', topic) == {p: None for p in range(4)}
