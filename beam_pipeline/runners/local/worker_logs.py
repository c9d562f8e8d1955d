"""The log records of a local run's worker processes, told by the launcher as if logged there.

Each worker sends its records to the launcher over Beam's logging service (``--log_endpoint`` of the pooled
worker). Beam's own service logs a record's every field on one long "Worker: severity: ... message: ..." line,
under a logger of its own, so the job's ``--log_level`` never applied to them. This service hands each record to
the launcher's logger of the module that logged it, with the worker's time and level: a worker's line reads as the
same line of an in-process run, and the same levels decide which are shown (processes/log_levels.py). A record
carries the file that logged it, not its logger's name: the logger is taken to be that file's module, as
``logging.getLogger(__name__)`` names it. Beam's own start-up and shutdown lines of every worker are shown at
``--log_level DEBUG`` only; its warnings and errors always.
"""

import functools
import logging
import os
import sys

from apache_beam.portability.api import beam_fn_api_pb2_grpc
from apache_beam.runners.worker.log_handler import LOGENTRY_TO_LOG_LEVEL_MAP

_BEAM = 'apache_beam'


def logger_name_of(location: str) -> str:
  """The module name of a record's ``path:line`` location, as its logger is named (``logging.getLogger(__name__)``)."""
  return _module_of(location.rsplit(':', 1)[0])


@functools.lru_cache(maxsize=1024)  # a worker logs from a few modules, again and again
def _module_of(file_path: str) -> str:
  path = os.path.normpath(file_path)
  roots = [os.path.normpath(os.path.abspath(entry)) for entry in sys.path if entry]
  inside = [root for root in roots if path.startswith(root + os.sep)]
  relative = path[len(max(inside, key=len)) + 1:] if inside else os.path.basename(path)
  # A file's name is its module's up to the first dot (``cluster.cpython-311-x86_64-linux-gnu.so``).
  directory, file_name = os.path.split(relative)
  module = os.path.join(directory, file_name.split('.', 1)[0]).replace(os.sep, '.')
  return module[:-len('.__init__')] if module.endswith('.__init__') else module


class WorkerRecordsToLaunchersLoggers(beam_fn_api_pb2_grpc.BeamFnLoggingServicer):

  def Logging(self, log_bundles, context=None):  # pylint: disable=invalid-name,unused-argument
    for log_bundle in log_bundles:
      for entry in log_bundle.log_entries:
        self._log(entry)
    return iter([])

  @staticmethod
  def _log(entry) -> None:
    level = LOGENTRY_TO_LOG_LEVEL_MAP.get(entry.severity) or logging.INFO
    name = logger_name_of(entry.log_location) if entry.log_location else 'worker'
    if name.startswith(_BEAM) and level < logging.WARNING:
      level = logging.DEBUG
    logger = logging.getLogger(name)
    if not logger.isEnabledFor(level):
      return
    message = entry.message + (f'\n{entry.trace.rstrip()}' if entry.trace else '')
    path, _, line = entry.log_location.rpartition(':')
    record = logger.makeRecord(name, level, path, int(line) if line.isdigit() else 0, message, None, None)
    record.created = entry.timestamp.seconds + entry.timestamp.nanos / 1e9
    record.msecs = entry.timestamp.nanos // 1_000_000
    logger.handle(record)
