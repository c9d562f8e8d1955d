"""Local runs with two SDK worker processes: the partitions are read in parallel, checkpoints and commits kept."""

import importlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.processes.log_levels import log_level_of
from beam_pipeline.runners.flink.worker import AWAIT_FLAGS
from beam_pipeline.runners.local.worker_logs import logger_name_of
from beam_pipeline.runners.local.worker_pool import WORKER_MODULE, worker_processes_asked
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import produce_dataset
from beam_pipeline.testing.jobs import (
    child_processes, command_line, job_args, run_bounded, start_streaming_job, stop_streaming_job,
    wait_until_caught_up)
from beam_pipeline.testing.topics import committed_offsets, end_offsets, read_dead_letters

TWO_WORKER_PROCESSES = ('--direct_num_workers', '2', '--direct_running_mode', 'multi_processing')


def test_a_bounded_run_on_two_worker_processes_reads_every_checkpointed_range(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, caplog):
  caplog.set_level(logging.INFO)
  expected = produce_dataset(bootstrap_servers, topic, count=4000, keys=100, bad_ratio=0.02, seed=61)

  # Small bundles: each partition is read over many checkpoints, each one a residual the runner must keep.
  summary = run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port,
                                  '--max_records_per_bundle', '150', *TWO_WORKER_PROCESSES))

  assert summary.read == expected.messages
  assert read_counters(cassandra_session, keyspace) == expected_counters(expected)
  assert {(d['partition'], d['offset']) for d in read_dead_letters(bootstrap_servers, topic)} == set(
      expected.invalid_offsets)
  assert committed_offsets(bootstrap_servers, f'{topic}-group', topic) == end_offsets(bootstrap_servers, topic)
  # The workers commit; their records reach the launcher's logger of the module that logged them (worker_logs.py).
  commits = [r.getMessage() for r in caplog.records if r.name == 'beam_pipeline.io.kafka.commit']
  assert len([line for line in commits if ': committed offset ' in line]) >= 4, commits


def test_a_streaming_job_on_two_worker_processes_keeps_reading_and_committing(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_bundle_seconds', '1',
                  '--max_records_per_bundle', '200', *TWO_WORKER_PROCESSES)
  log_path = tmp_path / 'job.log'
  before = produce_dataset(bootstrap_servers, topic, count=1500, keys=60, seed=62)

  job = start_streaming_job(args, log_path)
  try:
    wait_until_caught_up(job, cassandra_session, keyspace, expected_counters(before), bootstrap_servers,
                         f'{topic}-group', topic, log_path)
    workers = child_processes(job.pid)
    assert len(workers) == 2, f'expected two SDK worker processes under the job, found {workers}'
    # Both were forked from the command as it started, before the runner asked for them (worker_pool.py).
    assert all(command_line(pid) == command_line(job.pid) for pid in workers)
    # Their records are told at the job's levels (worker_logs.py): no Kafka driver chatter at INFO.
    log = log_path.read_text()
    assert not re.search(r'Worker: severity|^\S+ \S+ INFO kafka\.', log, re.M), log[-3000:]
    later = produce_dataset(bootstrap_servers, topic, count=1500, keys=60, seed=63)
    wait_until_caught_up(job, cassandra_session, keyspace,
                         add_counters(expected_counters(before), expected_counters(later)), bootstrap_servers,
                         f'{topic}-group', topic, log_path)
  finally:
    stop_streaming_job(job)
  deadline = time.monotonic() + 15
  while any(Path(f'/proc/{pid}').exists() for pid in workers):
    assert time.monotonic() < deadline, f'the stopped job left its SDK worker processes {workers} running'
    time.sleep(0.5)


