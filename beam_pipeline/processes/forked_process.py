"""Child processes forked from this one, handled as ``subprocess.Popen`` handles a started one.

A forked child begins with every module its parent has imported: a local run's worker process forked from the
launcher (runners/local/worker_pool.py) starts in milliseconds, where a new interpreter spends about 0.8 s of CPU
importing Beam and the clients once more, on the cores the launcher is importing them on.

Forking is safe only while the parent has no other thread that could hold a lock the child would inherit held,
and no connection the child would share: ``can_fork`` says whether this process is still in that state. Native threads of
libraries that prepare for a fork themselves (OpenBLAS's, which numpy starts at import) are not Python's and do not
count.
"""

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import weakref
from typing import Callable, Optional

_WAIT_POLL_S = 0.02

# The pipe ends this process writes its forked children's stdin through: a later child closes its copies, so that
# each child's stdin ends when the parent closes its end or exits.
_stdins_of_children = weakref.WeakSet()


def can_fork() -> bool:
  """Whether this process may fork a child that runs Python: on Linux, with no Python thread but the main one."""
  return sys.platform.startswith('linux') and threading.active_count() == 1


class ForkedProcess:
  """A child forked to run ``child_main()``, its stdin a pipe from this process (``stdin``) and its stdout this
  process's stderr, as ``Popen(stdin=PIPE, stdout=sys.stderr.fileno())`` gives; the child ends with
  ``child_main``'s return (exit 0), its SystemExit's code, or 1 after printing what it raised. It offers the parts
  of ``subprocess.Popen`` a worker pool uses: ``pid``, ``stdin``, ``poll``, ``wait``, ``terminate``, ``kill``."""

  def __init__(self, child_main: Callable[[], None]):
    read_end, write_end = os.pipe()
    # Whatever the parent has buffered would otherwise be written a second time, by the child.
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
      os.close(write_end)
      _run_child(child_main, read_end)
    os.close(read_end)
    self.pid = pid
    # Unbuffered: a later sibling closes its copy without writing anything this process had buffered.
    self.stdin = os.fdopen(write_end, 'wb', buffering=0)
    self.returncode: Optional[int] = None
    self._reaping = threading.Lock()  # a pool polls and stops its workers from several threads
    _stdins_of_children.add(self.stdin)

  def poll(self) -> Optional[int]:
    return self._reap(os.WNOHANG)

  def wait(self, timeout: Optional[float] = None) -> int:
    """The child's exit code, once it has ended; raises subprocess.TimeoutExpired after ``timeout`` seconds."""
    if timeout is None:
      return self._reap(0)
    deadline = time.monotonic() + timeout
    while self.poll() is None:
      if time.monotonic() >= deadline:
        raise subprocess.TimeoutExpired(f'forked process {self.pid}', timeout)
      time.sleep(_WAIT_POLL_S)
    return self.returncode

  def _reap(self, options: int) -> Optional[int]:
    # A poll while another thread waits for the child answers at once, as Popen's does.
    if not self._reaping.acquire(blocking=not options & os.WNOHANG):
      return self.returncode
    try:
      if self.returncode is None:
        try:
          pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:
          pid, status = self.pid, 0  # reaped by someone else (SIGCHLD ignored): its code is lost, as Popen has it
        if pid:
          self.returncode = os.waitstatus_to_exitcode(status)
      return self.returncode
    finally:
      self._reaping.release()

  def send_signal(self, signal_number: int) -> None:
    if self.poll() is None:
      os.kill(self.pid, signal_number)

  def terminate(self) -> None:
    self.send_signal(signal.SIGTERM)

  def kill(self) -> None:
    self.send_signal(signal.SIGKILL)


def _run_child(child_main: Callable[[], None], stdin_fd: int) -> None:
  """The child's whole life: it never returns into the code that forked it."""
  exit_code = 1
  try:
    os.dup2(stdin_fd, 0)
    os.close(stdin_fd)
    os.dup2(2, 1)
    for sibling_stdin in list(_stdins_of_children):
      sibling_stdin.close()
    # The standard streams of a started process, whatever the parent had put in their place.
    # pylint: disable=consider-using-with
    sys.stdin = open(0, 'r', closefd=False)
    sys.stdout = open(1, 'w', buffering=1, closefd=False)
    sys.stderr = open(2, 'w', buffering=1, errors='backslashreplace', closefd=False)
    child_main()
    exit_code = 0
  except SystemExit as exit_request:
    # As the interpreter ends on it: no code is 0, a message is printed and gives 1.
    exit_code = 0 if exit_request.code is None else exit_request.code
    if not isinstance(exit_code, int):
      print(exit_code, file=sys.stderr)
      exit_code = 1
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
  finally:
    try:
      sys.stdout.flush()
      sys.stderr.flush()
    finally:
      os._exit(exit_code)  # pylint: disable=protected-access  # the parent's exit handlers are not the child's
