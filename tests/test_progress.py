"""Long runs show how far they are: a bounded run its messages read of the total, rate and time left (a bar on a
terminal, log lines otherwise); a streaming reader its rate and lag per partition."""

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

from beam_pipeline import REPO_ROOT
from beam_pipeline.launch.progress import ReadProgress
from beam_pipeline.testing.datasets import produce_dataset, TEST_PARTITIONS
from beam_pipeline.testing.jobs import job_args, start_streaming_job, stop_streaming_job, wait_until_committed

_PROGRESS_LINE = re.compile(r'progress: read ([\d,]+) of ([\d,]+) \((\d+)%\), ([\d,]+) msgs/s, about ([\d,]+)s left')


def _bounded_command(*args: str):
  return [sys.executable, '-m', 'beam_pipeline', '--bounded', *args]


def test_a_bounded_run_without_a_terminal_logs_progress_lines_up_to_the_planned_total(
    bootstrap_servers, topic, keyspace, cassandra_port):
  expected = produce_dataset(bootstrap_servers, topic, count=6000, keys=50, seed=13)

  result = subprocess.run(
      _bounded_command(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_records_per_bundle',
                                 '300', '--progress_interval_s', '0.01')),
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)

  assert result.returncode == 0, result.stderr[-3000:]
  lines = [_PROGRESS_LINE.search(line) for line in result.stderr.splitlines()]
  progress = [(int(m[1].replace(',', '')), int(m[2].replace(',', ''))) for m in lines if m]
  assert len(progress) >= 3, result.stderr[-3000:]
  assert all(total == expected.messages for _, total in progress)
  read = [count for count, _ in progress]
  assert read == sorted(read) and read[-1] <= expected.messages and read[0] < expected.messages


def test_a_bounded_run_on_a_terminal_draws_a_bar_that_reaches_the_total(
    bootstrap_servers, topic, keyspace, cassandra_port):
  produce_dataset(bootstrap_servers, topic, count=3000, keys=50, seed=14)
  leader, follower = pty.openpty()
  fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 120, 0, 0))
  job = subprocess.Popen(
      _bounded_command(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_records_per_bundle',
                                 '300')),
      cwd=REPO_ROOT, stdin=follower, stdout=follower, stderr=follower)
  os.close(follower)
  screen, deadline = b'', time.monotonic() + 300
  while time.monotonic() < deadline:
    if not select.select([leader], [], [], 1)[0]:
      continue
    try:
      chunk = os.read(leader, 65536)
    except OSError:  # the terminal closed with the job
      break
    if not chunk:
      break
    screen += chunk
  assert job.wait(timeout=10) == 0
  text = screen.decode('utf-8', errors='replace')
  assert re.search(r'read: +100%\|.*\| 3\.00k/3\.00k \[', text), text[-2000:]
  assert 'summary: read 3000' in text


def test_a_streaming_reader_logs_rate_and_lag_per_partition(bootstrap_servers, topic, keyspace, cassandra_port,
                                                            tmp_path):
  produce_dataset(bootstrap_servers, topic, count=4000, keys=50, seed=15)
  log = tmp_path / 'streaming.log'
  job = start_streaming_job(job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_bundle_seconds',
                                     '0.5', '--max_records_per_bundle', '200', '--progress_interval_s', '1'), log)
  try:
    wait_until_committed(job, bootstrap_servers, f'{topic}-group', topic, log)
    time.sleep(2)  # one more report, caught up
  finally:
    stop_streaming_job(job)
  reports = re.findall(rf'{topic}: (partition \d+: [\d,]+ msgs/s, lag [\d,]+(?:; )?)+', log.read_text())
  assert reports, log.read_text()[-3000:]
  partitions_reported = set(re.findall(r'partition (\d+): [\d,]+ msgs/s, lag', log.read_text()))
  assert partitions_reported == {str(p) for p in range(TEST_PARTITIONS)}
  assert re.search(r'partition \d+: [\d,]+ msgs/s, lag 0\b', log.read_text())


def test_the_progress_line_says_read_of_total_rate_and_time_left():
  with open(os.devnull, 'w', encoding='utf-8') as nowhere:
    progress = ReadProgress(total=1000, interval_s=60, stream=nowhere)
    progress.add(250)
    match = _PROGRESS_LINE.fullmatch(progress.line(elapsed_s=5.0))
    progress.close()

  assert match and match.groups() == ('250', '1,000', '25', '50', '15')
