"""The local services the tests run against, started when they do not answer, and what a run leaves running.

Starting goes through ``./run_local.sh`` (as a developer would), so a test run and a developer share one set of
services; a service that cannot be started raises ServiceStartError with that command's output.
"""

import subprocess
from typing import List, Optional, Tuple

from beam_pipeline import REPO_ROOT
from beam_pipeline.devservices.flink import FlinkSessionCluster
from beam_pipeline.devservices.prometheus import PrometheusServer
from beam_pipeline.devservices.stack import LocalStack
from beam_pipeline.processes.jvm import JvmSetupError
from beam_pipeline.processes.local_process import ServiceStartError
from beam_pipeline.runners.flink.job_server import FlinkJobServer


# The Kafka releases besides the pom's that the tests run a broker of (docs/compatibility.md).
COMPATIBLE_KAFKA = ('3.9.1',)
COMPATIBLE_CASSANDRA = ('4.1.10',)


def _run_local(*command: str) -> None:
  result = subprocess.run([str(REPO_ROOT / 'run_local.sh'), *command], capture_output=True, text=True)
  if result.returncode != 0:
    raise ServiceStartError(f'./run_local.sh {" ".join(command)} failed:\n{result.stdout}\n{result.stderr}')


def started_stack(secure: bool = False, kafka_version: Optional[str] = None,
                  cassandra_version: Optional[str] = None) -> LocalStack:
  """The plain (or secured) Kafka + Cassandra pair, or a pair with a service of another release, started with
  ./run_local.sh up [--secure | --kafka_version V | --cassandra_version V] unless it answers."""
  stack = LocalStack.from_environment(REPO_ROOT, secure=secure, kafka_version=kafka_version,
                                      cassandra_version=cassandra_version)
  if not stack.all_ready():
    _run_local('up', *(['--secure'] if secure else []), *(['--kafka_version', kafka_version] if kafka_version else []),
               *(['--cassandra_version', cassandra_version] if cassandra_version else []))
  return stack


def started_flink_cluster() -> FlinkSessionCluster:
  """The Flink session cluster, started with ./run_local.sh flink-up unless it answers."""
  cluster = FlinkSessionCluster(REPO_ROOT)
  if not cluster.all_ready():
    _run_local('flink-up')
  return cluster


def started_job_server() -> FlinkJobServer:
  """The embedded Flink job server (a Flink mini cluster inside it), started unless it runs; resolving its jars
  is part of starting it."""
  server = FlinkJobServer(REPO_ROOT)
  try:
    server.ensure_running()
  except JvmSetupError as error:
    raise ServiceStartError(str(error)) from error
  return server


def left_running() -> List[Tuple[str, List[str]]]:
  """The local services running now, as (the command that stops them, their status lines), one entry per set."""
  sets = [('./run_local.sh down', LocalStack.from_environment(REPO_ROOT)),
          ('./run_local.sh down --secure', LocalStack.from_environment(REPO_ROOT, secure=True)),
          *((f'./run_local.sh down --kafka_version {version}',
             LocalStack.from_environment(REPO_ROOT, kafka_version=version)) for version in COMPATIBLE_KAFKA),
          *((f'./run_local.sh down --cassandra_version {version}',
             LocalStack.from_environment(REPO_ROOT, cassandra_version=version)) for version in COMPATIBLE_CASSANDRA),
          ('./run_local.sh flink-down', FlinkSessionCluster(REPO_ROOT)),
          ('./run_local.sh prometheus-down', PrometheusServer(REPO_ROOT))]
  running = []
  for stop_command, services in sets:
    lines = [line for line in services.status() if ': running' in line]
    if '--kafka_version' in stop_command:  # its Cassandra is the plain pair's, listed there
      lines = [line for line in lines if line.startswith('kafka-')]
    if '--cassandra_version' in stop_command:  # and this one's Kafka
      lines = [line for line in lines if line.startswith('cassandra-')]
    if lines:
      running.append((stop_command, lines))
  return running
