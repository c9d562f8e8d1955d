"""Running the job in a test: its arguments, a bounded run in this process, a streaming run as a child process
followed until it has caught up."""

import json
import os
import signal
import subprocess
import sys
import time
from typing import List

from beam_pipeline import REPO_ROOT
from beam_pipeline.launch.run import run
from beam_pipeline.testing.counters import read_counters
from beam_pipeline.testing.topics import TopicOffsets

_CATCH_UP_TIMEOUT_S = 120
_UNTIL_NOW_S = 400_000_000  # a lateness that reaches from February 2017 to now


def job_args(bootstrap_servers: str, topic: str, keyspace: str, cassandra_port: int, *extra: str) -> List[str]:
  return ['--bootstrap_servers', bootstrap_servers, '--topic', topic, '--keyspace', keyspace,
          '--cassandra_hosts', '127.0.0.1', '--cassandra_port', str(cassandra_port),
          '--consumer_group', f'{topic}-group', *extra]


def run_bounded(*args: str):
  """Runs the bounded job in this process on the local runner; returns its summary."""
  _, summary = run([*args, '--bounded'])
  return summary


def child_processes(pid: int, command_part: bytes = b'') -> List[int]:
  """The processes whose parent is ``pid`` and whose command line holds ``command_part`` (read from /proc)."""
  children = []
  for task in os.listdir(f'/proc/{pid}/task'):
    try:
      with open(f'/proc/{pid}/task/{task}/children') as listed:
        children.extend(int(child) for child in listed.read().split())
    except FileNotFoundError:
      continue  # the thread ended meanwhile
  return [child for child in children if command_part in command_line(child)]


def command_line(pid: int) -> bytes:
  """The process's command line, its arguments separated by NUL bytes (empty once it has ended)."""
  try:
    with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:
      return cmdline.read()
  except FileNotFoundError:
    return b''


def rss_mb(pid: int) -> float:
  """A process's resident memory."""
  with open(f'/proc/{pid}/status') as status:
    for line in status:
      if line.startswith('VmRSS:'):
        return int(line.split()[1]) / 1024
  raise AssertionError(f'no VmRSS for pid {pid}')


def start_streaming_job(args, log_path):
  log = open(log_path, 'ab')
  return subprocess.Popen([sys.executable, '-m', 'beam_pipeline', *args], stdout=log, stderr=subprocess.STDOUT,
                          cwd=REPO_ROOT, env={**os.environ, 'PYTHONUNBUFFERED': '1'})


def wait_until_caught_up(job, session, keyspace, want_counters, bootstrap_servers, group, topic, log_path,
                         timeout_s: float = _CATCH_UP_TIMEOUT_S):
  """Until the counters equal what was produced and the group has committed everything; fails on timeout."""
  def alive():
    assert job.poll() is None, f'the streaming job exited early:\n{open(log_path).read()[-3000:]}'
  if not wait_until_exact_and_committed(session, keyspace, want_counters, bootstrap_servers, group, topic,
                                        timeout_s, alive):
    raise AssertionError(f'not caught up after {timeout_s}s:\n{open(log_path).read()[-3000:]}')


def wait_until_exact_and_committed(session, keyspace, want_counters, bootstrap_servers, group, topic,
                                   timeout_s: float, check=lambda: None) -> bool:
  """Whether the counters came to equal ``want_counters`` and the group to have committed the whole topic within
  ``timeout_s``; ``check`` runs at every look (to fail early, when a job has died)."""
  deadline = time.monotonic() + timeout_s
  with TopicOffsets(bootstrap_servers, topic, group) as offsets:
    while time.monotonic() < deadline:
      check()
      if read_counters(session, keyspace) == want_counters and offsets.all_committed():
        return True
      time.sleep(1)
  return False


def wait_until_committed(job, bootstrap_servers, group, topic, log_path, timeout_s: float = 180):
  """Until the group has committed the whole topic (whatever the counters say); fails on timeout or exit."""
  deadline = time.monotonic() + timeout_s
  with TopicOffsets(bootstrap_servers, topic, group) as offsets:
    while not offsets.all_committed():
      assert time.monotonic() < deadline and job.poll() is None, open(log_path, errors='replace').read()[-3000:]
      time.sleep(0.5)


def stop_streaming_job(job, timeout_s: float = 60):
  """SIGTERM, as a user stops it; a job still running after ``timeout_s`` is killed, and the test fails."""
  job.send_signal(signal.SIGTERM)
  try:
    job.wait(timeout=timeout_s)
  except subprocess.TimeoutExpired:
    job.kill()
    job.wait()
    raise AssertionError(f'the streaming job did not stop within {timeout_s:.0f}s of SIGTERM (killed)') from None


def repair_uncertain(*args: str) -> dict:
  """Runs ``./run_backfill.sh --dates uncertain --mode reconcile`` with the job's ``args``; returns its JSON line.
  The tests' messages carry today's Kafka timestamps and February 2017 dates: the window runs until now."""
  finished = subprocess.run([str(REPO_ROOT / 'run_backfill.sh'), '--dates', 'uncertain', '--mode', 'reconcile',
                             '--lateness_s', str(_UNTIL_NOW_S), *args], capture_output=True, text=True, timeout=300)
  assert finished.returncode == 0, finished.stderr[-3000:]
  line, = finished.stdout.strip().splitlines()
  return json.loads(line)
