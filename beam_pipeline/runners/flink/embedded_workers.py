"""The Python SDK workers of an embedded Flink run: processes of the command that submitted it.

Beam's ``LOOPBACK`` environment runs every worker as a thread of the submitting process, so all the job's Python
code shares one interpreter and one core, however many slots the mini cluster has. Instead the command serves the
project's worker pool itself (``runners/flink/worker_pool.py``), which starts its workers as the command begins,
while it checks the services and submits the job, and hands them to Flink as it asks: each a process of this
project's worker entry point (``runners/flink/worker.py``), with the job's options, sending its logs to the job
server's log.

The pool lives as long as the command; each worker ends with it (the worker watches its parent), so a job whose
command was killed finds no workers when Flink restarts it, and gives up.
"""

import atexit
import logging
import threading
from typing import Optional

from beam_pipeline.runners.flink.worker_pool import default_spares, serve

_LOGGER = logging.getLogger(__name__)
_GRACE_S = 1

_lock = threading.Lock()
_address: Optional[str] = None


def embedded_worker_pool_address() -> str:
  """The address of this process's worker pool (``host:port`` for ``--environment_config``), started on first
  use and stopped when the process exits."""
  global _address  # pylint: disable=global-statement
  with _lock:
    if _address is None:
      _address, server, pool = serve(spares=default_spares())
      atexit.register(pool.close)
      atexit.register(server.stop, _GRACE_S)
      _LOGGER.info('Python SDK workers of embedded Flink jobs: processes of the pool at %s', _address)
    return _address
