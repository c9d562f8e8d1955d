"""The Flink session cluster for development (``./run_local.sh flink-up``): a JobManager, TaskManagers
(``FLINK_TASKMANAGERS``, default 1, each with ``FLINK_TASK_SLOTS`` slots, default one per core) and a pool of Python
SDK workers beside them, plus a job server for them, so that a job submitted there outlives the command that
submitted it. All run from the jars Maven resolves (``services/flink/pom.xml``).

Ports: ``FLINK_REST_PORT`` (8081, the JobManager's REST API and web UI), ``FLINK_RPC_PORT`` (6123),
``FLINK_WORKER_POOL_PORT`` (50000), ``FLINK_JOB_SERVER_PORT`` (8099, the session cluster's job server; it also
takes the two ports below it for its artifact and expansion services), ``FLINK_PROMETHEUS_PORT`` (9249, the
JobManager's Prometheus reporter; TaskManager n's is on the n-th port after it).
"""

import os
import shutil
import sys
import time
import urllib.error
from pathlib import Path
from typing import List

from beam_pipeline.processes.lifecycle import all_ready, ensure_running_line, status_lines, stop_line
from beam_pipeline.processes.local_process import LocalProcess
from beam_pipeline.processes.ports import port_from_environment, port_open
from beam_pipeline.runners.flink.job_server import FlinkJobServer
from beam_pipeline.runners.flink.options import RUNNER_ON_CLASSPATH_SETTING
from beam_pipeline.runners.flink.jvm import LOG4J2, FlinkJvm, prometheus_port, prometheus_reporter_settings
from beam_pipeline.runners.flink.rest import rest_get

_JOB_MANAGER_CLASS = 'org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint'
_TASK_MANAGER_CLASS = 'org.apache.flink.runtime.taskexecutor.TaskManagerRunner'


def task_slots() -> int:
  """Slots per TaskManager: ``FLINK_TASK_SLOTS``, by default one per core."""
  return int(os.environ.get('FLINK_TASK_SLOTS') or os.cpu_count() or 1)


def task_manager_count() -> int:
  """How many TaskManagers the session cluster runs: ``FLINK_TASKMANAGERS``, by default 1."""
  return max(int(os.environ.get('FLINK_TASKMANAGERS') or 1), 1)

# The TaskManager's memory, spelled out: Flink's start scripts would derive the JVM's limits from a total, and
# without them the TaskManager insists on every part. About 1.2 GB in all; the Python workers live outside it.
_TASK_MANAGER_MEMORY = {
    'taskmanager.memory.framework.heap.size': '128m',
    'taskmanager.memory.task.heap.size': '384m',
    'taskmanager.memory.managed.size': '64m',
    'taskmanager.memory.framework.off-heap.size': '128m',
    'taskmanager.memory.task.off-heap.size': '0m',
    # A batch job's data exchanges want a few hundred network buffers of 32 KB each at once, and several jobs
    # share the TaskManager (128 MB ran out with a bounded job at parallelism 2 beside others).
    'taskmanager.memory.network.min': '256m',
    'taskmanager.memory.network.max': '256m',
    'taskmanager.memory.jvm-metaspace.size': '256m',
    'taskmanager.memory.jvm-overhead.min': '192m',
    'taskmanager.memory.jvm-overhead.max': '192m',
}



