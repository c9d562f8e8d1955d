"""The pool that starts the Python SDK workers of Flink jobs (``--environment_type EXTERNAL``), with workers kept
ready ahead of Flink's requests.

A worker spends most of its start importing Python, Beam and the clients the job uses (about 0.8 s of CPU here),
and Flink asks for its workers when a job's tasks open: with Beam's own pool (``worker_pool_main``) a bounded job
on 2 cores waited for its first workers, and the later ones imported while the first were reading. This pool keeps
``spares`` workers that have imported them (``runners/flink/worker.py --await_flags``) and hands each
request one of them, with the endpoints Flink gave; a stopped worker is replaced by a new spare.

It serves the session cluster (``python -m beam_pipeline.runners.flink.worker_pool --service_port 50000``, beside
each TaskManager) and, inside the command, embedded Flink (``runners/flink/embedded_workers.py``).
"""

import argparse
import collections
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from typing import Deque, Dict, Iterable, Sequence, Tuple

import grpc
from apache_beam.portability.api import beam_fn_api_pb2, beam_fn_api_pb2_grpc
from apache_beam.runners.worker.worker_pool_main import kill_process_gracefully

from beam_pipeline.runners.flink.worker import start_awaiting_worker

_LOGGER = logging.getLogger(__name__)
_STOP_GRACE_S = 2
_SERVER_THREADS = 8


# An idle ready worker holds about 190 MB: on a large host, keeping two per core would hold gigabytes for nothing.
_MAX_DEFAULT_SPARES = 8
WORKER_MODULE = 'beam_pipeline.runners.flink.worker'


def default_spares() -> int:
  """Two workers per core (what a job of this project asks of a TaskManager: two per parallel reader), at most 8."""
  return min(2 * (os.cpu_count() or 1), _MAX_DEFAULT_SPARES)


class WarmWorkerPool(beam_fn_api_pb2_grpc.BeamFnExternalWorkerPoolServicer):
  """Beam's worker pool service, answered from workers started ahead."""

  def __init__(self, spares: int, worker_module: str = WORKER_MODULE, started: Iterable[subprocess.Popen] = (),
               worker_flags: Sequence[str] = ()):
    """``spares``: how many ready workers to keep; ``started``: workers already started (``worker_module``
    ``AWAIT_FLAGS``), handed out first; ``worker_flags``: given to every worker after those of its request."""
    self._spares_wanted = spares
    self._worker_module = worker_module
    self._worker_flags = list(worker_flags)
    self._spares: Deque[subprocess.Popen] = collections.deque(started)
    self._workers: Dict[str, subprocess.Popen] = {}
    self._lock = threading.Lock()
    self._closed = False
    self._top_up()

  def _start_spare(self) -> subprocess.Popen:
    return start_awaiting_worker(self._worker_module)

  def _top_up(self) -> None:
    with self._lock:
      while not self._closed and len(self._spares) < self._spares_wanted:
        self._spares.append(self._start_spare())

  def _take_spare(self) -> subprocess.Popen:
    with self._lock:
      while self._spares:
        spare = self._spares.popleft()
        if spare.poll() is None:
          return spare
    return self._start_spare()

  def StartWorker(self, request, context):  # pylint: disable=invalid-name,unused-argument
    flags = ['--id', request.worker_id, '--provision_endpoint', request.provision_endpoint.url,
             '--control_endpoint', request.control_endpoint.url, '--logging_endpoint', request.logging_endpoint.url,
             '--artifact_endpoint', request.artifact_endpoint.url, *self._worker_flags]
    try:
      worker = self._take_spare()
      worker.stdin.write(json.dumps(flags).encode() + b'\n')
      worker.stdin.close()
    except OSError as error:
      return beam_fn_api_pb2.StartWorkerResponse(error=f'could not start SDK worker {request.worker_id}: {error}')
    with self._lock:
      self._workers[request.worker_id] = worker
    _LOGGER.info('SDK worker %s: pid %d', request.worker_id, worker.pid)
    return beam_fn_api_pb2.StartWorkerResponse()

  def StopWorker(self, request, context):  # pylint: disable=invalid-name,unused-argument
    with self._lock:
      worker = self._workers.pop(request.worker_id, None)
    if worker is not None:
      threading.Thread(target=self._stop_and_replace, args=(worker,), daemon=True).start()
    return beam_fn_api_pb2.StopWorkerResponse()

  def _stop_and_replace(self, worker: subprocess.Popen) -> None:
    kill_process_gracefully(worker, _STOP_GRACE_S)
    self._top_up()

  def close(self, workers_end_within_s: float = 0) -> None:
    """Stops every process of the pool; the workers handed out get ``workers_end_within_s`` to end by themselves
    first (a runner that does not stop its workers lets them tear their stages down)."""
    with self._lock:
      self._closed = True
      spares, workers = list(self._spares), list(self._workers.values())
      self._spares.clear()
      self._workers.clear()
    deadline = time.monotonic() + workers_end_within_s
    for worker in workers:
      try:
        worker.wait(max(deadline - time.monotonic(), 0))
      except subprocess.TimeoutExpired:
        pass
    for process in [*spares, *workers]:
      if process.poll() is None:
        kill_process_gracefully(process, _STOP_GRACE_S)


def serve(port: int = 0, spares: int = 0, worker_module: str = WORKER_MODULE, started: Iterable[subprocess.Popen] = (),
          worker_flags: Sequence[str] = ()) -> Tuple[str, grpc.Server, WarmWorkerPool]:
  """Starts the pool on ``port`` (0: any free one); returns its ``localhost:PORT``, the server and the pool."""
  server = grpc.server(futures.ThreadPoolExecutor(max_workers=_SERVER_THREADS))
  pool = WarmWorkerPool(spares, worker_module, started, worker_flags)
  beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(pool, server)
  bound = server.add_insecure_port(f'[::]:{port}')
  server.start()
  return f'localhost:{bound}', server, pool


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m beam_pipeline.runners.flink.worker_pool', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--service_port', type=int, default=50000, help='the port the TaskManager reaches it on')
  parser.add_argument('--spare_workers', type=int, default=default_spares(),
                      help='workers kept ready (default: two per core, at most 8; each holds about 190 MB)')
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
  address, server, pool = serve(args.service_port, args.spare_workers)
  _LOGGER.info('SDK worker pool listening at %s, %d workers kept ready', address, args.spare_workers)
  stopped = threading.Event()
  for stop_signal in (signal.SIGTERM, signal.SIGINT):
    signal.signal(stop_signal, lambda *_: stopped.set())
  while not stopped.wait(1):
    pass
  server.stop(_STOP_GRACE_S)
  pool.close()
  return 0


if __name__ == '__main__':
  sys.exit(main())
