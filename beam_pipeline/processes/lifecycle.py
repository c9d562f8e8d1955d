"""Starting, stopping and reporting on a local service (a JvmService or alike), one line each."""

import time
from typing import List, Optional


def already_running_line(service) -> Optional[str]:
  """If the service runs, waits until it answers and says so; None when it does not run."""
  pid = service.process.pid()
  if pid is None:
    return None
  service.process.wait_until_ready(service.is_ready, service.start_timeout_s)
  return f'{service.instance}: already running (pid {pid}) on {service.address}'


def answered_line(service, pid: int, started: float) -> str:
  """Waits until a service started at ``started`` (monotonic time) answers; says how long that took."""
  service.process.wait_until_ready(service.is_ready, service.start_timeout_s, poll_s=0.5)
  return (f'{service.instance}: started (pid {pid}) on {service.address}, '
          f'answered after {time.monotonic() - started:.1f}s')


def ensure_running_line(service) -> str:
  """Starts the service unless it runs; waits until it answers either way."""
  running = already_running_line(service)
  if running:
    return running
  started = time.monotonic()
  return answered_line(service, service.start(), started)


def stop_line(service) -> str:
  """Stops a service; says whether it was running."""
  return f'{service.instance}: {"stopped" if service.process.stop() else "was not running"}'


def status_lines(services) -> List[str]:
  """One line per service: running or not, where, whether it answers, where it logs."""
  lines = []
  for service in services:
    pid = service.process.pid()
    if pid is None:
      lines.append(f'{service.instance}: not running')
    else:
      state = 'answering' if service.is_ready() else 'NOT answering'
      lines.append(f'{service.instance}: running (pid {pid}) on {service.address}, {state}; '
                   f'log {service.process.log_file}')
  return lines


def all_ready(services) -> bool:
  """Whether every service runs and answers."""
  return all(service.process.pid() is not None and service.is_ready() for service in services)
