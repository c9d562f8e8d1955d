"""The monitoring files (monitoring/: the rules, the Grafana dashboard) and Flink's Prometheus reporter: the rules
pass promtool, the dashboard queries only series the job serves, and a streaming job on the session cluster shows
its counters and every partition's lag on the TaskManager's reporter and, through the rules, in a real Prometheus.
"""

import json
import re
import subprocess
import time

import pytest

from beam_pipeline import REPO_ROOT, metrics
from beam_pipeline.devservices.prometheus import (
    PrometheusServer, dashboard_expressions, recording_rules, scrape, series_names)
from beam_pipeline.runners.flink.rest import rest_get
from beam_pipeline.testing.datasets import TEST_PARTITIONS, produce_dataset
from beam_pipeline.testing.jobs import job_args

_SUFFIXES = {'counter': ('_total',), 'gauge': ('',), 'summary': ('_sum', '_count')}
# Flink's reporter serves a Beam metric of the job as this prefix + its name, [^a-zA-Z0-9_:] turned into _.
_FLINK_SERIES = 'flink_taskmanager_job_task_operator_'
# Flink's reporter turns a Beam distribution into a gauge it cannot read (always 0): the write latency is the local
# runner's only.
_LOCAL_ONLY = {'site_stats_cassandra_bundle_write_seconds_sum', 'site_stats_cassandra_bundle_write_seconds_count'}
_TIMEOUT_S = 240


def _dashboard_series():
  return set().union(*map(series_names, dashboard_expressions(REPO_ROOT)))


def test_promtool_accepts_the_rules_file():
  checked = subprocess.run(['promtool', 'check', 'rules', str(REPO_ROOT / 'monitoring' / 'rules.yml')],
                           capture_output=True, text=True)
  assert checked.returncode == 0, checked.stdout + checked.stderr
  assert 'SUCCESS' in checked.stdout + checked.stderr


def test_the_dashboard_queries_only_series_the_job_serves_and_flink_has_a_rule_for_each():
  served = {metric.name + suffix for metric in metrics.PROMETHEUS.values() for suffix in _SUFFIXES[metric.kind]}
  queried = _dashboard_series()
  titles = {panel['title'] for panel in json.loads((REPO_ROOT / 'monitoring' / 'dashboard.json').read_text())['panels']}
  assert titles == {'Throughput', 'Dead letters by stage', 'Cassandra write latency per bundle',
                    'Lag per partition', 'Committed offset per partition'}
  assert queried <= served, queried - served
  missing_rules = queried - _LOCAL_ONLY - set(recording_rules(REPO_ROOT))
  assert not missing_rules, f'no recording rule gives Flink\'s series these names: {missing_rules}'


@pytest.fixture(scope='module')
def prometheus(flink_cluster):
  """The development Prometheus, started with ./run_local.sh prometheus-up unless it answers."""
  server = PrometheusServer(REPO_ROOT)
  if not server.all_ready():
    started = subprocess.run([str(REPO_ROOT / 'run_local.sh'), 'prometheus-up'], capture_output=True, text=True)
    if started.returncode != 0:
      pytest.fail(f'./run_local.sh prometheus-up failed:\n{started.stdout}\n{started.stderr}', pytrace=False)
  return server


def _flink_series(beam_name: str) -> str:
  return _FLINK_SERIES + re.sub(r'[^a-zA-Z0-9_:]', '_', f'{metrics.NAMESPACE}.{beam_name}')


def _job_values(samples, beam_name, job_name) -> list:
  """The values of one Beam metric of one Flink job, one per operator and subtask that reports it."""
  return [value for labels, value in samples.get(_flink_series(beam_name), {}).items()
          if dict(labels).get('job_name') == job_name]


def _job_total(samples, beam_name, job_name) -> float:
  return sum(_job_values(samples, beam_name, job_name))


def _cancel(rest_address: str, job_name: str) -> None:
  for job in rest_get(rest_address, '/jobs/overview')['jobs']:
    if job['name'] == job_name and job['state'] == 'RUNNING':
      subprocess.run(['curl', '-s', '-X', 'PATCH', f'http://{rest_address}/jobs/{job["jid"]}?mode=cancel'],
                     check=True, capture_output=True)


def _wait_for(what: str, done, deadline: float):
  last = None
  while time.monotonic() < deadline:
    last = done()
    if last:
      return last
    time.sleep(2)
  raise AssertionError(f'{what}: not there in time; last seen {last}')


def test_a_streaming_job_on_the_session_cluster_shows_its_counters_and_lag_on_flinks_reporter_and_in_prometheus(
    flink_cluster, prometheus, bootstrap_servers, topic, keyspace, cassandra_port):
  expected = produce_dataset(bootstrap_servers, topic, count=3000, keys=120, bad_ratio=0.05, seed=202)
  submitted = subprocess.run(
      [str(REPO_ROOT / 'run_flink.sh'), *job_args(bootstrap_servers, topic, keyspace, cassandra_port),
       '--job_name', topic, '--checkpointing_interval', '2000'], capture_output=True, text=True, timeout=300)
  deadline = time.monotonic() + _TIMEOUT_S
  reporter = f'127.0.0.1:{flink_cluster.task_manager.prometheus_port}'
  try:
    assert submitted.returncode == 0, submitted.stderr[-3000:]

    def reporter_caught_up():
      samples = scrape(reporter)
      lag = {p: _job_values(samples, metrics.partition_metric(metrics.PARTITION_LAG, topic, p), topic)
             for p in range(TEST_PARTITIONS)}
      counted = _job_total(samples, metrics.MESSAGES_COUNTED, topic)
      return samples if counted == expected.valid and lag == {p: [0] for p in range(TEST_PARTITIONS)} else None

    samples = _wait_for('the counted messages and a lag of 0 on the reporter', reporter_caught_up, deadline)
    assert _job_total(samples, metrics.MESSAGES_READ, topic) == expected.messages
    assert {stage: _job_total(samples, metrics.dead_lettered(stage), topic) for stage in ('parse', 'validate')} == (
        dict(expected.invalid_by_stage))

    def lag_in_prometheus():
      found = prometheus.query(f'site_stats_partition_lag{{job_name="{topic}"}}')
      lag = {int(series['metric']['partition']): float(series['value'][1]) for series in found}
      return lag if lag == {p: 0 for p in range(TEST_PARTITIONS)} else None

    _wait_for('the lag of every partition at 0 in Prometheus', lag_in_prometheus, deadline)
    counted = prometheus.query(f'site_stats_messages_counted_total{{job_name="{topic}"}}')
    assert [float(series['value'][1]) for series in counted] == [expected.valid]
    # Every series the dashboard queries (but the local-only ones) is there for the job; the committed offsets
    # follow the checkpoints.
    for name in sorted(_dashboard_series() - _LOCAL_ONLY):
      _wait_for(f'{name} of {topic} in Prometheus', lambda: prometheus.query(f'{name}{{job_name="{topic}"}}'),
                deadline)
  finally:
    _cancel(flink_cluster.job_manager.address, topic)