@pytest.mark.parametrize('log_level', ['INFO', 'DEBUG'])
def test_the_workers_log_their_drivers_connections_at_the_jobs_debug_level_only(
    bootstrap_servers, topic, keyspace, cassandra_port, log_level):
  produce_dataset(bootstrap_servers, topic, count=200, keys=20, seed=64)

  job = subprocess.run(
      [sys.executable, '-m', 'beam_pipeline', '--bounded', '--log_level', log_level, *TWO_WORKER_PROCESSES,
       *job_args(bootstrap_servers, topic, keyspace, cassandra_port)],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

  assert job.returncode == 0, job.stderr[-3000:]
  # The offset committer's client runs in the workers only: its records show what the workers' drivers log.
  committer = re.findall(r'^\S+ \S+ (\w+) kafka\.\S+: .*client_id=site-stats-committer', job.stderr, re.M)
  if log_level == 'DEBUG':
    assert 'DEBUG' in committer, job.stderr[-3000:]
  else:
    assert not committer, job.stderr[-3000:]


@pytest.mark.parametrize('argv, workers', [
    (['--direct_num_workers', '2', '--direct_running_mode', 'multi_processing'], 2),
    (['--direct_num_workers=3', '--direct_running_mode=multi_processing', '--runner', 'DirectRunner'], 3),
    (['--direct_running_mode', 'multi_processing'], 1),
    (['--direct_num_workers', '0', '--direct_running_mode', 'multi_processing'], os.cpu_count()),
    (['--direct_num_workers', '2', '--direct_running_mode', 'multi_threading'], 0),
    ([], 0),
    (['--runner', 'FlinkRunner', '--direct_num_workers', '2', '--direct_running_mode', 'multi_processing'], 0),
    (['--direct_num_workers', 'two', '--direct_running_mode', 'multi_processing'], 0),
    (['--direct_num_workers', '2', '--direct_running_mode', 'multi_processing', '--dry_run', 'True'], 0),
])
def test_the_command_starts_ahead_as_many_workers_as_the_local_runner_will_ask_for(argv, workers):
  assert worker_processes_asked(['--topic', 't', *argv]) == workers


# A launcher that runs the command's steps itself (as ``python -m beam_pipeline`` does), optionally with a thread of
# its own already running, and prints its worker processes' command lines once it has started them.
_LAUNCHER = '''
import json, os, sys, threading, time
if sys.argv[1] == 'with_a_thread':
  threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
from beam_pipeline.__main__ import main
from beam_pipeline.processes.command import begin_job_process, end_process
begin_job_process(sys.argv[2:])
from beam_pipeline.testing.jobs import child_processes, command_line
print(json.dumps([command_line(child).decode().split('\\0')[:-1] for child in child_processes(os.getpid())]),
      flush=True)
end_process(main(sys.argv[2:]))
'''


@pytest.mark.parametrize('launcher', ['alone', 'with_a_thread'])
def test_the_workers_are_forked_from_the_launcher_unless_it_already_runs_a_thread_and_count_alike(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, launcher):
  expected = produce_dataset(bootstrap_servers, topic, count=2000, keys=50, bad_ratio=0.02, seed=65)
  argv = ['--bounded', *TWO_WORKER_PROCESSES, *job_args(bootstrap_servers, topic, keyspace, cassandra_port)]

  job = subprocess.run([sys.executable, '-c', _LAUNCHER, launcher, *argv], cwd=REPO_ROOT, capture_output=True,
                       text=True, timeout=120)

  assert job.returncode == 0, job.stderr[-3000:]
  workers = json.loads(job.stdout.splitlines()[0])
  assert len(workers) == 2, workers
  if launcher == 'alone':
    # A fork runs the launcher's program: the modules it imported for them are theirs (worker_pool.py).
    assert all(command[:3] == [sys.executable, '-c', _LAUNCHER] for command in workers), workers
  else:
    # Forking a process with a thread could leave a lock held in the child: they are new interpreters instead.
    assert all(command[-3:] == ['-m', WORKER_MODULE, AWAIT_FLAGS] for command in workers), workers
  assert f'summary: read {expected.messages},' in job.stdout, job.stdout
  assert read_counters(cassandra_session, keyspace) == expected_counters(expected)
  assert {(d['partition'], d['offset']) for d in read_dead_letters(bootstrap_servers, topic)} == set(
      expected.invalid_offsets)


@pytest.mark.parametrize('module', [
    'apache_beam.runners.worker.sdk_worker_main', 'beam_pipeline.io.kafka.commit', 'kafka', 'cassandra.cluster'])
def test_a_worker_record_is_told_under_the_logger_of_the_module_that_logged_it(module):
  location = f'{importlib.import_module(module).__file__}:12'
  assert logger_name_of(location) == module


@pytest.mark.parametrize('options_json, level', [
    ('{"beam:option:log_level:v1": "DEBUG", "beam:option:topic:v1": "t"}', 'DEBUG'),
    ('{"options": {"log_level": "WARNING"}}', 'WARNING'),
    ('{"beam:option:topic:v1": "t"}', 'INFO'),
    ('{}', 'INFO'),
    (None, 'INFO'),
])
def test_a_worker_reads_the_jobs_log_level_from_the_options_its_runner_provisions(options_json, level):
  assert log_level_of(options_json) == level
