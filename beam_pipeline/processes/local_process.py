"""Background JVM processes owned by this project: start, find, wait for, stop.

Each service records its pid in ``.local/run/<name>.pid`` and logs to ``.local/logs/<name>.log``; nothing
else on the machine is ever signalled.
"""

import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

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
      pid = int(self.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
      return None
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      self.pid_file.unlink(missing_ok=True)
      return None
    if _is_zombie(pid):
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
    self.pid_file.write_text(f'{process.pid}\n')
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


def _is_zombie(pid: int) -> bool:
  # A child of ours that exited but was not reaped still answers kill(pid, 0).
  try:
    with open(f'/proc/{pid}/stat') as stat:
      return stat.read().rsplit(')', 1)[1].split()[0] == 'Z'
  except (FileNotFoundError, IndexError):
    return False
