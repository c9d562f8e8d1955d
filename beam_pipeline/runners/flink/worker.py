"""One Python SDK worker for a Flink TaskManager: what the project's worker pool (``runners/flink/worker_pool.py``)
hands each request of Flink for a worker of an ``EXTERNAL`` environment.

A bare SDK harness (what Beam's own worker pool starts) knows neither the job's pipeline options nor where to send
its logs, so the job's log lines (committed offsets, write failures) would go nowhere. This does what Beam's
container entry point does instead: it asks the runner's provision service for the job's options and endpoints,
then runs Beam's SDK worker main, which sends every log record to the runner (the TaskManager's log).

Beam is first imported to ask for the options, so the libraries of Beam's unused IOs are left out before that
(beam_pipeline.runners.unused_libraries); a job that names a gs:// location gets a fresh interpreter that has them.

A worker ends with the pool that started it: Flink would otherwise keep a job whose pool is gone (an embedded
run's command, killed) running on orphaned workers, with nobody left to start new ones when it restarts.

    python -m beam_pipeline.runners.flink.worker --id ID --provision_endpoint HOST:PORT --control_endpoint HOST:PORT ...
    python -m beam_pipeline.runners.flink.worker --await_flags      # then the flags as a JSON list on stdin
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from typing import List, Optional

from beam_pipeline.processes.log_levels import log_level_of, quiet_drivers
from beam_pipeline.runners.unused_libraries import hide_unused_libraries, worker_needs_google_cloud

_PROVISION_TIMEOUT_S = 60
_PARENT_CHECK_INTERVAL_S = 1.0
# The one argument of a worker started ahead of its flags (see main).
AWAIT_FLAGS = '--await_flags'


def _exit_with_parent() -> None:
  parent = os.getppid()

  def watch():
    while os.getppid() == parent:
      time.sleep(_PARENT_CHECK_INTERVAL_S)
    os._exit(1)  # pylint: disable=protected-access  # the pool is gone: no cleanup could reach anyone

  threading.Thread(target=watch, name='exit-with-parent', daemon=True).start()


def worker_environment(worker_id: str, provision_endpoint: str, control_endpoint: str, logging_endpoint: str,
                       log_endpoint: Optional[str] = None) -> dict:
  """The environment variables Beam's SDK worker main reads, from the runner's provision service; the log records
  go to ``log_endpoint`` when given."""
  import grpc
  from google.protobuf import json_format, text_format
  from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc, endpoints_pb2
  channel = grpc.insecure_channel(provision_endpoint)
  try:
    info = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel).GetProvisionInfo(
        beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[('worker_id', worker_id)],
        timeout=_PROVISION_TIMEOUT_S).info
  finally:
    channel.close()

  def descriptor(provided, fallback_url: str) -> str:
    if not provided.url:
      provided = endpoints_pb2.ApiServiceDescriptor(url=fallback_url)
    return text_format.MessageToString(provided)

  return {
      'WORKER_ID': worker_id,
      'PIPELINE_OPTIONS': json_format.MessageToJson(info.pipeline_options),
      'CONTROL_API_SERVICE_DESCRIPTOR': descriptor(info.control_endpoint, control_endpoint),
      'LOGGING_API_SERVICE_DESCRIPTOR': descriptor(
          endpoints_pb2.ApiServiceDescriptor(url=log_endpoint) if log_endpoint else info.logging_endpoint,
          logging_endpoint),
      'RUNNER_CAPABILITIES': ' '.join(info.runner_capabilities),
  }


def _warnings_to_stderr(worker_id: str) -> None:
  """Beam sends every record to the runner's log; the job's own warnings and any error also go to stderr, which is
  the console of an embedded run's command (and the pool's log on a cluster), where whoever started it looks
  first. (Beam's start-up warnings of every worker stay in the runner's log.)"""
  handler = logging.StreamHandler(sys.stderr)
  handler.setLevel(logging.WARNING)
  handler.addFilter(lambda record: record.levelno >= logging.ERROR or record.name.startswith('beam_pipeline.'))
  handler.setFormatter(logging.Formatter(f'%(asctime)s %(levelname)s [SDK worker {worker_id}] %(name)s: %(message)s'))
  logging.getLogger().addHandler(handler)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog='python -m beam_pipeline.runners.flink.worker', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--id', required=True, help='the worker id Flink gave the pool')
  parser.add_argument('--provision_endpoint', required=True)
  parser.add_argument('--control_endpoint', required=True)
  parser.add_argument('--logging_endpoint', required=True)
  parser.add_argument('--artifact_endpoint', help='unused: the package is installed beside the TaskManager')
  parser.add_argument('--log_endpoint', help='where to send the log records instead of the runner\'s logging '
                                             'service: a local run\'s launcher, which prints them on its console')
  parser.add_argument('--log_level', help='the job\'s --log_level, where the runner does not provision the job\'s '
                                          'options (a local run); otherwise read from them')
  return parser


def import_what_a_worker_runs() -> None:
  """Imports what a worker needs before its flags: Beam's SDK worker and the clients of the job's stages."""
  # pylint: disable=import-outside-toplevel,unused-import
  import grpc
  from apache_beam.portability.api import beam_provision_api_pb2_grpc
  from apache_beam.runners.worker import sdk_worker_main
  # The clients the job's stages use (its own modules are the graph's layer, and take 0.08 s more).
  import cassandra.cluster
  import kafka


def start_awaiting_worker(module: str) -> subprocess.Popen:
  """Starts ``python -m module AWAIT_FLAGS``: a worker that imports what it runs, then waits for its flags."""
  # The worker's stdout is nobody's: it goes to stderr, where it cannot fill a pipe.
  return subprocess.Popen([sys.executable, '-m', module, AWAIT_FLAGS], stdin=subprocess.PIPE,
                          stdout=sys.stderr.fileno(), close_fds=True)


def main(argv: Optional[List[str]] = None) -> int:
  """Runs one SDK worker. With only ``AWAIT_FLAGS``, it first starts Python and Beam, then reads the flags as a JSON
  list on a line of stdin: how the project's pool (runners/flink/worker_pool.py) keeps workers ready ahead of Flink."""
  argv = sys.argv[1:] if argv is None else argv
  _exit_with_parent()
  hidden = hide_unused_libraries()
  if argv == [AWAIT_FLAGS]:
    import_what_a_worker_runs()
    line = sys.stdin.readline()
    if not line:
      return 0  # the pool ended without needing this worker
    argv = json.loads(line)
  args = _parser().parse_args(argv)
  environment = worker_environment(args.id, args.provision_endpoint, args.control_endpoint, args.logging_endpoint,
                                   args.log_endpoint)
  from apache_beam.runners.worker import sdk_worker_main
  if hidden and worker_needs_google_cloud(environment['PIPELINE_OPTIONS']):
    # Beam's modules settled at import to go without the libraries: the worker starts again in a process that has
    # them, from the environment just provisioned.
    os.execve(sys.executable, [sys.executable, '-m', sdk_worker_main.__name__], {**os.environ, **environment})
  os.environ.update(environment)
  quiet_drivers(args.log_level or log_level_of(environment['PIPELINE_OPTIONS']))
  if not args.log_endpoint:  # otherwise the records reach a console already
    _warnings_to_stderr(args.id)
  sdk_worker_main.main([])
  return 0


if __name__ == '__main__':
  sys.exit(main())
