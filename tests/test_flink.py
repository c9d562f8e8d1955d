"""The same graph on Flink, against the real Kafka and Cassandra: embedded (a mini cluster inside the project's job
server) and on the local session cluster (./run_local.sh flink-up). Each case checks exact counters, exact dead
letters and the group's offsets."""

import datetime
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.runners.flink.options import FLINK_JAVA_OPTIONS
from beam_pipeline.runners.flink.rest import rest_get
from beam_pipeline.options.known_flags import unknown_options
from beam_pipeline.testing.counters import (
    expected_counters, flink_counter_by_subtask, flink_job, flink_job_counters, read_counters)
from beam_pipeline.testing.datasets import produce_dataset
from beam_pipeline.testing.jobs import (
    child_processes, job_args, run_bounded, start_streaming_job, stop_streaming_job, wait_until_caught_up,
    wait_until_exact_and_committed)
from beam_pipeline.testing.topics import committed_offsets, end_offsets, read_dead_letters
from tests.kafka_clients import DEFAULT_CLIENT_THEN_THE_OTHER_IN_THE_SLOW_RUN

EMBEDDED = ('--runner', 'FlinkRunner')
_SUMMARY = re.compile(r'summary: read (\d+), counted (\d+), dead-lettered (\d+) \(parse (\d+), validate (\d+)\)')


def _dead_letters_by_stage(bootstrap_servers, topic):
  stages = {}
  for letter in read_dead_letters(bootstrap_servers, topic):
    stages[letter['stage']] = stages.get(letter['stage'], 0) + 1
  return stages


@pytest.mark.parametrize('kafka_client', DEFAULT_CLIENT_THEN_THE_OTHER_IN_THE_SLOW_RUN)
def test_a_bounded_catch_up_on_embedded_flink_is_exact_and_commits_the_group_once_everything_is_written(
    flink_job_server, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, kafka_client):
  expected = produce_dataset(bootstrap_servers, topic, count=3000, keys=120, bad_ratio=0.05, seed=141)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, *EMBEDDED, '--kafka_client', kafka_client)

  summary = run_bounded(*args)

  assert read_counters(cassandra_session, keyspace) == expected_counters(expected)
  assert (summary.read, summary.counted) == (expected.messages, expected.valid)
  assert summary.dead_lettered == dict(expected.invalid_by_stage)
  assert _dead_letters_by_stage(bootstrap_servers, topic) == dict(expected.invalid_by_stage)
  assert committed_offsets(bootstrap_servers, f'{topic}-group', topic) == end_offsets(bootstrap_servers, topic)


def test_a_window_backfill_and_a_reconcile_on_embedded_flink_are_exact_and_leave_the_group_alone(
    flink_job_server, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  expected = produce_dataset(bootstrap_servers, topic, count=2000, keys=84, bad_ratio=0.02, seed=142)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, *EMBEDDED)

  backfill = run_bounded(*args, '--start_offsets', '0=0,1=0,2=0,3=0')
  exact = expected_counters(expected)
  assert read_counters(cassandra_session, keyspace) == exact
  assert backfill.read == backfill.counted + backfill.dead_lettered_total == expected.messages
  drifted = min(k for k in exact if k[0] == datetime.date(2017, 2, 3))
  cassandra_session.execute(f'UPDATE {keyspace}.site_stats SET views = views + 1000 WHERE date = %s AND '
                            'site_id = %s', drifted)

  reconcile = run_bounded(*args, '--sink_mode', 'reconcile', '--dates', '2017-02-03..2017-02-04')

  assert read_counters(cassandra_session, keyspace) == exact
  assert (reconcile.reconcile['keys_corrected'], reconcile.reconcile['views_corrected']) == (1, -1000)
  assert set(committed_offsets(bootstrap_servers, f'{topic}-group', topic).values()) == {None}


