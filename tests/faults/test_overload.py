"""A streaming job fed at a steady rate above what it can absorb: memory stays bounded, the lag grows while the
producer runs and drains once it stops, and the counters end exact.

The job's RSS and the consumer group's lag are sampled every second and written, with a plot, to
``$FAULT_REPORT_DIR`` (default ``.local/reports``) as ``overload-<seconds>s.{json,png}``.
The feed rate is ``OVERLOAD_RATE`` messages/s (default 35000, about what one Python producer sends on a 2-core
machine). Left to the scheduler, the job kept up with that producer (27,202 msgs/s absorbed of 28,036 fed), and a
job that keeps up is no overload (it needed about a third of a core for that): so the job shares one core with
BUSY_LOOPS busy loops, which leave it a fifth of that core, while the producer has the other core.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.testing.counters import read_counters
from beam_pipeline.testing.jobs import job_args, rss_mb, start_streaming_job, stop_streaming_job
from beam_pipeline.testing.topics import TopicOffsets

RATE = float(os.environ.get('OVERLOAD_RATE', '35000'))
REPORT_DIR = Path(os.environ.get('FAULT_REPORT_DIR', REPO_ROOT / '.local' / 'reports'))
# Memory a buffering reader or writer would need is of the order of the lag times a few hundred bytes per
# message (hundreds of MB here); a bounded job stays within this margin of where it was when the feed began.
RSS_GROWTH_BOUND_MB = 150
# A bundle holds up to this many messages per partition (4 partitions here). Smaller than the default so that a
# bundle's worth of memory stays far below a lag's worth (the lag peaks at some 600 000 messages in 30 s): the
# two kinds of memory then cannot be mistaken for each other.
RECORDS_PER_BUNDLE = 20000
DRAIN_TIMEOUT_S = 900
JOB_CORE, FEED_CORE = 0, 1
BUSY_LOOPS = 4


def _lag(offsets: TopicOffsets) -> int:
  end, committed = offsets.end(), offsets.committed()
  return sum(end[p] - (committed.get(p) or 0) for p in end)


def _write_report(name: str, samples: list, summary: dict) -> Path:
  import matplotlib
  matplotlib.use('Agg')
  from matplotlib import pyplot
  REPORT_DIR.mkdir(parents=True, exist_ok=True)
  (REPORT_DIR / f'{name}.json').write_text(json.dumps({'summary': summary, 'samples': samples}, indent=1))
  figure, (lag_axis, rss_axis) = pyplot.subplots(2, 1, sharex=True, figsize=(9, 6))
  seconds = [s['t'] for s in samples]
  lag_axis.plot(seconds, [s['lag'] for s in samples], color='tab:red')
  lag_axis.set_ylabel('consumer lag (messages)')
  lag_axis.axvline(summary['feed_ended_s'], color='grey', linestyle='--', label='producer stops')
  lag_axis.legend()
  rss_axis.plot(seconds, [s['rss_mb'] for s in samples], color='tab:blue')
  rss_axis.set_ylabel('job RSS (MB)')
  rss_axis.set_xlabel('seconds since the feed began')
  rss_axis.axvline(summary['feed_ended_s'], color='grey', linestyle='--')
  figure.suptitle(f'Fed at {summary["rate"]:.0f} msgs/s for {summary["feed_s"]}s: '
                  f'peak lag {summary["peak_lag"]:,}, peak RSS {summary["peak_rss_mb"]:.0f} MB')
  figure.tight_layout()
  path = REPORT_DIR / f'{name}.png'
  figure.savefig(path, dpi=90)
  pyplot.close(figure)
  return path


@pytest.mark.parametrize('feed_s', [30, pytest.param(300, marks=pytest.mark.slow)], ids=lambda s: f'{s}s')
def test_an_overfed_job_keeps_memory_bounded_drains_the_lag_and_counts_exactly(
    feed_s, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  group, log, totals_file = f'{topic}-group', tmp_path / 'job.log', tmp_path / 'totals.json'
  count = int(RATE * feed_s)
  assert {JOB_CORE, FEED_CORE} <= os.sched_getaffinity(0), 'the overload case needs two cores'
  job = start_streaming_job(job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_records_per_bundle',
                                     str(RECORDS_PER_BUNDLE)), log)
  os.sched_setaffinity(job.pid, {JOB_CORE})  # before the job starts any thread: its threads inherit the core
  samples, began, busy_loops = [], time.monotonic(), []
  offsets = TopicOffsets(bootstrap_servers, topic, group)
  try:
    busy_loops.extend(subprocess.Popen([sys.executable, '-c', 'while True: pass'],
                                       preexec_fn=lambda: os.sched_setaffinity(0, {JOB_CORE}))
                      for _ in range(BUSY_LOOPS))
    time.sleep(5)  # the job is up and idle: this is where memory starts from
    baseline_rss = rss_mb(job.pid)
    producer = subprocess.Popen(
        [sys.executable, '-m', 'beam_pipeline.tools.produce', '--bootstrap_servers', bootstrap_servers,
         '--topic', topic, '--count', str(count), '--keys', '10000', '--bad_ratio', '0.01',
         '--rate', str(RATE), '--totals_file', str(totals_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
        preexec_fn=lambda: os.sched_setaffinity(0, {FEED_CORE}))
    began, feed_ended = time.monotonic(), None
    while True:
      assert job.poll() is None, f'the job exited under load:\n{log.read_text()[-3000:]}'
      lag = _lag(offsets)
      samples.append({'t': round(time.monotonic() - began, 1), 'lag': lag, 'rss_mb': round(rss_mb(job.pid), 1)})
      if feed_ended is None and producer.poll() is not None:
        feed_ended = time.monotonic() - began
      if feed_ended is not None and lag == 0:
        break
      assert time.monotonic() - began < feed_s + DRAIN_TIMEOUT_S, f'lag not drained: {samples[-5:]}'
      time.sleep(1)
    producer_output = producer.stdout.read().decode()
    assert producer.returncode == 0, producer_output
  finally:
    for busy_loop in busy_loops:
      busy_loop.kill()
    offsets.close()
    stop_streaming_job(job)

  summary = {
      'rate': RATE, 'feed_s': feed_s, 'messages': count, 'feed_ended_s': round(feed_ended, 1),
      'drained_s': samples[-1]['t'], 'peak_lag': max(s['lag'] for s in samples),
      'baseline_rss_mb': round(baseline_rss, 1), 'peak_rss_mb': max(s['rss_mb'] for s in samples),
      'absorbed_msgs_per_s': round(count / samples[-1]['t']),
      'fed_msgs_per_s': round(count / feed_ended),
  }
  plot = _write_report(f'overload-{feed_s}s', samples, summary)
  print(f'overload report: {plot} {json.dumps(summary)}')

  want = {(row['date'], row['site_id']): (row['views'], row['clicks']) for row in json.loads(totals_file.read_text())}
  got = {(date.isoformat(), site_id): value for (date, site_id), value in read_counters(cassandra_session, keyspace).items()}
  assert got == want
  # Committed offsets move a bundle at a time, so the lag saw-tooths; over the feed its trend must rise.
  feeding = [s['lag'] for s in samples if s['t'] <= feed_ended]
  third = max(1, len(feeding) // 3)
  early, late = sum(feeding[:third]) / third, sum(feeding[-third:]) / third
  assert late > 1.5 * early, f'the feed did not outpace the job, so this is no overload: {summary}'
  assert summary['peak_rss_mb'] - baseline_rss < RSS_GROWTH_BOUND_MB, summary
