"""Flink for this project, as local processes run from the jars Maven resolves (``services/flink/pom.xml``):

- a Beam job server (``FlinkJobServerDriver``) per Flink master, which turns a portable pipeline into a Flink job:
  for ``[local]`` it runs the job on a Flink mini cluster inside itself (embedded Flink), for ``host:port`` it
  submits it to that cluster;
- a session cluster (``./run_local.sh flink-up``): a JobManager, a TaskManager and a pool of Python SDK workers
  beside it, so that a job submitted there outlives the command that submitted it.

Ports: ``FLINK_REST_PORT`` (8081, the JobManager's REST API and web UI), ``FLINK_RPC_PORT`` (6123),
``FLINK_WORKER_POOL_PORT`` (50000), ``FLINK_JOB_SERVER_PORT`` (8099, the session cluster's job server; it also
takes the two ports below it for its artifact and expansion services). The embedded job server picks free ports
and records them; each embedded job's mini cluster serves Flink's REST API and web UI on a port of
``FLINK_EMBEDDED_REST_PORTS`` (8180-8199), which is also how a stopped run cancels its job.
"""

import json
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import List, Optional, Tuple

from beam_pipeline.local import jvm
from beam_pipeline.local.processes import LocalProcess
from beam_pipeline.local.stack import ensure_running_line, port_from_environment, status_lines, stop_line

EMBEDDED_MASTER = '[local]'
_SUPPORTED_JAVA = (17, 11)
_JOB_SERVER_CLASS = 'org.apache.beam.runners.flink.FlinkJobServerDriver'
_JOB_MANAGER_CLASS = 'org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint'
_TASK_MANAGER_CLASS = 'org.apache.flink.runtime.taskexecutor.TaskManagerRunner'
TASK_SLOTS = 4

# What Flink's own start scripts pass to a JVM of Java 11+ (Flink 1.19, env.java.opts.all): its serializers
# and network stack reach into these JDK packages.
_JAVA_MODULE_FLAGS = [
    '-XX:+IgnoreUnrecognizedVMOptions',
    *(f'--add-exports=java.base/{package}=ALL-UNNAMED' for package in ('sun.net.util',)),
    '--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED',
    '--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED',
    *(f'--add-opens=java.base/{package}=ALL-UNNAMED' for package in (
        'java.lang', 'java.net', 'java.io', 'java.nio', 'sun.nio.ch', 'java.lang.reflect', 'java.text',
        'java.time', 'java.util', 'java.util.concurrent', 'java.util.concurrent.atomic',
        'java.util.concurrent.locks')),
]

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} - %m%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# Per-checkpoint and per-bundle chatter would drown the lines that explain a failure.
logger.checkpoint.name = org.apache.flink.runtime.checkpoint
logger.checkpoint.level = WARN
logger.sdkharness.name = org.apache.beam.runners.fnexecution
logger.sdkharness.level = WARN
"""

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


def free_port() -> int:
  with socket.socket() as probe:
    probe.bind(('127.0.0.1', 0))
    return probe.getsockname()[1]


def _port_open(port: int) -> bool:
  try:
    with socket.create_connection(('127.0.0.1', port), timeout=1):
      return True
  except OSError:
    return False


def _grpc_ready(address: str, timeout_s: float = 2.0) -> bool:
  import grpc
  channel = grpc.insecure_channel(address)
  try:
    grpc.channel_ready_future(channel).result(timeout=timeout_s)
    return True
  except grpc.FutureTimeoutError:
    return False
  finally:
    channel.close()


def rest_get(rest_address: str, path: str, timeout_s: float = 5.0):
  """A JSON answer of Flink's REST API at ``host:port``."""
  with urllib.request.urlopen(f'http://{rest_address}{path}', timeout=timeout_s) as response:
    return json.loads(response.read())


