"""Counting once: the offset ledger keeps a table's counters exact when the same messages are read again (another
consumer group, a rerun of a window, a retried bundle) and fences a second writer of a partition; on the real
Kafka and Cassandra."""

import datetime

from apache_beam.metrics.metric import MetricsFilter

from beam_pipeline import metrics
from beam_pipeline.io.cassandra.connection import LEASE_PROFILE, READ_PROFILE
from beam_pipeline.io.cassandra.offset_ledger import LEDGER_TABLE, OffsetLedger
from beam_pipeline.launch.run import run
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters, without_zeros
from beam_pipeline.testing.datasets import produce_dataset
from beam_pipeline.testing.jobs import job_args, repair_uncertain, run_bounded
from beam_pipeline.testing.topics import end_offsets


def _ledger(session, keyspace: str, topic: str) -> dict:
  return {row.partition: row for row in session.execute(
      f'SELECT partition, counted, uncertain, uncertain_dates, claim FROM {keyspace}.{LEDGER_TABLE} '
      'WHERE counter_table = %s AND topic = %s AND partition IN (0, 1, 2, 3)', ('site_stats', topic))}


def test_a_second_consumer_group_reading_the_same_topic_counts_nothing_again(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  expected = produce_dataset(bootstrap_servers, topic, count=3000, keys=100, bad_ratio=0.05, seed=291)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_records_per_bundle', '300')

  first = run_bounded(*args)
  second = run_bounded(*args, '--consumer_group', f'{topic}-another-group')

  assert read_counters(cassandra_session, keyspace) == expected_counters(expected)
  assert (first.counted, first.skipped_already_counted) == (expected.valid, 0)
  assert (second.read, second.counted, second.skipped_already_counted) == (expected.messages, 0, expected.valid)
  # One merged range per partition, whatever the bundles and the invalid messages between them.
  ledger = _ledger(cassandra_session, keyspace, topic)
  assert {p: [tuple(r) for r in row.counted] for p, row in ledger.items()} == {
      p: [(0, end)] for p, end in end_offsets(bootstrap_servers, topic).items()}
  assert all(not row.uncertain and not row.claim for row in ledger.values())


def test_a_window_rerun_adds_only_what_the_table_has_not_counted(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  old = produce_dataset(bootstrap_servers, topic, count=1000, keys=50, bad_ratio=0.02, seed=292)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)
  run_bounded(*args)
  new = produce_dataset(bootstrap_servers, topic, count=1000, keys=50, bad_ratio=0.02, seed=293)

  # A backfill window over everything: the old messages are in the ledger, the new ones are not.
  window = run_bounded(*args, '--start_offsets', '0=0,1=0,2=0,3=0')

  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(old), expected_counters(new))
  assert (window.counted, window.skipped_already_counted) == (new.valid, old.valid)


def test_at_least_once_counts_a_second_group_again(bootstrap_servers, topic, keyspace, cassandra_port,
                                                  cassandra_session):
  expected = produce_dataset(bootstrap_servers, topic, count=500, keys=20, bad_ratio=0, seed=294)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--counting', 'at_least_once')

  run_bounded(*args)
  run_bounded(*args, '--consumer_group', f'{topic}-another-group')

  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(expected),
                                                                    expected_counters(expected))
  assert _ledger(cassandra_session, keyspace, topic) == {}


def test_a_partition_another_writer_has_claimed_is_fenced_off_and_left_uncertain(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  expected = produce_dataset(bootstrap_servers, topic, count=400, keys=200, bad_ratio=0, seed=295)
  ends = end_offsets(bootstrap_servers, topic)
  assert ends[0] > 0
  # Another writer (a zombie worker, a second job) claims partition 0 and is slow to send its increments.
  zombie = OffsetLedger(cassandra_session, keyspace, 'site_stats', 'zombie', READ_PROFILE, LEASE_PROFILE)
  claims = zombie.claim({(topic, 0): [(0, ends[0])]}, {}, lambda key, ranges: frozenset({datetime.date(2017, 2, 4)}))

  result, summary = run([*job_args(bootstrap_servers, topic, keyspace, cassandra_port), '--bounded'])
  settled = zombie.settle(list(claims.values()), counted=True)

  # The job counted every partition but the claimed one.
  in_partition_0 = ends[0]  # every message is valid
  assert summary.counted == expected.valid - in_partition_0
  assert summary.skipped_already_counted == in_partition_0
  # The zombie's mark fails its condition (it lost its claim), and the range stays uncertain, with its dates.
  assert settled == {}
  row = _ledger(cassandra_session, keyspace, topic)[0]
  assert [tuple(r) for r in row.uncertain] == [(0, ends[0])] and not row.counted and not row.claim
  assert {d.date() for d in row.uncertain_dates} == {datetime.date(2017, 2, 4)}
  # Each partition's uncertain offsets, as a gauge (site_stats_uncertain_messages{topic, partition}).
  gauges = {g.key.metric.name: g.committed.value for g in result.metrics().query(
      MetricsFilter().with_namespace(metrics.NAMESPACE))['gauges']}
  assert {p: gauges.get(metrics.partition_metric(metrics.UNCERTAIN_MESSAGES, topic, p)) for p in range(4)} == {
      0: ends[0], 1: 0, 2: 0, 3: 0}


def test_reconciling_the_uncertain_dates_makes_the_counters_exact_and_the_ledger_agree(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  expected = produce_dataset(bootstrap_servers, topic, count=400, keys=200, bad_ratio=0, seed=296)
  ends = end_offsets(bootstrap_servers, topic)
  # A writer that died after claiming partition 0: its claim names the dates its messages touch.
  zombie = OffsetLedger(cassandra_session, keyspace, 'site_stats', 'zombie', READ_PROFILE, LEASE_PROFILE)
  zombie.claim({(topic, 0): [(0, ends[0])]}, {}, lambda key, ranges: frozenset(day for day, _ in expected.per_key))
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)
  run_bounded(*args)
  assert [tuple(r) for r in _ledger(cassandra_session, keyspace, topic)[0].uncertain] == [(0, ends[0])]
  assert read_counters(cassandra_session, keyspace) != expected_counters(expected)

  repair = repair_uncertain(*args)
  again = repair_uncertain(*args)

  assert repair['status'] == 'ok' and repair['reconcile']['keys_corrected'] > 0
  assert without_zeros(read_counters(cassandra_session, keyspace)) == without_zeros(expected_counters(expected))
  row = _ledger(cassandra_session, keyspace, topic)[0]
  assert [tuple(r) for r in row.counted] == [(0, ends[0])] and not row.uncertain and not row.uncertain_dates
  assert again == {'dates': 'uncertain', 'dates_reconciled': [], 'mode': 'reconcile', 'status': 'ok'}
  # What reconcile made exact is counted: another group adds nothing.
  assert run_bounded(*args, '--consumer_group', f'{topic}-another-group').counted == 0
  assert without_zeros(read_counters(cassandra_session, keyspace)) == without_zeros(expected_counters(expected))
