"""The job against the other Kafka and Cassandra releases the project supports (docs/compatibility.md): a Kafka 3.9
broker (KRaft) started by ./run_local.sh up --kafka_version, a Cassandra 4.1 node started by ./run_local.sh up
--cassandra_version, each beside the usual other service, and both together (--slow). On each: a bounded run, a
second group that the offset ledger keeps from counting again, a streaming run, and a reconcile, all exact."""

import pytest

from beam_pipeline.io.cassandra.connection import build_cluster
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import fresh_keyspace, fresh_topic, produce_dataset
from beam_pipeline.testing.jobs import (
    job_args, run_bounded, start_streaming_job, stop_streaming_job, wait_until_caught_up)
from beam_pipeline.testing.topics import read_dead_letters


@pytest.fixture
def other_topic(request, other_kafka) -> str:
  with fresh_topic(other_kafka, request.node.name) as name:
    yield name


@pytest.fixture
def other_keyspace(request, other_cassandra_port):
  """A fresh keyspace (counter table, leases, offset ledger) on the other Cassandra release, and a session to it."""
  cluster = build_cluster(['127.0.0.1'], other_cassandra_port)
  session = cluster.connect()
  try:
    with fresh_keyspace(session, request.node.name) as name:
      yield name, session
  finally:
    cluster.shutdown()


def _counted_exactly_once_bounded_streaming_and_reconciled(bootstrap_servers, topic, keyspace, cassandra_port,
                                                           session, log, seed):
  first = produce_dataset(bootstrap_servers, topic, count=2000, keys=80, bad_ratio=0.05, seed=seed)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)

  bounded = run_bounded(*args)
  dead_letters = read_dead_letters(bootstrap_servers, topic)
  again = run_bounded(*args, '--consumer_group', f'{topic}-another-group')

  assert read_counters(session, keyspace) == expected_counters(first)
  assert (bounded.counted, again.counted, again.skipped_already_counted) == (first.valid, 0, first.valid)
  assert len(dead_letters) == first.messages - first.valid

  second = produce_dataset(bootstrap_servers, topic, count=1000, keys=80, bad_ratio=0.05, seed=seed + 1)
  everything = add_counters(expected_counters(first), expected_counters(second))
  job = start_streaming_job(args, log)
  try:
    wait_until_caught_up(job, session, keyspace, everything, bootstrap_servers, f'{topic}-group', topic, log)
  finally:
    stop_streaming_job(job)

  drifted = next(iter(everything))
  session.execute(f'UPDATE {keyspace}.site_stats SET views = views + 7 WHERE date = %s AND site_id = %s', drifted)
  reconcile = run_bounded(*args, '--sink_mode', 'reconcile', '--dates', drifted[0].isoformat())

  assert reconcile.reconcile['views_corrected'] == -7
  assert read_counters(session, keyspace) == everything


def test_a_kafka_3_broker_is_counted_exactly_once_bounded_streaming_and_reconciled(
    other_kafka, other_topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  _counted_exactly_once_bounded_streaming_and_reconciled(
      other_kafka, other_topic, keyspace, cassandra_port, cassandra_session, tmp_path / 'streaming.log', seed=331)


def test_a_cassandra_4_1_node_is_counted_exactly_once_bounded_streaming_and_reconciled(
    bootstrap_servers, topic, other_keyspace, other_cassandra_port, tmp_path):
  keyspace, session = other_keyspace
  _counted_exactly_once_bounded_streaming_and_reconciled(
      bootstrap_servers, topic, keyspace, other_cassandra_port, session, tmp_path / 'streaming.log', seed=333)


@pytest.mark.slow
def test_a_kafka_3_broker_and_a_cassandra_4_1_node_are_counted_exactly_once_bounded_streaming_and_reconciled(
    other_kafka, other_topic, other_keyspace, other_cassandra_port, tmp_path):
  keyspace, session = other_keyspace
  _counted_exactly_once_bounded_streaming_and_reconciled(
      other_kafka, other_topic, keyspace, other_cassandra_port, session, tmp_path / 'streaming.log', seed=335)