class _FlinkJvm(jvm.JvmService):
  """A JVM on the Flink classpath (.local/jars/flink)."""

  name = 'flink'
  heap = '512m'

  def _java_command(self, main_class: str, *args: str, jvm_flags: Tuple[str, ...] = ()) -> List[str]:
    java = jvm.find_java(_SUPPORTED_JAVA, 'Flink 1.19')
    self.base.mkdir(parents=True, exist_ok=True)
    (self.base / 'log4j2.properties').write_text(_LOG4J2)
    return [java, f'-Xmx{self.heap}', *jvm_flags, *_JAVA_MODULE_FLAGS,
            f'-Dlog4j.configurationFile={self.base / "log4j2.properties"}',
            f'-Dlog.file={self.process.log_file}',
            '-cp', jvm.classpath(self.jars_dir), main_class, *args]


class FlinkJobServer(_FlinkJvm):
  """Beam's job service for one Flink master; the Python SDK submits portable pipelines to it."""

  start_timeout_s = 120
  heap = '1g'  # the embedded mini cluster runs the job's Java side inside this JVM

  def __init__(self, home: Path, flink_master: str = EMBEDDED_MASTER, port: Optional[int] = None):
    """``port`` None: the job server picks free ports at start and records them (used for the embedded one)."""
    super().__init__(home, port or 0, instance=_job_server_instance(flink_master))
    self.flink_master = flink_master
    self._fixed_port = port
    self._ports_file = self.base / 'ports.json'
    if not port:
      self.port = self._recorded_ports()[0]

  def _recorded_ports(self) -> Tuple[int, int, int]:
    try:
      recorded = json.loads(self._ports_file.read_text())
      return recorded['job'], recorded['artifact'], recorded['expansion']
    except (FileNotFoundError, ValueError, KeyError):
      return 0, 0, 0

  @property
  def endpoint(self) -> str:
    return f'localhost:{self.port}'

  def start(self) -> int:
    if self._fixed_port:
      ports = (self._fixed_port, self._fixed_port - 1, self._fixed_port - 2)
    else:
      ports = (free_port(), free_port(), free_port())
    self.base.mkdir(parents=True, exist_ok=True)
    self._ports_file.write_text(json.dumps(dict(zip(('job', 'artifact', 'expansion'), ports))))
    self.port = ports[0]
    artifacts = self.base / 'artifacts'
    artifacts.mkdir(exist_ok=True)
    flags = []
    if self.flink_master == EMBEDDED_MASTER:
      flags.append(f'--flink-conf-dir={self._write_embedded_config()}')
    command = self._java_command(
        _JOB_SERVER_CLASS, f'--flink-master={self.flink_master}', '--job-host=localhost',
        f'--job-port={ports[0]}', f'--artifact-port={ports[1]}', f'--expansion-port={ports[2]}',
        f'--artifacts-dir={artifacts}', *flags)
    return self.process.start(command, cwd=self.base)

  def _write_embedded_config(self) -> Path:
    conf_dir = self.base / 'conf'
    conf_dir.mkdir(parents=True, exist_ok=True)
    # Every embedded job runs on a mini cluster of its own; their REST APIs take ports from a known range, so that
    # a job can be found (and cancelled) there.
    (conf_dir / 'flink-conf.yaml').write_text(
        'rest.address: 127.0.0.1\nrest.bind-address: 127.0.0.1\n'
        f'rest.bind-port: {embedded_rest_ports_setting()}\n')
    return conf_dir

  def is_ready(self) -> bool:
    return bool(self.port) and _grpc_ready(self.endpoint)

  def ensure_running(self) -> str:
    """Starts this job server unless it runs already (resolving the jars first if needed); returns a line saying
    what it did."""
    started = time.monotonic()
    resolved = self.resolve_jars()
    note = f'resolved the Flink jars in {time.monotonic() - started:.1f}s; ' if resolved else ''
    return note + ensure_running_line(self)


def embedded_rest_ports_setting() -> str:
  ports = os.environ.get('FLINK_EMBEDDED_REST_PORTS', '8180-8199')
  first, _, last = ports.partition('-')
  if not (first.isdigit() and (not last or last.isdigit())):
    raise ValueError(f'FLINK_EMBEDDED_REST_PORTS={ports!r} is not a port or a port range (8180-8199)')
  return ports


def embedded_rest_addresses() -> List[str]:
  first, _, last = embedded_rest_ports_setting().partition('-')
  return [f'127.0.0.1:{port}' for port in range(int(first), int(last or first) + 1)]


