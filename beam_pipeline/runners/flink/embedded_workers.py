"""The Python SDK workers of an embedded Flink run: processes of the command that submitted it.

Beam's ``LOOPBACK`` environment runs every worker as a thread of the submitting process, so all the job's Python
code shares one interpreter and one core, however many slots the mini cluster has. Instead the command serves a
Beam worker pool itself (``worker_pool_main.BeamFnExternalWorkerPoolServicer``, what ``LOOPBACK`` serves too) that
starts each worker Flink asks for as a process, through this project's worker entry point
(``runners/flink/worker.py``): the job's options, its logs sent to the job server's log.

The pool lives as long as the command; each worker ends with it (the worker watches its parent), so a job whose
command was killed finds no workers when Flink restarts it, and gives up.
"""

import atexit
import logging
import threading
from typing import Optional

from beam_pipeline import REPO_ROOT
from beam_pipeline.runners.flink.worker import write_worker_executable

_LOGGER = logging.getLogger(__name__)
_GRACE_S = 1

_lock = threading.Lock()
_address: Optional[str] = None


class _WorkerStartNotice(logging.Filter):
  """Beam's pool says each worker start as a warning (several per job); here it is routine, so it goes to debug."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno == logging.WARNING and record.getMessage().startswith('Starting worker with command'):
      record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
      return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
    return True


def embedded_worker_pool_address() -> str:
  """The address of this process's worker pool (``host:port`` for ``--environment_config``), started on first
  use and stopped when the process exits."""
  global _address  # pylint: disable=global-statement
  with _lock:
    if _address is None:
      from apache_beam.runners.worker import worker_pool_main
      from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
      logging.getLogger(worker_pool_main.__name__).addFilter(_WorkerStartNotice())
      executable = write_worker_executable(REPO_ROOT / '.local' / 'flink-embedded-workers')
      # Beam kills the worker processes at exit; the server's threads go with the process.
      _address, server = BeamFnExternalWorkerPoolServicer.start(
          use_process=True, container_executable=str(executable))
      atexit.register(server.stop, _GRACE_S)
      _LOGGER.info('Python SDK workers of embedded Flink jobs: processes started by the pool at %s', _address)
    return _address
