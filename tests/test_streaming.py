"""The streaming job as users run it: a process that reads while messages arrive, stopped and restarted."""

import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO_ROOT
from tests.helpers import add_counters, committed_offsets, end_offsets, expected_counters, job_args, produce_dataset, read_counters

_CATCH_UP_TIMEOUT_S = 120


def _start_streaming_job(args, log_path):
  log = open(log_path, 'ab')
  return subprocess.Popen([sys.executable, '-m', 'beam_pipeline', *args], stdout=log, stderr=subprocess.STDOUT,
                          cwd=REPO_ROOT, env={**os.environ, 'PYTHONUNBUFFERED': '1'})


def _wait_until_caught_up(job, session, keyspace, want_counters, bootstrap_servers, group, topic, log_path):
  """Until the counters equal what was produced and the group has committed everything; fails on timeout."""
  deadline = time.monotonic() + _CATCH_UP_TIMEOUT_S
  while time.monotonic() < deadline:
    assert job.poll() is None, f'the streaming job exited early:\n{open(log_path).read()[-3000:]}'
    if (read_counters(session, keyspace) == want_counters
        and committed_offsets(bootstrap_servers, group, topic) == end_offsets(bootstrap_servers, topic)):
      return
    time.sleep(1)
  raise AssertionError(f'not caught up after {_CATCH_UP_TIMEOUT_S}s:\n{open(log_path).read()[-3000:]}')


def _stop(job):
  job.send_signal(signal.SIGTERM)
  job.wait(timeout=30)


def test_streaming_counts_while_producing_and_resumes_after_restart_without_double_counting(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_bundle_seconds', '1')
  group = f'{topic}-group'
  log_path = tmp_path / 'job.log'
  first = produce_dataset(bootstrap_servers, topic, count=800, keys=40, seed=51)

  job = _start_streaming_job(args, log_path)
  try:
    time.sleep(3)
    while_running = produce_dataset(bootstrap_servers, topic, count=600, keys=40, seed=52)
    so_far = add_counters(expected_counters(first), expected_counters(while_running))
    _wait_until_caught_up(job, cassandra_session, keyspace, so_far, bootstrap_servers, group, topic, log_path)
  finally:
    _stop(job)

  while_stopped = produce_dataset(bootstrap_servers, topic, count=500, keys=40, seed=53)
  so_far = add_counters(so_far, expected_counters(while_stopped))

  job = _start_streaming_job(args, log_path)
  try:
    _wait_until_caught_up(job, cassandra_session, keyspace, so_far, bootstrap_servers, group, topic, log_path)
    time.sleep(3)  # anything counted twice would show up now
    assert read_counters(cassandra_session, keyspace) == so_far
  finally:
    _stop(job)
