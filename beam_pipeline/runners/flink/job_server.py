"""Beam's Flink job server as a local process: it turns a portable pipeline into a Flink job, for ``[local]`` on a
mini cluster inside itself (embedded Flink), for ``host:port`` on that cluster.

The embedded job server picks free ports and records them; each embedded job's mini cluster serves Flink's REST
API and web UI on a port of ``FLINK_EMBEDDED_REST_PORTS`` (8180-8199), which is also how a stopped run cancels
its job, and its metrics to Prometheus on the first free port of ``jvm.embedded_prometheus_ports`` (9251-9270).
"""

import json
import os
import time
from pathlib import Path
from typing import List, Optional, Tuple

from beam_pipeline.processes.lifecycle import ensure_running_line
from beam_pipeline.processes.ports import free_port
from beam_pipeline.runners.flink.jvm import FlinkJvm, embedded_prometheus_ports, prometheus_reporter_settings

EMBEDDED_MASTER = '[local]'
_JOB_SERVER_CLASS = 'org.apache.beam.runners.flink.FlinkJobServerDriver'


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


class FlinkJobServer(FlinkJvm):
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
    # a job can be found (and cancelled) there, and so do their Prometheus reporters, so that they can be scraped.
    reporters = embedded_prometheus_ports()
    settings = {'rest.address': '127.0.0.1', 'rest.bind-address': '127.0.0.1',
                'rest.bind-port': embedded_rest_ports_setting(),
                **prometheus_reporter_settings(f'{reporters[0]}-{reporters[-1]}')}
    (conf_dir / 'flink-conf.yaml').write_text(''.join(f'{key}: {value}\n' for key, value in settings.items()))
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


def _job_server_instance(flink_master: str) -> str:
  if flink_master == EMBEDDED_MASTER:
    return 'flink-job-server-embedded'
  address = flink_master.split('://', 1)[-1].rstrip('/')
  return 'flink-job-server-' + ''.join(c if c.isalnum() else '-' for c in address)
