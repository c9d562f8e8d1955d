"""Background JVM processes owned by this project: start, find, wait for, stop.

Each service records its pid in ``.local/run/<name>.pid`` and logs to ``.local/logs/<name>.log``. With the pid goes
the process's start time from ``/proc/<pid>/stat``, checked just before each signal: a pid whose process started at
another time was reused by something else, which is then neither reported nor signalled. Where ``/proc`` is missing,
and for a pid file written without a start time, the pid alone is trusted.
"""

import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

_LOGGER = logging.getLogger(__name__)


class ServiceStartError(RuntimeError):
  """A service did not come up; the message carries the end of its log."""


class LocalProcess:
  """One long-running process identified by a pid file under the project's ``.local/`` folder."""

  def __init__(self, name: str, local_dir: Path):
    self.name = name
    self.pid_file = local_dir / 'run' / f'{name}.pid'
    self.log_file = local_dir / 'logs' / f'{name}.log'

  def pid(self) -> Optional[int]:
    """The recorded pid if that process is still alive, else None (a stale pid file is removed)."""
    try:
      fields = self.pid_file.read_text().split()
      pid = int(fields[0])
      started = int(fields[1]) if len(fields) > 1 else None
    except (FileNotFoundError, ValueError, IndexError):
      return None
    try:
      os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # another user's process cannot be the one we started
      self.pid_file.unlink(missing_ok=True)
      return None
    stat = _stat(pid)
    if stat is not None and (stat[0] == 'Z' or (started is not None and int(stat[19]) != started)):
      self.pid_file.unlink(missing_ok=True)
      return None
    return pid

  def start(self, command: Sequence[str], env: Optional[dict] = None, cwd: Optional[Path] = None) -> int:
    self.pid_file.parent.mkdir(parents=True, exist_ok=True)
    self.log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(self.log_file, 'ab') as log:
      log.write(f'\n===== {time.strftime("%Y-%m-%d %H:%M:%S")} starting: {" ".join(command)}\n'.encode())
      log.flush()
      # A new session so that the service outlives the shell that started it and ignores its Ctrl-C.
      process = subprocess.Popen(
          list(command), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
          env=env, cwd=cwd, start_new_session=True)
    # Our unreaped child keeps its /proc entry, so its start time can be read even if it has already exited.
    stat = _stat(process.pid)
    started = f' {stat[19]}' if stat is not None else ''
    self.pid_file.write_text(f'{process.pid}{started}\n')
    return process.pid

  def wait_until_ready(self, is_ready: Callable[[], bool], timeout_s: float, poll_s: float = 1.0) -> float:
    """Polls ``is_ready`` until it is true; returns the seconds waited.

    Raises ServiceStartError with the log's last lines if the process dies or the time runs out.
    """
    started = time.monotonic()
    while True:
      if self.pid() is None:
        raise ServiceStartError(f'{self.name} exited during start-up.\n{self.log_tail()}')
      if is_ready():
        return time.monotonic() - started
      if time.monotonic() - started > timeout_s:
        raise ServiceStartError(
            f'{self.name} did not answer within {timeout_s:.0f}s (pid {self.pid()}).\n{self.log_tail()}')
      time.sleep(poll_s)

  def stop(self, timeout_s: float = 60.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns whether a process was running."""
    pid = self.pid()
    if pid is None:
      return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while self.pid() is not None and time.monotonic() < deadline:
      time.sleep(0.2)
    if self.pid() is not None:
      _LOGGER.warning('%s (pid %d) ignored SIGTERM for %.0fs; killing it', self.name, pid, timeout_s)
      os.kill(pid, signal.SIGKILL)
      while self.pid() is not None:
        time.sleep(0.1)
    self.pid_file.unlink(missing_ok=True)
    return True

  def log_tail(self, lines: int = 40) -> str:
    try:
      text = self.log_file.read_text(errors='replace').splitlines()
    except FileNotFoundError:
      return f'(no log at {self.log_file})'
    return f'--- last {min(lines, len(text))} lines of {self.log_file} ---\n' + '\n'.join(text[-lines:])


def _stat(pid: int) -> Optional[List[str]]:
  """The fields of ``/proc/<pid>/stat`` after the command name: [0] is the state ('Z' for a child of ours that exited
  but was not reaped, which still answers kill(pid, 0)), [19] the start time in clock ticks since boot. None without
  /proc."""
  try:
    with open(f'/proc/{pid}/stat') as stat:
      # The command name, in parentheses, may itself hold spaces and parentheses.
      fields = stat.read().rsplit(')', 1)[1].split()
  except (FileNotFoundError, IndexError):
    return None
  return fields if len(fields) > 19 else None
