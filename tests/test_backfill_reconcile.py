"""Backfills and reconcile on the real services: exact counters without double counting."""

import datetime
import json
import signal
import subprocess
import time

import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.io.cassandra.schema import LEASE_TABLE
from beam_pipeline.io.kafka.admin import delete_topics
from beam_pipeline.testing.counters import expected_counters, read_counters, without_zeros
from beam_pipeline.testing.datasets import produce_dataset
from beam_pipeline.testing.jobs import (
    job_args, repair_uncertain, run_bounded, start_streaming_job, stop_streaming_job, wait_until_caught_up,
    wait_until_committed)
from beam_pipeline.testing.topics import committed_offsets, end_offsets, read_dead_letters, read_topic

FEBRUARY = '2017-02-01..2017-02-28'
RECONCILED = [datetime.date(2017, 2, 3), datetime.date(2017, 2, 4)]


def _bump(session, keyspace, day, site_id, views, clicks):
  session.execute(f'UPDATE {keyspace}.site_stats SET views = views + %s, clicks = clicks + %s '
                  'WHERE date = %s AND site_id = %s', (views, clicks, day, site_id))


def test_reconcile_makes_drifted_dates_exact_leaves_other_dates_alone_and_is_idempotent(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  expected = produce_dataset(bootstrap_servers, topic, count=2000, keys=84, bad_ratio=0.02, seed=61)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)
  run_bounded(*args)
  exact = expected_counters(expected)
  assert read_counters(cassandra_session, keyspace) == exact
  some_keys = sorted(k for k in exact if k[0] in RECONCILED)[:4]
  untouched_key = next(k for k in sorted(exact) if k[0] not in RECONCILED)
  _bump(cassandra_session, keyspace, *some_keys[0], 1000, 7)       # inflated
  _bump(cassandra_session, keyspace, *some_keys[1], -5, -3)        # deflated
  _bump(cassandra_session, keyspace, RECONCILED[0], 999999, 1, 1)  # a key no message has
  _bump(cassandra_session, keyspace, *untouched_key, 50, 50)       # drift on a date not reconciled

  report = run_bounded(*args, '--sink_mode', 'reconcile', '--dates', '2017-02-03..2017-02-04',
                       '--report_only')
  assert report.reconcile['keys_corrected'] == 3
  assert read_counters(cassandra_session, keyspace)[some_keys[0]] != exact[some_keys[0]]  # nothing written

  first = run_bounded(*args, '--sink_mode', 'reconcile', '--dates', '2017-02-03..2017-02-04')
  second = run_bounded(*args, '--sink_mode', 'reconcile', '--dates', '2017-02-03..2017-02-04')

  counters = read_counters(cassandra_session, keyspace)
  for key, value in exact.items():
    want = (value[0] + 50, value[1] + 50) if key == untouched_key else value
    assert counters[key] == want, key
  assert counters.get((RECONCILED[0], 999999)) == (0, 0)
  assert first.reconcile == {'keys_checked': first.reconcile['keys_checked'], 'keys_corrected': 3,
                             'views_corrected': -1000 + 5 - 1, 'clicks_corrected': -7 + 3 - 1}
  assert second.reconcile['keys_corrected'] == 0
  for day in RECONCILED:
    totals = first.date_totals[day.isoformat()]
    assert totals == {'views': sum(v for (d, _), (v, _) in exact.items() if d == day),
                      'clicks': sum(c for (d, _), (_, c) in exact.items() if d == day)}
  assert first.read == first.counted + first.dead_lettered_total + first.skipped_other_dates