def _session_cluster_settings(base: Path, rpc_port: int, rest_port: int) -> dict:
  """flink-conf.yaml of the session cluster: everything on loopback, checkpoints and temporary files under
  ``base``."""
  return {
      'jobmanager.rpc.address': '127.0.0.1',
      'jobmanager.rpc.port': str(rpc_port),
      'jobmanager.bind-host': '127.0.0.1',
      'rest.address': '127.0.0.1',
      'rest.bind-address': '127.0.0.1',
      'rest.port': str(rest_port),
      'taskmanager.host': '127.0.0.1',
      'taskmanager.bind-host': '127.0.0.1',
      'taskmanager.numberOfTaskSlots': str(task_slots()),
      'taskmanager.cpu.cores': str(os.cpu_count() or 1),
      **_TASK_MANAGER_MEMORY,
      'parallelism.default': '1',
      # Each process overrides the port on its command line (-D): the JobManager's and the TaskManager's differ.
      **prometheus_reporter_settings(str(prometheus_port())),
      # No restart strategy is named: a batch job is then not restarted (a restarted batch region would count
      # again what it had written), and streaming jobs bring their own (runners/flink/runner.py).
      # Checkpoints on disk, so that a restarted job resumes from the last one.
      'state.checkpoints.dir': (base / 'checkpoints').as_uri(),
      # The job server runs from the same jars: its jobs need not upload them (runners/flink/runner.py).
      RUNNER_ON_CLASSPATH_SETTING: 'true',
      'web.tmpdir': str(base / 'web'),
      'io.tmp.dirs': str(base / 'tmp'),
  }


class FlinkJobManager(FlinkJvm):
  """The session cluster's JobManager; its REST API (and web UI) is on ``port``."""

  start_timeout_s = 120
  heap = '512m'

  def __init__(self, home: Path, rest_port: int, rpc_port: int, conf_dir: Path):
    super().__init__(home, rest_port, instance='flink-jobmanager')
    self.rpc_port = rpc_port
    self.conf_dir = conf_dir
    self.prometheus_port = prometheus_port()

  def start(self) -> int:
    return self.process.start(
        self._java_command(_JOB_MANAGER_CLASS, '--configDir', str(self.conf_dir),
                           f'-Dmetrics.reporter.prom.port={self.prometheus_port}'),
        cwd=self.base)

  def is_ready(self) -> bool:
    try:
      rest_get(self.address, '/overview', timeout_s=2)
      return True
    except (OSError, urllib.error.URLError, ValueError):
      return False


class FlinkTaskManager(FlinkJvm):
  """One of the session cluster's TaskManagers (``number`` from 1); ready once the JobManager counts its slots."""

  start_timeout_s = 120
  heap = '512m'  # framework + task heap

  def __init__(self, home: Path, rest_port: int, conf_dir: Path, number: int = 1):
    super().__init__(home, rest_port, instance='flink-taskmanager' if number == 1 else f'flink-taskmanager-{number}')
    self.conf_dir = conf_dir
    self.number = number
    self.prometheus_port = prometheus_port() + number

  def start(self) -> int:
    # Direct memory: framework and task off-heap plus the network buffers.
    flags = ('-XX:MaxDirectMemorySize=384m', '-XX:MaxMetaspaceSize=256m')
    return self.process.start(
        self._java_command(_TASK_MANAGER_CLASS, '--configDir', str(self.conf_dir),
                           f'-Dmetrics.reporter.prom.port={self.prometheus_port}', jvm_flags=flags),
        cwd=self.base)

  def is_ready(self) -> bool:
    try:
      return rest_get(self.address, '/overview', timeout_s=2).get('slots-total', 0) >= task_slots() * self.number
    except (OSError, urllib.error.URLError, ValueError):
      return False


class SdkWorkerPool:
  """The project's Python worker pool (``runners/flink/worker_pool.py``): the TaskManager asks it for SDK workers
  (``--environment_type EXTERNAL``), each a process of this project's Python kept ready ahead, so the job's Python
  code runs beside the TaskManager and not in the command that submitted the job."""

  name = 'flink-sdk-worker-pool'
  start_timeout_s = 60

  def __init__(self, home: Path, port: int):
    self.home = home
    self.port = port
    self.instance = self.name
    self.base = home / '.local' / self.name
    self.process = LocalProcess(self.name, home / '.local')

  @property
  def address(self) -> str:
    return f'localhost:{self.port}'

  def start(self) -> int:
    return self.process.start(
        [sys.executable, '-m', 'beam_pipeline.runners.flink.worker_pool', f'--service_port={self.port}'],
        env={**os.environ, 'PYTHONUNBUFFERED': '1'}, cwd=self.home)

  def is_ready(self) -> bool:
    return port_open(self.port)


