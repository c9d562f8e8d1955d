"""The job against the other Kafka release the project supports (docs/compatibility.md): a Kafka 3.9 broker
(KRaft) started by ./run_local.sh up --kafka_version, beside the usual Cassandra. A bounded run with dead letters,
a second group that the offset ledger keeps from counting again, a streaming run, and a reconcile: all exact."""

import pytest

from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import fresh_topic, produce_dataset
from beam_pipeline.testing.jobs import (
    job_args, run_bounded, start_streaming_job, stop_streaming_job, wait_until_caught_up)
from beam_pipeline.testing.topics import read_dead_letters


@pytest.fixture
def other_topic(request, other_kafka) -> str:
  with fresh_topic(other_kafka, request.node.name) as name:
    yield name


def test_a_kafka_3_broker_is_counted_exactly_once_bounded_streaming_and_reconciled(
    other_kafka, other_topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  first = produce_dataset(other_kafka, other_topic, count=2000, keys=80, bad_ratio=0.05, seed=331)
  args = job_args(other_kafka, other_topic, keyspace, cassandra_port)

  bounded = run_bounded(*args)
  dead_letters = read_dead_letters(other_kafka, other_topic)
  again = run_bounded(*args, '--consumer_group', f'{other_topic}-another-group')

  assert read_counters(cassandra_session, keyspace) == expected_counters(first)
  assert (bounded.counted, again.counted, again.skipped_already_counted) == (first.valid, 0, first.valid)
  assert len(dead_letters) == first.messages - first.valid

  second = produce_dataset(other_kafka, other_topic, count=1000, keys=80, bad_ratio=0.05, seed=332)
  everything = add_counters(expected_counters(first), expected_counters(second))
  log = tmp_path / 'streaming.log'
  job = start_streaming_job(args, log)
  try:
    wait_until_caught_up(job, cassandra_session, keyspace, everything, other_kafka, f'{other_topic}-group',
                         other_topic, log)
  finally:
    stop_streaming_job(job)

  drifted = next(iter(everything))
  cassandra_session.execute(f'UPDATE {keyspace}.site_stats SET views = views + 7 WHERE date = %s AND site_id = %s',
                            drifted)
  reconcile = run_bounded(*args, '--sink_mode', 'reconcile', '--dates', drifted[0].isoformat())

  assert reconcile.reconcile['views_corrected'] == -7
  assert read_counters(cassandra_session, keyspace) == everything
