"""The worker processes of a local multi-process run, started as the command starts.

A worker process spends most of its start importing Python, Beam and the clients (about 0.8 s of CPU). Beam's
FnApiRunner starts its worker processes only once the pipeline runs, after the launcher has imported Beam, checked
the services and planned the reads. ``python -m beam_pipeline`` calls ``start_ahead`` first of all, which imports
what a worker runs (the launcher needs nearly all of it too) and forks the workers from the launcher
(processes/forked_process.py): they share those modules and are ready at once, and the launcher imports on cores of
its own. Where it may not fork (another thread already runs in the process, or not on Linux), it starts them as new
interpreters instead, which import on the other cores meanwhile. The runner (runner.py) then takes the job's
workers from a pool that hands these out first: Beam's ``EXTERNAL`` environment, served by the pool that Flink's
TaskManagers use (runners/flink/worker_pool.py). A job that names a gs:// location keeps the worker processes
Beam's runner starts, with all of Beam's libraries.
"""

import argparse
import contextlib
import gc
import importlib
import logging
import os
import subprocess
from concurrent import futures
from typing import Iterator, List, Sequence, Union

from beam_pipeline.processes.forked_process import ForkedProcess, can_fork
from beam_pipeline.runners.flink.worker import AWAIT_FLAGS, start_awaiting_worker
from beam_pipeline.runners.unused_libraries import arguments_need_google_cloud

LOCAL_RUNNER_NAMES = (None, 'DirectRunner', 'SwitchingDirectRunner', 'FnApiRunner')
WORKER_MODULE = 'beam_pipeline.runners.local.worker'
# How long the workers get to tear their stages down once the run is over (the runner does not wait for them).
_WORKERS_END_WITHIN_S = 10.0
# One log stream per worker, held open while it runs.
_LOG_SERVER_THREADS = 16

_started_ahead: List[Union[subprocess.Popen, ForkedProcess]] = []


def worker_processes_asked(argv: List[str]) -> int:
  """How many worker processes a local multi_processing run with these arguments has (0: any other run), read
  without Beam, as Beam reads them (``--direct_num_workers 0``: one per core)."""
  parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
  for flag in ('--runner', '--direct_running_mode', '--direct_num_workers', '--dry_run'):
    parser.add_argument(flag)
  try:
    known, _ = parser.parse_known_args(argv)
    workers = int(known.direct_num_workers or 1)
  except (argparse.ArgumentError, ValueError):
    return 0  # the launcher's checks will say what is wrong
  if known.runner not in LOCAL_RUNNER_NAMES or known.direct_running_mode != 'multi_processing' or known.dry_run:
    return 0
  return (os.cpu_count() or 1) if workers == 0 else max(workers, 0)


def start_ahead(argv: List[str], job_modules: Sequence[str] = ()) -> None:
  """Starts the worker processes a local run with these arguments will ask for, unless it needs Google Cloud
  (Beam's runner starts those workers). Forked, they begin with ``job_modules`` (the job's stages) imported too."""
  if '-h' in argv or '--help' in argv or arguments_need_google_cloud(argv):
    return
  count = worker_processes_asked(argv)
  if count and can_fork():
    _import_what_forked_workers_run(job_modules)
    # The modules are the parent's for good: the collector of neither process touches (and so copies) their pages.
    gc.freeze()
    _started_ahead.extend(ForkedProcess(_run_forked_worker) for _ in range(count))
  else:
    _started_ahead.extend(start_awaiting_worker(WORKER_MODULE) for _ in range(count))


def _import_what_forked_workers_run(job_modules: Sequence[str]) -> None:
  # pylint: disable=import-outside-toplevel,unused-import
  from beam_pipeline.runners.flink.worker import import_what_a_worker_runs
  import_what_a_worker_runs()
  # librdkafka's client (a few ms once kafka-python and the Cassandra driver are in), which each worker of a
  # --kafka_client confluent job would import on its own.
  import confluent_kafka
  for module in job_modules:
    importlib.import_module(module)


def _run_forked_worker() -> None:
  """A forked worker: the launcher's logging is not its own (its records go to the launcher's logging service),
  then what ``python -m WORKER_MODULE AWAIT_FLAGS`` runs."""
  # pylint: disable=import-outside-toplevel
  from beam_pipeline.runners.local.worker import main as run_worker
  for handler in list(logging.root.handlers):
    logging.root.removeHandler(handler)
  logging.root.setLevel(logging.WARNING)
  run_worker([AWAIT_FLAGS])


@contextlib.contextmanager
def worker_pool(log_level: str) -> Iterator[str]:
  """Serves worker processes, those started ahead first; yields the pool's address. On leaving, each worker gets
  a while to end by itself, then the pool's processes are stopped.

  The workers send their log records to a logging service of this process, which logs each as this process
  would have (worker_logs.py); they are told the job's ``log_level``, which Beam's local runner does not provision
  to them."""
  # pylint: disable=import-outside-toplevel
  import grpc
  from apache_beam.portability.api import beam_fn_api_pb2_grpc
  from beam_pipeline.runners.flink import worker_pool as pool_service
  from beam_pipeline.runners.local.worker_logs import WorkerRecordsToLaunchersLoggers
  logs = grpc.server(futures.ThreadPoolExecutor(max_workers=_LOG_SERVER_THREADS))
  beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(WorkerRecordsToLaunchersLoggers(), logs)
  logs_address = f'localhost:{logs.add_insecure_port("localhost:0")}'
  logs.start()
  started = list(_started_ahead)
  _started_ahead.clear()
  pool_address, server, pool = pool_service.serve(0, 0, WORKER_MODULE, started,
                                                  ['--log_endpoint', logs_address, '--log_level', log_level])
  try:
    yield pool_address
  finally:
    server.stop(0)
    pool.close(workers_end_within_s=_WORKERS_END_WITHIN_S)
    logs.stop(0)