def test_a_window_backfill_into_a_fresh_keyspace_equals_the_streaming_run_and_leaves_the_group_alone(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path, request):
  from beam_pipeline.io.cassandra import schema
  window_start_ms = int(time.time() * 1000) - 1000
  expected = produce_dataset(bootstrap_servers, topic, count=1500, keys=60, seed=71)
  streaming_args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_bundle_seconds', '1')
  job = start_streaming_job(streaming_args, tmp_path / 'streaming.log')
  try:
    wait_until_caught_up(job, cassandra_session, keyspace, expected_counters(expected), bootstrap_servers,
                         f'{topic}-group', topic, tmp_path / 'streaming.log')
  finally:
    stop_streaming_job(job)
  boundary_ms = int(time.time() * 1000)
  time.sleep(0.05)
  produce_dataset(bootstrap_servers, topic, count=100, keys=60, seed=72)  # after the window, and not consumed
  group_before = committed_offsets(bootstrap_servers, f'{topic}-group', topic)
  backfill_keyspace = f'{keyspace}_bf'[:48]
  schema.create_schema(cassandra_session, backfill_keyspace)
  request.addfinalizer(lambda: cassandra_session.execute(f'DROP KEYSPACE IF EXISTS {backfill_keyspace}'))

  summary = run_bounded(*job_args(bootstrap_servers, topic, backfill_keyspace, cassandra_port),
                        '--start_time', str(window_start_ms), '--stop_time', str(boundary_ms))

  assert read_counters(cassandra_session, backfill_keyspace) == read_counters(cassandra_session, keyspace)
  assert summary.read == expected.messages
  assert committed_offsets(bootstrap_servers, f'{topic}-group', topic) == group_before != end_offsets(
      bootstrap_servers, topic)


def test_a_crash_during_a_streaming_run_counts_nothing_twice_and_the_uncertain_repair_makes_it_exact(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  expected = produce_dataset(bootstrap_servers, topic, count=20000, keys=120, seed=81)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_records_per_bundle', '300',
                  '--max_bundle_seconds', '0.5')
  group, log = f'{topic}-group', tmp_path / 'streaming.log'
  job = start_streaming_job(args, log)
  deadline = time.monotonic() + 120
  while not any(committed_offsets(bootstrap_servers, group, topic).values()) and time.monotonic() < deadline:
    time.sleep(0.2)
  job.send_signal(signal.SIGKILL)  # mid-run: some bundles written, some not, offsets part-committed
  job.wait(timeout=30)
  crashed = read_counters(cassandra_session, keyspace)
  assert crashed and crashed != expected_counters(expected)

  job = start_streaming_job(args, log)  # the same group picks up where the commits stopped
  try:
    wait_until_committed(job, bootstrap_servers, group, topic, log)
  finally:
    stop_streaming_job(job)
  counted, exact = read_counters(cassandra_session, keyspace), expected_counters(expected)
  over = [(counted.get(key, (0, 0))[0] - views, counted.get(key, (0, 0))[1] - clicks)
          for key, (views, clicks) in exact.items()]
  # The restarted job re-read what was written but not committed: the offset ledger had it counted.
  assert all(v <= 0 and c <= 0 for v, c in over), 'a message was counted twice'
  # Only a claim the kill left open (sent, or not, when the job died) is missing, and it is marked uncertain.
  uncertain_views = -sum(v for v, _ in over)
  repair = repair_uncertain(*job_args(bootstrap_servers, topic, keyspace, cassandra_port))
  print(f'after SIGKILL and restart: 0 views counted twice, {uncertain_views} views uncertain, repaired dates: '
        f'{repair.get("dates_reconciled", repair.get("first_date"))}')

  assert without_zeros(read_counters(cassandra_session, keyspace)) == without_zeros(exact)


def test_a_date_leased_by_another_reconcile_is_not_written(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  produce_dataset(bootstrap_servers, topic, count=300, keys=28, seed=91)
  cassandra_session.execute(
      f"INSERT INTO {keyspace}.{LEASE_TABLE} (date, owner, acquired_at) VALUES ('2017-02-05', 'other-host:1', "
      'toTimestamp(now())) USING TTL 600')
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)

  with pytest.raises(Exception, match='2017-02-05 is being reconciled by other-host:1'):
    run_bounded(*args, '--sink_mode', 'reconcile', '--dates', '2017-02-05')
  assert not [k for k in read_counters(cassandra_session, keyspace) if k[0] == datetime.date(2017, 2, 5)]

  cassandra_session.execute(f"DELETE FROM {keyspace}.{LEASE_TABLE} WHERE date = '2017-02-05'")
  assert run_bounded(*args, '--sink_mode', 'reconcile', '--dates', '2017-02-05').reconcile['keys_corrected'] > 0
  assert not list(cassandra_session.execute(f'SELECT * FROM {keyspace}.{LEASE_TABLE}'))  # released


