"""Faults under a streaming job on the local Flink session cluster: a cancel and a resubmission with the same group,
a TaskManager killed, a Kafka restart, and Cassandra going away for 30 s. The offset ledger counts nothing twice;
what a fault left uncertain is repaired by ``--dates uncertain`` reconcile, and the counters end exact.

The cases that stop a shared service (the TaskManager, Kafka, Cassandra) restore it whatever happens.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.processes.lifecycle import ensure_running_line
from beam_pipeline.runners.flink.rest import cancel_flink_job, rest_get
from beam_pipeline.io.cassandra.connection import READ_PROFILE
from beam_pipeline.io.cassandra.offset_ledger import uncertain_dates
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters, without_zeros
from beam_pipeline.testing.datasets import produce_dataset
from beam_pipeline.testing.jobs import job_args, repair_uncertain
from beam_pipeline.testing.outages import CASSANDRA_OUTAGE_S, wait_for_session
from beam_pipeline.testing.topics import TopicOffsets

_CATCH_UP_TIMEOUT_S = 240


def _submit(*args) -> None:
  submitted = subprocess.run([str(REPO_ROOT / 'run_flink.sh'), *args], capture_output=True, text=True, timeout=300)
  assert submitted.returncode == 0, submitted.stderr[-3000:]


def _wait_until_all_committed(bootstrap_servers, topic, group, session, keyspace, expected, timeout_s=None):
  """Until the group has committed the whole topic and the counters are final: equal to ``expected``, or below it
  where the offset ledger marks offsets uncertain (a write whose outcome the fault made unknown). Returns them."""
  deadline = time.monotonic() + (timeout_s or _CATCH_UP_TIMEOUT_S)
  with TopicOffsets(bootstrap_servers, topic, group) as offsets:
    while True:
      counted = read_counters(session, keyspace)
      if offsets.all_committed() and (counted == expected or uncertain_dates(session, keyspace, 'site_stats',
                                                                              READ_PROFILE)):
        return counted
      assert time.monotonic() < deadline, f'not caught up: committed {offsets.committed()} of {offsets.end()}'
      time.sleep(1)


def _assert_counted_once_then_repair(counted, everything, session, keyspace, *args) -> str:
  """No key above what was produced; the uncertain repair then makes every key exact. Returns the figures."""
  over = {key: (counted.get(key, (0, 0))[0] - views, counted.get(key, (0, 0))[1] - clicks)
          for key, (views, clicks) in everything.items()}
  assert all(v <= 0 and c <= 0 for v, c in over.values()), 'a message was counted twice'
  repair = repair_uncertain(*args)
  assert without_zeros(read_counters(session, keyspace)) == without_zeros(everything)
  return (f'0 views counted twice, {-sum(v for v, _ in over.values())} views uncertain (dates repaired: '
          f'{len(repair.get("dates_reconciled", [])) or repair.get("first_date", "none")})')


def _job_state(rest: str, name: str) -> str:
  return next(j['state'] for j in rest_get(rest, '/jobs/overview')['jobs'] if j['name'] == name)


def _views(counters) -> int:
  return sum(views for views, _ in counters.values())


def _uncommitted(offsets: TopicOffsets) -> int:
  return sum(offsets.end().values()) - sum(v or 0 for v in offsets.committed().values())


def _wait_until_counting_beyond(session, keyspace, views: int) -> None:
  deadline = time.monotonic() + 60
  while _views(read_counters(session, keyspace)) == views:
    assert time.monotonic() < deadline, 'the job did not count the second batch'
    time.sleep(0.2)


def test_a_job_cancelled_and_resubmitted_with_the_same_group_counts_every_message_once(
    flink_cluster, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  rest, group = flink_cluster.job_manager.address, f'{topic}-group'
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--checkpointing_interval', '2000')
  first = produce_dataset(bootstrap_servers, topic, count=4000, keys=100, seed=241)
  _submit(*args, '--job_name', f'{topic}-1')
  try:
    _wait_until_all_committed(bootstrap_servers, topic, group, cassandra_session, keyspace,
                              expected_counters(first))
    second = produce_dataset(bootstrap_servers, topic, count=4000, keys=100, seed=242)
    # Cancelled once some of the second batch is written, when its offsets are not all committed yet.
    _wait_until_counting_beyond(cassandra_session, keyspace, first.views)
    with TopicOffsets(bootstrap_servers, topic, group) as offsets:
      uncommitted_before = _uncommitted(offsets)
      assert cancel_flink_job([rest], f'{topic}-1')
      uncommitted_after = _uncommitted(offsets)
  finally:
    cancel_flink_job([rest], f'{topic}-1')
  everything = add_counters(expected_counters(first), expected_counters(second))

  _submit(*args, '--job_name', f'{topic}-2')
  try:
    counted = _wait_until_all_committed(bootstrap_servers, topic, group, cassandra_session, keyspace, everything)
  finally:
    cancel_flink_job([rest], f'{topic}-2')

  figures = _assert_counted_once_then_repair(counted, everything, cassandra_session, keyspace,
                                             *job_args(bootstrap_servers, topic, keyspace, cassandra_port))
  print(f'cancel + resubmit: {uncommitted_before}..{uncommitted_after} messages uncommitted at the cancel; {figures}')


# Beam 2.62's Java runner waits a fixed 3 minutes for a fresh SDK worker's data connection, which a worker whose
# first bundle fails before reading its input never opens: the writer opens its Cassandra session only to send
# its writes, so the restarts during the outage fail fast and the first one after it succeeds.
RECOVERY_BOUND_S = 60


@pytest.mark.slow  # the default run has the same outage under the local runner (test_service_outages.py)
def test_a_cassandra_outage_under_a_flink_job_is_survived_by_restarts_from_its_checkpoint_and_loses_nothing(
    flink_cluster, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, services_restored):
  rest, group, name = flink_cluster.job_manager.address, f'{topic}-group', f'{topic}-outage'
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--checkpointing_interval', '2000',
                  '--max_bundle_seconds', '1', '--max_records_per_bundle', '500')
  first = produce_dataset(bootstrap_servers, topic, count=1000, keys=50, seed=251)
  _submit(*args, '--job_name', name)
  try:
    _wait_until_all_committed(bootstrap_servers, topic, group, cassandra_session, keyspace,
                              expected_counters(first))
    services_restored.cassandra.process.stop()
    during = produce_dataset(bootstrap_servers, topic, count=1000, keys=50, seed=252)
    time.sleep(CASSANDRA_OUTAGE_S)
    with TopicOffsets(bootstrap_servers, topic, group) as offsets:
      assert not offsets.all_committed(), 'nothing can be committed while Cassandra is down'
    services_restored.cassandra.start()
    services_restored.cassandra.process.wait_until_ready(services_restored.cassandra.is_ready, 240)
    back = time.monotonic()
    wait_for_session(cassandra_session)
    everything = add_counters(expected_counters(first), expected_counters(during))

    # No resubmission: Flink restarts the job from its last checkpoint (every 10 s) until Cassandra answers again.
    counted = _wait_until_all_committed(bootstrap_servers, topic, group, cassandra_session, keyspace, everything,
                                        timeout_s=300)
    recovered_s = time.monotonic() - back
    print(f'Cassandra outage: caught up {recovered_s:.0f}s after Cassandra answered again')
    assert recovered_s < RECOVERY_BOUND_S, f'caught up only {recovered_s:.0f}s after Cassandra answered again'
    assert _job_state(rest, name) == 'RUNNING'
    restarts = rest_get(rest, '/jobs/overview')
    job_id = next(j['jid'] for j in restarts['jobs'] if j['name'] == name)
    assert rest_get(rest, f'/jobs/{job_id}/checkpoints')['counts']['restored'] >= 1
  finally:
    cancel_flink_job([rest], name)

  figures = _assert_counted_once_then_repair(counted, everything, cassandra_session, keyspace,
                                             *job_args(bootstrap_servers, topic, keyspace, cassandra_port))
  print(f'Cassandra outage: {figures}')


_BUNDLE = 500  # records per bundle in the fault cases


def _caught_up_small_bundle_job(name, bootstrap_servers, topic, keyspace, cassandra_port, session, seed):
  """Submits a streaming job of small bundles named ``name`` (the caller cancels it) and returns the dataset it has
  counted and committed."""
  first = produce_dataset(bootstrap_servers, topic, count=2000, keys=50, seed=seed)
  _submit(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--checkpointing_interval', '2000',
                    '--max_bundle_seconds', '1', '--max_records_per_bundle', str(_BUNDLE)), '--job_name', name)
  _wait_until_all_committed(bootstrap_servers, topic, f'{topic}-group', session, keyspace, expected_counters(first))
  return first


def test_a_task_manager_killed_under_a_streaming_job_is_replaced_and_the_job_loses_nothing(
    flink_cluster, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  rest, group, name = flink_cluster.job_manager.address, f'{topic}-group', f'{topic}-tm-killed'
  try:
    first = _caught_up_small_bundle_job(name, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session,
                                        seed=261)
    second = produce_dataset(bootstrap_servers, topic, count=20000, keys=50, seed=262)
    _wait_until_counting_beyond(cassandra_session, keyspace, first.views)
    with TopicOffsets(bootstrap_servers, topic, group) as offsets:
      uncommitted = _uncommitted(offsets)
    task_manager = flink_cluster.task_manager
    os.kill(task_manager.process.pid(), signal.SIGKILL)
    killed = time.monotonic()
    while task_manager.process.pid() is not None:  # a JVM takes a moment to die
      assert time.monotonic() - killed < 30, 'the killed TaskManager is still there'
      time.sleep(0.1)
    ensure_running_line(task_manager)  # what ./run_local.sh flink-up does for a TaskManager that is gone
    everything = add_counters(expected_counters(first), expected_counters(second))
    counted = _wait_until_all_committed(bootstrap_servers, topic, group, cassandra_session, keyspace, everything)
    caught_up_s = time.monotonic() - killed
    assert _job_state(rest, name) == 'RUNNING'
  finally:
    cancel_flink_job([rest], name)
    ensure_running_line(flink_cluster.task_manager)

  # Replayed from the last checkpoint: what it had not committed, which the offset ledger had counted.
  figures = _assert_counted_once_then_repair(counted, everything, cassandra_session, keyspace,
                                             *job_args(bootstrap_servers, topic, keyspace, cassandra_port))
  print(f'TaskManager killed: caught up {caught_up_s:.0f}s after the kill, {uncommitted} messages uncommitted at '
        f'the kill; {figures}')


@pytest.mark.slow  # the default run has the same outage under the local runner (test_service_outages.py)
def test_a_kafka_restart_under_a_streaming_job_is_ridden_out_and_loses_nothing(
    flink_cluster, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, services_restored):
  rest, group, name = flink_cluster.job_manager.address, f'{topic}-group', f'{topic}-kafka-restart'
  try:
    first = _caught_up_small_bundle_job(name, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session,
                                        seed=271)
    kafka = services_restored.kafka
    kafka.process.stop()
    time.sleep(10)
    ensure_running_line(kafka)
    back = time.monotonic()
    second = produce_dataset(bootstrap_servers, topic, count=2000, keys=50, seed=272)
    everything = add_counters(expected_counters(first), expected_counters(second))
    counted = _wait_until_all_committed(bootstrap_servers, topic, group, cassandra_session, keyspace, everything)
    print(f'Kafka restarted: caught up {time.monotonic() - back:.0f}s after it answered again')
    assert counted == everything  # nothing was in flight while the broker was down: nothing is replayed
    assert _job_state(rest, name) == 'RUNNING'
  finally:
    cancel_flink_job([rest], name)


def test_a_streaming_job_that_fails_the_same_way_again_and_again_ends_failed_with_the_reason(
    flink_cluster, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  # Its counter table dropped under it, every bundle with something to write fails: beyond the failure rate the
  # job ends FAILED, instead of restarting for ever while it looks RUNNING.
  rest, name = flink_cluster.job_manager.address, f'{topic}-failing'
  first = produce_dataset(bootstrap_servers, topic, count=400, keys=20, seed=281)
  _submit(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--checkpointing_interval', '2000',
                    '--max_bundle_seconds', '1'),
          '--job_name', name, '--flink_restart_max_failures', '2', '--flink_restart_failure_interval_s', '300',
          '--flink_restart_delay_s', '1')
  try:
    _wait_until_all_committed(bootstrap_servers, topic, f'{topic}-group', cassandra_session, keyspace,
                              expected_counters(first))
    cassandra_session.execute(f'DROP TABLE {keyspace}.site_stats')
    produce_dataset(bootstrap_servers, topic, count=400, keys=20, seed=282)
    deadline = time.monotonic() + 180
    while _job_state(rest, name) != 'FAILED':
      assert time.monotonic() < deadline, f'still {_job_state(rest, name)} 180 s after its table was dropped'
      time.sleep(1)
  finally:
    cancel_flink_job([rest], name)
  jid = next(j['jid'] for j in rest_get(rest, '/jobs/overview')['jobs'] if j['name'] == name)
  failures = rest_get(rest, f'/jobs/{jid}/exceptions')
  assert 'site_stats' in json.dumps(failures), str(failures)[:3000]
  assert len(failures['exceptionHistory']['entries']) == 3, 'not the two restarts and the failure that ended it'
