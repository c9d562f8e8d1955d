"""Topics written in transactions: with read_committed, the messages of aborted transactions are neither counted
nor dead-lettered, and a bounded run stops at the last stable offset (before a transaction still open)."""

import pytest
from kafka import KafkaProducer

from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.jobs import job_args, run_bounded
from beam_pipeline.testing.topics import committed_offsets, end_offsets, read_dead_letters
from beam_pipeline.tools import produce


class _Transaction:
  """One transaction of a transactional producer: the messages it sent, and what they count to if committed."""

  def __init__(self, bootstrap_servers: str, transactional_id: str):
    self._producer = KafkaProducer(bootstrap_servers=bootstrap_servers, transactional_id=transactional_id,
                                   acks='all')
    self._producer.init_transactions()
    self._producer.begin_transaction()
    self.expected = produce.ExpectedTotals()

  def send(self, topic: str, count: int, seed: int) -> '_Transaction':
    for message in produce.generate(count, keys=30, bad_ratio=0.1, seed=seed):
      self.expected.add(message)
      self._producer.send(topic, key=message.key, value=message.value)
    self._producer.flush()
    return self

  def commit(self):
    self._producer.commit_transaction()
    self._producer.close()

  def abort(self):
    self._producer.abort_transaction()
    self._producer.close()


@pytest.mark.parametrize('isolation', [
    ('--kafka_isolation_level', 'read_committed'),
    ('--kafka_consumer_config', 'isolation_level=read_committed'),
    ('--kafka_isolation_level', 'read_committed', '--runner', 'FlinkRunner'),
], ids=['option', 'passthrough', 'embedded-flink'])
def test_read_committed_counts_only_committed_transactions(
    isolation, request, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, kafka_client):
  if 'FlinkRunner' in isolation:
    request.getfixturevalue('flink_job_server')
  committed = _Transaction(bootstrap_servers, f'{topic}-a').send(topic, 400, seed=1)
  committed.commit()
  aborted = _Transaction(bootstrap_servers, f'{topic}-b').send(topic, 300, seed=2)
  aborted.abort()

  summary = run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, *isolation,
                                  '--kafka_client', kafka_client))

  assert read_counters(cassandra_session, keyspace) == expected_counters(committed.expected)
  assert (summary.read, summary.counted) == (committed.expected.messages, committed.expected.valid)
  assert len(read_dead_letters(bootstrap_servers, topic)) == committed.expected.messages - committed.expected.valid
  # The commit markers are past the last message read: the group's offsets are the end of each partition.
  assert committed_offsets(bootstrap_servers, f'{topic}-group', topic) == end_offsets(bootstrap_servers, topic)


def test_read_uncommitted_the_default_counts_aborted_transactions_too(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, kafka_client):
  committed = _Transaction(bootstrap_servers, f'{topic}-a').send(topic, 400, seed=1)
  committed.commit()
  aborted = _Transaction(bootstrap_servers, f'{topic}-b').send(topic, 300, seed=2)
  aborted.abort()

  summary = run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--kafka_client', kafka_client))

  assert summary.read == committed.expected.messages + aborted.expected.messages
  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(committed.expected),
                                                                    expected_counters(aborted.expected))


def test_a_bounded_read_committed_run_stops_before_an_open_transaction_and_the_next_run_reads_it_once_committed(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, kafka_client):
  before = _Transaction(bootstrap_servers, f'{topic}-a').send(topic, 300, seed=3)
  before.commit()
  pending = _Transaction(bootstrap_servers, f'{topic}-b').send(topic, 200, seed=4)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--kafka_isolation_level', 'read_committed',
                  '--kafka_client', kafka_client)

  first = run_bounded(*args)

  assert first.read == before.expected.messages
  assert read_counters(cassandra_session, keyspace) == expected_counters(before.expected)
  held = committed_offsets(bootstrap_servers, f'{topic}-group', topic)
  ends = end_offsets(bootstrap_servers, topic)
  assert any(held[p] < ends[p] for p in ends), (held, ends)  # stopped at the last stable offset, not the end
  pending.commit()

  second = run_bounded(*args)

  assert second.read == pending.expected.messages
  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(before.expected),
                                                                    expected_counters(pending.expected))