def cancel_flink_job(rest_addresses: List[str], job_name: str) -> List[str]:
  """Cancels the running Flink jobs named ``job_name`` behind any of these REST addresses; returns their ids.

  Beam's job service cannot do it: its cancel only stops waiting for the job, which Flink then runs on (and, its
  Python workers gone, restarts forever)."""
  cancelled = []
  for address in rest_addresses:
    if not _port_open(int(address.rsplit(':', 1)[1])):
      continue
    try:
      jobs = rest_get(address, '/jobs/overview')['jobs']
    except (OSError, urllib.error.URLError, ValueError, KeyError):
      continue
    for job in jobs:
      if job['name'] == job_name and job['state'] not in ('FINISHED', 'CANCELED', 'FAILED'):
        request = urllib.request.Request(f'http://{address}/jobs/{job["jid"]}?mode=cancel', method='PATCH')
        with urllib.request.urlopen(request, timeout=10):
          cancelled.append(job['jid'])
  return cancelled


def _job_server_instance(flink_master: str) -> str:
  if flink_master == EMBEDDED_MASTER:
    return 'flink-job-server-embedded'
  address = flink_master.split('://', 1)[-1].rstrip('/')
  return 'flink-job-server-' + ''.join(c if c.isalnum() else '-' for c in address)


class FlinkJobManager(_FlinkJvm):
  """The session cluster's JobManager; its REST API (and web UI) is on ``port``."""

  start_timeout_s = 120
  heap = '512m'

  def __init__(self, home: Path, rest_port: int, rpc_port: int, conf_dir: Path):
    super().__init__(home, rest_port, instance='flink-jobmanager')
    self.rpc_port = rpc_port
    self.conf_dir = conf_dir

  def start(self) -> int:
    return self.process.start(self._java_command(_JOB_MANAGER_CLASS, '--configDir', str(self.conf_dir)),
                              cwd=self.base)

  def is_ready(self) -> bool:
    try:
      rest_get(self.address, '/overview', timeout_s=2)
      return True
    except (OSError, urllib.error.URLError, ValueError):
      return False


class FlinkTaskManager(_FlinkJvm):
  """The session cluster's TaskManager; ready once the JobManager counts its slots."""

  start_timeout_s = 120
  heap = '512m'  # framework + task heap

  def __init__(self, home: Path, rest_port: int, conf_dir: Path):
    super().__init__(home, rest_port, instance='flink-taskmanager')
    self.conf_dir = conf_dir

  def start(self) -> int:
    # Direct memory: framework and task off-heap plus the network buffers.
    flags = ('-XX:MaxDirectMemorySize=384m', '-XX:MaxMetaspaceSize=256m')
    return self.process.start(
        self._java_command(_TASK_MANAGER_CLASS, '--configDir', str(self.conf_dir), jvm_flags=flags),
        cwd=self.base)

  def is_ready(self) -> bool:
    try:
      return rest_get(self.address, '/overview', timeout_s=2).get('slots-total', 0) >= TASK_SLOTS
    except (OSError, urllib.error.URLError, ValueError):
      return False


class SdkWorkerPool:
  """Beam's Python worker pool: the TaskManager asks it for SDK workers (``--environment_type EXTERNAL``), each a
  process of this project's Python, so the job's Python code runs beside the TaskManager and not in the command
  that submitted the job."""

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
    self.base.mkdir(parents=True, exist_ok=True)
    # The pool runs one executable per worker, with the worker's endpoints as flags: this project's worker entry
    # point (beam_pipeline/flink_worker.py) on this interpreter.
    worker = self.base / 'sdk-worker'
    worker.write_text(f'#!/bin/sh\nexec {sys.executable} -m beam_pipeline.flink_worker "$@"\n')
    worker.chmod(0o755)
    return self.process.start(
        [sys.executable, '-m', 'apache_beam.runners.worker.worker_pool_main', f'--service_port={self.port}',
         f'--container_executable={worker}'],
        env={**os.environ, 'PYTHONUNBUFFERED': '1'}, cwd=self.home)

  def is_ready(self) -> bool:
    return _port_open(self.port)


