"""The benchmark's command on a tiny topic: every contender runs, and the results have the promised shape.

Figures from so small a run mean nothing; this only proves the command works and writes what it says.
"""

import json
import os
import subprocess

from beam_pipeline import REPO_ROOT

REQUIRED = {'name', 'msgs_per_s', 'cpu_s', 'peak_rss_mb', 'cassandra_writes', 'exact'}


def test_the_benchmark_runs_every_contender_and_writes_json_and_a_chart(local_stack, tmp_path):
  result = subprocess.run([str(REPO_ROOT / 'bench' / 'run.sh'), '--messages', '1500', '--keys', '40',
                           '--results_dir', str(tmp_path)], capture_output=True, text=True, timeout=900)

  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  results, = [p for p in tmp_path.glob('*.json') if not p.name.endswith('-run.json')]
  rows = json.loads(results.read_text())
  assert [r['name'] for r in rows] == ['raw_kafka_python', 'naive_python', 'go_seed', 'pipeline_direct',
                                       'pipeline_streaming', 'pipeline_flink', 'pipeline_flink_cluster']
  for row in rows:
    assert REQUIRED <= set(row), row
    assert row['msgs_per_s'] > 0 and row['cpu_s'] > 0 and row['peak_rss_mb'] > 0
  assert rows[0]['exact'] is None  # the raw reader counts nothing
  assert {r['workers'] for r in rows if r['name'].startswith('pipeline')} == {os.cpu_count()}
  assert all(row['exact'] is True for row in rows[1:]), rows
  assert rows[3]['cassandra_writes'] < rows[1]['cassandra_writes']  # per-bundle sums beat one write per message
  assert all(row['flink_jvm_peak_rss_mb'] > 0 for row in rows[5:])
  assert list(tmp_path.glob('*.png'))
  assert 'pipeline_direct' in result.stdout and 'msgs/s' in result.stdout