class FlinkSessionCluster:
  """A JobManager, a TaskManager, the SDK worker pool and a job server for them, as local processes on loopback."""

  def __init__(self, home: Path):
    self.home = home
    self.base = home / '.local' / 'flink-cluster'
    self.conf_dir = self.base / 'conf'
    self.rest_port = port_from_environment('FLINK_REST_PORT', 8081)
    self.rpc_port = port_from_environment('FLINK_RPC_PORT', 6123)
    self.job_manager = FlinkJobManager(home, self.rest_port, self.rpc_port, self.conf_dir)
    self.task_managers = [FlinkTaskManager(home, self.rest_port, self.conf_dir, number)
                          for number in range(1, task_manager_count() + 1)]
    self.task_manager = self.task_managers[0]
    self.worker_pool = SdkWorkerPool(home, port_from_environment('FLINK_WORKER_POOL_PORT', 50000))
    self.job_server = FlinkJobServer(home, self.master, port=port_from_environment('FLINK_JOB_SERVER_PORT', 8099))

  @property
  def master(self) -> str:
    return f'localhost:{self.rest_port}'

  @property
  def services(self):
    return (self.job_manager, *self.task_managers, self.worker_pool, self.job_server)

  def _write_config(self) -> None:
    self.conf_dir.mkdir(parents=True, exist_ok=True)
    settings = _session_cluster_settings(self.base, self.rpc_port, self.rest_port)
    (self.conf_dir / 'flink-conf.yaml').write_text(''.join(f'{k}: {v}\n' for k, v in settings.items()))
    (self.conf_dir / 'log4j2.properties').write_text(LOG4J2)

  def up(self) -> List[str]:
    report = []
    started = time.monotonic()
    if self.job_manager.resolve_jars():
      report.append(f'flink: resolved jars in {time.monotonic() - started:.1f}s')
    self._write_config()
    report += [ensure_running_line(service) for service in self.services]
    report.append(f'Flink web UI and REST API: http://{self.master}')
    task_managers = ', '.join(f'http://127.0.0.1:{tm.prometheus_port}/metrics' for tm in self.task_managers)
    report.append(f'Flink metrics for Prometheus: http://127.0.0.1:{self.job_manager.prometheus_port}/metrics '
                  f'(JobManager), {task_managers} (TaskManager{"s" if len(self.task_managers) > 1 else ""})')
    return report

  def _other_processes(self) -> List[LocalProcess]:
    """Job servers started for runs (embedded Flink, other masters), which run until flink-down too, and
    TaskManagers beyond those FLINK_TASKMANAGERS now asks for (started when it asked for more)."""
    ours = {service.process.pid_file.name for service in self.services}
    return [LocalProcess(pid_file.stem, self.home / '.local')
            for pattern in ('flink-job-server-*.pid', 'flink-taskmanager-*.pid')
            for pid_file in sorted((self.home / '.local' / 'run').glob(pattern)) if pid_file.name not in ours]

  def down(self, wipe: bool = False) -> List[str]:
    """Stops the session cluster, and every job server a run started."""
    report = [stop_line(service) for service in reversed(self.services)]
    for process in self._other_processes():
      if process.stop():
        report.append(f'{process.name}: stopped')
    if wipe and self.base.exists():
      shutil.rmtree(self.base)
      report.append(f'flink-cluster: checkpoints and configuration removed ({self.base})')
    return report

  def status(self) -> List[str]:
    lines = status_lines(self.services)
    for process in self._other_processes():
      pid = process.pid()
      if pid is not None:
        lines.append(f'{process.name}: running (pid {pid}); log {process.log_file}')
    return lines

  def all_ready(self) -> bool:
    return all_ready(self.services)
