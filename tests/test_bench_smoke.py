"""The benchmark's command on a tiny topic: the contenders run, and the results have the promised shape.

Figures from so small a run mean nothing; this only proves the command works and writes what it says. The
default run takes the contenders that cover each kind of row (the raw reader, the system it replaces, the
pipeline); ``--slow`` runs every contender, the Go consumer and Flink included.
"""

import json
import os
import subprocess

import pytest

from beam_pipeline import REPO_ROOT

REQUIRED = {'name', 'msgs_per_s', 'cpu_s', 'peak_rss_mb', 'cassandra_writes', 'exact', 'machine_busy_cores',
            'kafka_cpu_s', 'cassandra_cpu_s'}
EVERY_CONTENDER = ['raw_kafka_python', 'raw_confluent_kafka', 'naive_python', 'go_seed', 'pipeline_direct',
                   'pipeline_direct_at_least_once', 'pipeline_direct_librdkafka', 'pipeline_streaming',
                   'pipeline_streaming_2_copies', 'pipeline_flink', 'pipeline_flink_cluster', 'pipeline_flink_cluster_streaming',
                   'pipeline_flink_cluster_streaming_at_least_once']
ONE_OF_EACH_KIND = ['raw_kafka_python', 'raw_confluent_kafka', 'naive_python', 'pipeline_direct',
                    'pipeline_direct_at_least_once', 'pipeline_direct_librdkafka']


@pytest.mark.parametrize('contenders', [ONE_OF_EACH_KIND, pytest.param(EVERY_CONTENDER, marks=pytest.mark.slow)],
                         ids=['one-of-each-kind', 'every-contender'])
def test_the_benchmark_runs_its_contenders_and_writes_json_and_a_chart(local_stack, tmp_path, contenders):
  result = subprocess.run([str(REPO_ROOT / 'bench' / 'run.sh'), '--messages', '1500', '--keys', '40',
                           '--only', ','.join(contenders), '--results_dir', str(tmp_path)],
                          capture_output=True, text=True, timeout=900)

  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  results, = [p for p in tmp_path.glob('*.json') if not p.name.endswith('-run.json')]
  rows = {row['name']: row for row in json.loads(results.read_text())}
  assert list(rows) == contenders
  for row in rows.values():
    assert REQUIRED <= set(row), row
    assert row['msgs_per_s'] > 0 and row['cpu_s'] > 0 and row['peak_rss_mb'] > 0
    assert row['machine_busy_cores'] > 0 and row['kafka_cpu_s'] >= 0 and row['cassandra_cpu_s'] >= 0, row
  # The broker served every contender's reads, and Cassandra took the pipelines' writes.
  assert sum(row['kafka_cpu_s'] for row in rows.values()) > 0, rows
  assert sum(row['cassandra_cpu_s'] for row in rows.values()) > 0, rows
  assert rows['raw_kafka_python']['exact'] is rows['raw_confluent_kafka']['exact'] is None  # raw readers count nothing
  assert rows['raw_kafka_python']['messages'] == rows['raw_confluent_kafka']['messages'] == 1500
  assert all(row['exact'] is True for name, row in rows.items() if not name.startswith('raw_')), rows
  assert {row['workers'] for name, row in rows.items() if name.startswith('pipeline')} == {os.cpu_count()}
  # Per-bundle sums beat one write per message.
  assert rows['pipeline_direct']['cassandra_writes'] < rows['naive_python']['cassandra_writes']
  # The ledger merges each partition's ranges as it counts them in order; without it there is no ledger.
  assert all(row['ledger_ranges_per_partition'] == 1 for name, row in rows.items()
             if name.startswith('pipeline') and not name.endswith('_at_least_once')), rows
  assert rows['pipeline_direct_at_least_once']['ledger_ranges_per_partition'] is None
  assert all(row['flink_jvm_peak_rss_mb'] > 0 for name, row in rows.items() if 'flink' in name)
  assert all(row['read_msgs_per_s'] > row['msgs_per_s'] for name, row in rows.items()
             if 'flink_cluster' in name or name.startswith('pipeline_streaming'))
  assert list(tmp_path.glob('*.png'))
  assert 'pipeline_direct' in result.stdout and 'msgs/s' in result.stdout
  if 'pipeline_streaming_2_copies' in rows:
    assert 'x draining' in result.stdout
