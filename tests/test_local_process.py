"""A service's pid file names the process it started, and only that process is reported or signalled."""

import subprocess
import sys
import time

from beam_pipeline.processes.local_process import LocalProcess

_SLEEPER = [sys.executable, '-c', 'import time; time.sleep(60)']


def test_a_started_process_is_found_and_stopped(tmp_path):
  service = LocalProcess('sleeper', tmp_path)
  pid = service.start(_SLEEPER)
  assert service.pid() == pid
  assert service.stop(timeout_s=10)
  assert service.pid() is None and not service.pid_file.exists()


def test_a_pid_reused_by_another_process_is_neither_reported_nor_signalled(tmp_path):
  service = LocalProcess('sleeper', tmp_path)
  service.start(_SLEEPER)
  unused_pid, started = service.pid_file.read_text().split()
  service.stop(timeout_s=10)
  time.sleep(0.05)  # a later start time, in clock ticks
  stranger = subprocess.Popen(_SLEEPER)
  try:
    # As if the system had handed the service's pid to another process: the file names it, with the start time
    # of the process the service started.
    service.pid_file.write_text(f'{stranger.pid} {started}\n')
    assert service.pid() is None
    assert not service.stop(timeout_s=1)
    assert stranger.poll() is None, 'the other process was signalled'
  finally:
    stranger.kill()
    stranger.wait()