class FlinkSessionCluster:
  """A JobManager, a TaskManager, the SDK worker pool and a job server for them, as local processes on loopback."""

  def __init__(self, home: Path):
    self.home = home
    self.base = home / '.local' / 'flink-cluster'
    self.conf_dir = self.base / 'conf'
    self.rest_port = port_from_environment('FLINK_REST_PORT', 8081)
    self.rpc_port = port_from_environment('FLINK_RPC_PORT', 6123)
    self.job_manager = FlinkJobManager(home, self.rest_port, self.rpc_port, self.conf_dir)
    self.task_manager = FlinkTaskManager(home, self.rest_port, self.conf_dir)
    self.worker_pool = SdkWorkerPool(home, port_from_environment('FLINK_WORKER_POOL_PORT', 50000))
    self.job_server = FlinkJobServer(home, self.master, port=port_from_environment('FLINK_JOB_SERVER_PORT', 8099))

  @property
  def master(self) -> str:
    return f'localhost:{self.rest_port}'

  @property
  def services(self):
    return (self.job_manager, self.task_manager, self.worker_pool, self.job_server)

  def _write_config(self) -> None:
    self.conf_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        'jobmanager.rpc.address': '127.0.0.1',
        'jobmanager.rpc.port': str(self.rpc_port),
        'jobmanager.bind-host': '127.0.0.1',
        'rest.address': '127.0.0.1',
        'rest.bind-address': '127.0.0.1',
        'rest.port': str(self.rest_port),
        'taskmanager.host': '127.0.0.1',
        'taskmanager.bind-host': '127.0.0.1',
        'taskmanager.numberOfTaskSlots': str(TASK_SLOTS),
        'taskmanager.cpu.cores': str(os.cpu_count() or 1),
        **_TASK_MANAGER_MEMORY,
        'parallelism.default': '1',
        # No restart strategy is named: a batch job is then not restarted (a restarted batch region would count
        # again what it had written), and streaming jobs bring their own (flink_runner.py).
        # Checkpoints on disk, so that a restarted job resumes from the last one.
        'state.checkpoints.dir': (self.base / 'checkpoints').as_uri(),
        'web.tmpdir': str(self.base / 'web'),
        'io.tmp.dirs': str(self.base / 'tmp'),
    }
    (self.conf_dir / 'flink-conf.yaml').write_text(''.join(f'{k}: {v}\n' for k, v in settings.items()))
    (self.conf_dir / 'log4j2.properties').write_text(_LOG4J2)

  def up(self) -> List[str]:
    report = []
    started = time.monotonic()
    if self.job_manager.resolve_jars():
      report.append(f'flink: resolved jars in {time.monotonic() - started:.1f}s')
    self._write_config()
    report += [ensure_running_line(service) for service in self.services]
    report.append(f'Flink web UI and REST API: http://{self.master}')
    return report

  def _other_job_servers(self) -> List[LocalProcess]:
    """Job servers started for runs (embedded Flink, other masters): they run until flink-down too."""
    ours = self.job_server.process.pid_file.name
    return [LocalProcess(pid_file.stem, self.home / '.local')
            for pid_file in sorted((self.home / '.local' / 'run').glob('flink-job-server-*.pid'))
            if pid_file.name != ours]

  def down(self, wipe: bool = False) -> List[str]:
    """Stops the session cluster, and every job server a run started."""
    report = [stop_line(service) for service in reversed(self.services)]
    for process in self._other_job_servers():
      if process.stop():
        report.append(f'{process.name}: stopped')
    if wipe and self.base.exists():
      shutil.rmtree(self.base)
      report.append(f'flink-cluster: checkpoints and configuration removed ({self.base})')
    return report

  def status(self) -> List[str]:
    lines = status_lines(self.services)
    for process in self._other_job_servers():
      pid = process.pid()
      if pid is not None:
        lines.append(f'{process.name}: running (pid {pid}); log {process.log_file}')
    return lines

  def all_ready(self) -> bool:
    return all(s.process.pid() is not None and s.is_ready() for s in self.services)