def test_reconcile_refuses_to_zero_a_date_its_window_did_not_see(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  produce_dataset(bootstrap_servers, topic, count=200, keys=28, seed=95)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)
  run_bounded(*args)
  before = read_counters(cassandra_session, keyspace)

  with pytest.raises(Exception, match='has counters but no message in the window'):
    # By Kafka time the window is February 2017, and these messages were produced now.
    run_bounded(*args, '--sink_mode', 'reconcile', '--dates', '2017-02-06', '--start_time', '2017-01-01',
                '--stop_time', '2017-03-01')
  assert read_counters(cassandra_session, keyspace) == before


def test_run_backfill_prints_one_json_line_and_exits_0_only_on_success(bootstrap_servers, topic, keyspace,
                                                                       cassandra_port):
  produce_dataset(bootstrap_servers, topic, count=100, keys=10, seed=99)
  common = ['--topic', topic, '--keyspace', keyspace, '--bootstrap_servers', bootstrap_servers,
            '--cassandra_port', str(cassandra_port), '--consumer_group', f'{topic}-bf']

  ok = subprocess.run([str(REPO_ROOT / 'run_backfill.sh'), '--dates', '2017-02-01..2017-02-28', *common,
                       '--lateness_s', '0'], capture_output=True, text=True, timeout=300)
  bad = subprocess.run([str(REPO_ROOT / 'run_backfill.sh'), '--dates', '2017-02-31', *common],
                       capture_output=True, text=True, timeout=300)
  misspelt = subprocess.run([str(REPO_ROOT / 'run_backfill.sh'), '--dates', '2017-02-01', *common, '--sink_mod',
                             'reconcile'], capture_output=True, text=True, timeout=300)

  ok_line, = ok.stdout.strip().splitlines()
  assert ok.returncode == 0 and json.loads(ok_line)['status'] == 'ok'
  assert json.loads(ok_line)['read'] == 0  # the window is February 2017 by Kafka time: these were produced now
  bad_line, = bad.stdout.strip().splitlines()
  assert bad.returncode == 2 and json.loads(bad_line)['status'] == 'failed' and '2017-02-31' in bad_line
  # A misspelt job option fails before anything runs, instead of being dropped by Beam.
  misspelt_line, = misspelt.stdout.strip().splitlines()
  assert misspelt.returncode == 2 and 'unknown option(s) --sink_mod' in json.loads(misspelt_line)['error']


def test_reconciles_count_the_windows_dead_letters_without_publishing_them_again(
    bootstrap_servers, topic, keyspace, cassandra_port):
  expected = produce_dataset(bootstrap_servers, topic, count=600, keys=28, bad_ratio=0.08, seed=97)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)
  run_bounded(*args)
  published = read_dead_letters(bootstrap_servers, topic)
  assert len(published) == expected.messages - expected.valid

  reconciles = [run_bounded(*args, '--sink_mode', 'reconcile', '--dates', FEBRUARY) for _ in range(2)]

  assert len(read_dead_letters(bootstrap_servers, topic)) == len(published)
  for summary in reconciles:
    assert summary.dead_lettered == dict(expected.invalid_by_stage)
    assert summary.dead_letters_published == 0


def test_a_reconcile_publishes_its_dead_letters_to_a_topic_given_explicitly(
    bootstrap_servers, topic, keyspace, cassandra_port):
  expected = produce_dataset(bootstrap_servers, topic, count=300, keys=28, bad_ratio=0.1, seed=98)
  explicit = f'{topic}-reconcile'

  try:
    summary = run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port), '--sink_mode', 'reconcile',
                          '--dates', FEBRUARY, '--dead_letter_topic', explicit)
    assert len(read_dead_letters(bootstrap_servers, topic)) == 0
    assert len(read_topic(bootstrap_servers, explicit)) == summary.dead_letters_published == (
        expected.messages - expected.valid)
  finally:
    delete_topics(bootstrap_servers, [explicit])
