"""The local runner's Prometheus endpoint (``--metrics_port``), scraped while a streaming job runs against the real
Kafka and Cassandra: its counters equal what was produced, every partition's lag reaches 0 and its committed
offset the partition's end, and every series the Grafana dashboard queries is among those it serves."""

import time

from beam_pipeline import REPO_ROOT
from beam_pipeline.devservices.prometheus import dashboard_expressions, scrape, series_names
from beam_pipeline.processes.ports import free_port
from beam_pipeline.testing.datasets import TEST_PARTITIONS, produce_dataset
from beam_pipeline.testing.jobs import job_args, start_streaming_job, stop_streaming_job
from beam_pipeline.testing.topics import end_offsets

_TIMEOUT_S = 180


def _per_partition(samples: dict, name: str, topic: str) -> dict:
  return {int(dict(labels)['partition']): value for labels, value in samples.get(name, {}).items()
          if dict(labels)['topic'] == topic}


def _scrape_until(port, job, log, done):
  """Scrapes until ``done(samples)``; fails when the job exits or the time runs out."""
  deadline, samples = time.monotonic() + _TIMEOUT_S, {}
  while time.monotonic() < deadline:
    assert job.poll() is None, f'the streaming job exited:\n{log.read_text()[-3000:]}'
    try:
      samples = scrape(f'127.0.0.1:{port}')
    except OSError:
      samples = {}  # not serving yet
    if samples and done(samples):
      return samples
    time.sleep(1)
  raise AssertionError(f'not there after {_TIMEOUT_S}s: {samples}\n{log.read_text()[-3000:]}')


def test_a_streaming_job_serves_its_counters_and_each_partitions_lag_and_offset_to_prometheus_while_it_runs(
    bootstrap_servers, topic, keyspace, cassandra_port, tmp_path):
  port, log = free_port(), tmp_path / 'streaming.log'
  job = start_streaming_job(job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--metrics_port', str(port)),
                            log)
  try:
    # Served from the start, before any message.
    idle = _scrape_until(port, job, log, lambda samples: 'site_stats_messages_counted_total' in samples)
    assert idle['site_stats_messages_counted_total'] == {(): 0}
    expected = produce_dataset(bootstrap_servers, topic, count=3000, keys=120, bad_ratio=0.05, seed=201)
    ends = end_offsets(bootstrap_servers, topic)

    def caught_up(samples):
      return (samples['site_stats_messages_counted_total'][()] == expected.valid and
              _per_partition(samples, 'site_stats_committed_offset', topic) == ends)

    samples = _scrape_until(port, job, log, caught_up)
  finally:
    stop_streaming_job(job)

  assert samples['site_stats_messages_read_total'] == {(): expected.messages}
  assert {dict(labels)['stage']: value for labels, value in samples['site_stats_dead_lettered_total'].items()} == (
      dict(expected.invalid_by_stage))
  assert _per_partition(samples, 'site_stats_partition_lag', topic) == {p: 0 for p in range(TEST_PARTITIONS)}
  assert samples['site_stats_cassandra_bundle_write_seconds_count'][()] > 0
  queried = set().union(*map(series_names, dashboard_expressions(REPO_ROOT)))
  assert queried and queried <= set(samples), queried - set(samples)