def test_streaming_on_embedded_flink_is_exact_commits_on_checkpoints_and_is_cancelled_when_stopped(
    flink_job_server, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  expected = produce_dataset(bootstrap_servers, topic, count=3000, keys=120, bad_ratio=0.05, seed=143)
  log = tmp_path / 'streaming.log'
  job = start_streaming_job(
      job_args(bootstrap_servers, topic, keyspace, cassandra_port, *EMBEDDED, '--checkpointing_interval', '2000',
               '--max_records_per_bundle', '200', '--job_name', topic),
      log)
  readers = os.cpu_count()
  try:
    wait_until_caught_up(job, cassandra_session, keyspace, expected_counters(expected), bootstrap_servers,
                         f'{topic}-group', topic, log)
    # A reader per core, each with Python worker processes of the command (two per reader), not its threads.
    assert len(child_processes(job.pid, b'\0beam_pipeline.runners.flink.worker\0')) == 2 * readers
    rest = _embedded_rest_address_of(topic)
    ends = end_offsets(bootstrap_servers, topic)
    assert _read_by_subtask_once_reported(rest, topic, expected.messages) == [
        sum(end for partition, end in ends.items() if partition % readers == reader) for reader in range(readers)]
  finally:
    stop_streaming_job(job)
  assert job.returncode == 0, log.read_text()[-3000:]
  assert re.search(rf'the Flink job {topic} is cancelled \([0-9a-f]{{32}}\)', log.read_text())
  assert _dead_letters_by_stage(bootstrap_servers, topic) == dict(expected.invalid_by_stage)


def _run_flink(*args) -> subprocess.CompletedProcess:
  return subprocess.run([str(REPO_ROOT / 'run_flink.sh'), *args], capture_output=True, text=True, timeout=300)


def _cancel(rest_address: str, job_name: str) -> None:
  for job in rest_get(rest_address, '/jobs/overview')['jobs']:
    if job['name'] == job_name and job['state'] == 'RUNNING':
      subprocess.run(['curl', '-s', '-X', 'PATCH', f'http://{rest_address}/jobs/{job["jid"]}?mode=cancel'],
                     check=True, capture_output=True)


@pytest.mark.parametrize('kafka_client', DEFAULT_CLIENT_THEN_THE_OTHER_IN_THE_SLOW_RUN)
def test_a_streaming_job_on_the_session_cluster_outlives_its_submitter_spreads_the_partitions_and_commits_them_all(
    flink_cluster, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, kafka_client):
  expected = produce_dataset(bootstrap_servers, topic, count=3000, keys=120, bad_ratio=0.05, seed=144)
  rest = flink_cluster.job_manager.address

  # Several bundles per partition: the last one's commit must not wait for a message that never comes.
  submitted = _run_flink(*job_args(bootstrap_servers, topic, keyspace, cassandra_port),
                         '--job_name', topic, '--checkpointing_interval', '2000', '--parallelism', '2',
                         '--max_records_per_bundle', '200', '--kafka_client', kafka_client)

  try:
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert 'is RUNNING' in submitted.stderr
    deadline = time.monotonic() + 180
    assert wait_until_exact_and_committed(cassandra_session, keyspace, expected_counters(expected), bootstrap_servers,
                                          f'{topic}-group', topic, 180), \
        'the job on the session cluster did not catch up in 180 s'
    # Flink shows Beam's counters as operator metrics; they are reported a few seconds behind.
    counters = {}
    while counters.get('messages_read') != expected.messages and time.monotonic() < deadline:
      time.sleep(2)
      counters = flink_job_counters(rest, topic)
    assert counters['messages_read'] == expected.messages
    assert counters['messages_counted'] == expected.valid
    assert counters['dead_lettered_parse'] + counters['dead_lettered_validate'] == (
        expected.messages - expected.valid)
    # Partition i is read by reader i mod 2, whatever the topic's name.
    ends = end_offsets(bootstrap_servers, topic)
    assert flink_counter_by_subtask(rest, topic, 'messages_read') == [
        sum(end for partition, end in ends.items() if partition % 2 == reader) for reader in (0, 1)]
    # The job's Python log lines reach the TaskManager's log.
    assert f"topic='{topic}', partition=0): reading offsets" in flink_cluster.task_manager.process.log_file.read_text(
        errors='replace')
  finally:
    _cancel(rest, topic)
  assert _dead_letters_by_stage(bootstrap_servers, topic) == dict(expected.invalid_by_stage)


def test_a_bounded_run_on_the_session_cluster_waits_and_prints_the_exact_summary(
    flink_cluster, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  expected = produce_dataset(bootstrap_servers, topic, count=3000, keys=120, bad_ratio=0.05, seed=145)

  finished = _run_flink(*job_args(bootstrap_servers, topic, keyspace, cassandra_port), '--bounded',
                        '--job_name', topic)

  assert finished.returncode == 0, finished.stderr[-3000:]
  read, counted, dead_lettered, parse, validate = map(int, _SUMMARY.search(finished.stdout).groups())
  assert (read, counted, dead_lettered) == (expected.messages, expected.valid, expected.messages - expected.valid)
  assert {'parse': parse, 'validate': validate} == dict(expected.invalid_by_stage)
  assert read_counters(cassandra_session, keyspace) == expected_counters(expected)
  assert committed_offsets(bootstrap_servers, f'{topic}-group', topic) == end_offsets(bootstrap_servers, topic)
  # Never restarted by Flink: a restarted batch region would count again what it had written.
  job_manager_log = flink_cluster.job_manager.process.log_file.read_text(errors='replace')
  assert re.search(rf'Using restart back off time strategy NoRestartBackoffTimeStrategy for {topic} ',
                   job_manager_log)
  # The cluster runs from the job server's jars and says so: the job uploaded none (Flink keeps a job's uploaded
  # jars in its TaskManagers' blob storage; the job server's whole classpath is 165 of them).
  job_id = flink_job(flink_cluster.job_manager.address, topic)['jid']
  assert list(flink_cluster.base.glob(f'tmp/*/blobStorage/job_{job_id}/blob_p-*')) == []


def test_the_flink_options_the_job_declares_are_those_the_job_server_announces(flink_job_server):
  import grpc
  from apache_beam.portability.api import beam_job_api_pb2, beam_job_api_pb2_grpc
  channel = grpc.insecure_channel(flink_job_server.endpoint)
  try:
    announced = beam_job_api_pb2_grpc.JobServiceStub(channel).DescribePipelineOptions(
        beam_job_api_pb2.DescribePipelineOptionsRequest(), timeout=30).options
  finally:
    channel.close()
  kinds = {beam_job_api_pb2.PipelineOptionType.BOOLEAN: bool, beam_job_api_pb2.PipelineOptionType.INTEGER: int,
           beam_job_api_pb2.PipelineOptionType.STRING: str}
  java = {option.name: kinds.get(option.type) for option in announced}
  assert {name: java.get(name) for name in FLINK_JAVA_OPTIONS} == FLINK_JAVA_OPTIONS
  flink_own = {o.name for o in announced if o.group.startswith('org.apache.beam.runners.flink.')}
  assert unknown_options([f'--{name}' for name in sorted(flink_own)]) == []


def test_flink_options_pass_the_option_check_and_a_misspelt_one_is_still_refused():
  assert unknown_options(['--runner', 'FlinkRunner', '--flink_master', 'localhost:8081', '--checkpointing_interval',
                          '5000', '--parallelism', '2', '--state_backend', 'rocksdb', '--object_reuse',
                          '--environment_type', 'EXTERNAL', '--environment_config', 'localhost:50000']) == []
  assert unknown_options(['--checkpointing_intervall', '5000']) == ['--checkpointing_intervall']


def test_an_unreachable_flink_master_fails_in_seconds_with_one_line_naming_it(bootstrap_servers, topic, keyspace,
                                                                              cassandra_port):
  from beam_pipeline.processes.ports import free_port
  master = f'localhost:{free_port()}'
  started = time.monotonic()
  result = subprocess.run(
      [sys.executable, '-m', 'beam_pipeline', *job_args(bootstrap_servers, topic, keyspace, cassandra_port),
       '--runner', 'FlinkRunner', '--flink_master', master, '--bounded'],
      capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
  assert result.returncode == 2
  assert time.monotonic() - started < 15
  error, = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert f'--flink_master {master}: no Flink REST API answered' in error


def test_an_embedded_job_whose_command_was_killed_gives_up_instead_of_restarting_forever(
    flink_job_server, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  from beam_pipeline.runners.flink.job_server import embedded_rest_addresses
  expected = produce_dataset(bootstrap_servers, topic, count=500, keys=20, seed=146)
  log = tmp_path / 'streaming.log'
  job = start_streaming_job(job_args(bootstrap_servers, topic, keyspace, cassandra_port, *EMBEDDED,
                                     '--job_name', topic, '--execution_retry_delay', '2000'), log)
  wait_until_caught_up(job, cassandra_session, keyspace, expected_counters(expected), bootstrap_servers,
                       f'{topic}-group', topic, log)
  workers = child_processes(job.pid, b'\0beam_pipeline.runners.flink.worker\0')
  assert workers
  job.kill()  # no chance to cancel: its Python workers end with it
  job.wait()

  deadline = time.monotonic() + 120
  while _running_embedded_jobs(embedded_rest_addresses(), topic):
    assert time.monotonic() < deadline, 'the embedded job still restarts 120 s after its command was killed'
    time.sleep(2)
  assert not [pid for pid in workers if Path(f'/proc/{pid}').exists()], 'worker processes outlived their command'


def _read_by_subtask_once_reported(rest_address: str, job_name: str, messages: int) -> List[int]:
  """messages_read per reading subtask, once Flink's metrics (a few seconds behind) add up to ``messages``."""
  deadline = time.monotonic() + 60
  while True:
    try:
      by_subtask = flink_counter_by_subtask(rest_address, job_name, 'messages_read')
      if sum(by_subtask) == messages:
        return by_subtask
    except LookupError:
      pass  # not reported yet
    assert time.monotonic() < deadline, f'the job\'s metrics did not reach {messages} messages read in 60 s'
    time.sleep(1)


def _embedded_rest_address_of(job_name: str) -> str:
  from beam_pipeline.runners.flink.job_server import embedded_rest_addresses
  for address in embedded_rest_addresses():
    if _running_embedded_jobs([address], job_name):
      return address
  raise AssertionError(f'no embedded mini cluster runs {job_name}')


def _running_embedded_jobs(rest_addresses, job_name):
  running = []
  for address in rest_addresses:
    try:
      jobs = rest_get(address, '/jobs/overview', timeout_s=2)['jobs']
    except (OSError, ValueError, KeyError):
      continue
    running += [j for j in jobs if j['name'] == job_name and j['state'] not in ('FAILED', 'CANCELED', 'FINISHED')]
  return running
