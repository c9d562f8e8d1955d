"""A streaming job fed at a steady rate above what it can absorb: memory stays bounded, the lag grows while the
producer runs and drains once it stops, and the counters end exact.

The job's RSS and the consumer group's lag are sampled every second and written, with a plot, to
``$FAULT_REPORT_DIR`` (default ``.local/reports``) as ``overload-<seconds>s.{json,png}``.
The feed is paced to ``OVERLOAD_RATE`` messages/s (default 35000, about the most one Python producer sends on a
2-core machine; it sends fewer when the machine is busy). Left alone, the job keeps up with that producer (it needs
about a third of a core), and a job that keeps up is no overload. So while the feed runs the job is let run
JOB_RUN_MS in every JOB_RUN_MS + JOB_STOP_MS (SIGSTOP, SIGCONT): a fixed share of the time, whatever else the
machine is doing. Busy loops on the job's core did this before, but they pushed the broker and Cassandra onto the
producer's core, and on a loaded machine the producer then fed no faster than the starved job read. Once the feed
ends the job runs freely and drains the lag.
"""

import json
import os
import signal
import subprocess
import sys
import threading
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
# The job runs a fifth of the time while fed: it read some 8,000 msgs/s of an 18,600 msgs/s feed here.
JOB_RUN_MS, JOB_STOP_MS = 20, 80


class Starved:
  """From its creation until ``stop()``, lets a process run only ``run_ms`` in every ``run_ms + stop_ms``."""

  def __init__(self, pid: int, run_ms: int, stop_ms: int):
    self._pid, self._run_s, self._stop_s = pid, run_ms / 1000, stop_ms / 1000
    self._done = threading.Event()
    self._thread = threading.Thread(target=self._cycle, name='starve-job', daemon=True)
    self._thread.start()

  def _cycle(self) -> None:
    try:
      while not self._done.wait(self._run_s):
        os.kill(self._pid, signal.SIGSTOP)
        self._done.wait(self._stop_s)
        os.kill(self._pid, signal.SIGCONT)
    except ProcessLookupError:  # the job died; the test's own check reports it
      pass

  def stop(self) -> None:
    """Ends the cycle with the process running."""
    self._done.set()
    self._thread.join()
    try:
      os.kill(self._pid, signal.SIGCONT)
    except ProcessLookupError:
      pass


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
  job = start_streaming_job(job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_records_per_bundle',
                                     str(RECORDS_PER_BUNDLE)), log)
  samples, began = [], time.monotonic()
  offsets = TopicOffsets(bootstrap_servers, topic, group)
  starved = None
  try:
    time.sleep(5)  # the job is up and idle: this is where memory starts from
    baseline_rss = rss_mb(job.pid)
    producer = subprocess.Popen(
        [sys.executable, '-m', 'beam_pipeline.tools.produce', '--bootstrap_servers', bootstrap_servers,
         '--topic', topic, '--count', str(count), '--keys', '10000', '--bad_ratio', '0.01',
         '--rate', str(RATE), '--totals_file', str(totals_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    starved = Starved(job.pid, JOB_RUN_MS, JOB_STOP_MS)
    began, feed_ended = time.monotonic(), None
    while True:
      assert job.poll() is None, f'the job exited under load:\n{log.read_text()[-3000:]}'
      lag = _lag(offsets)
      samples.append({'t': round(time.monotonic() - began, 1), 'lag': lag, 'rss_mb': round(rss_mb(job.pid), 1)})
      if feed_ended is None and producer.poll() is not None:
        feed_ended = time.monotonic() - began
        starved.stop()
      if feed_ended is not None and lag == 0:
        break
      assert time.monotonic() - began < feed_s + DRAIN_TIMEOUT_S, f'lag not drained: {samples[-5:]}'
      time.sleep(1)
    producer_output = producer.stdout.read().decode()
    assert producer.returncode == 0, producer_output
  finally:
    if starved:
      starved.stop()
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
