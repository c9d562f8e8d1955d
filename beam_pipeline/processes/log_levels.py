"""The job's log levels in each of its processes: the launcher, and every SDK worker (a local run's, or a Flink
TaskManager's, whose records go to the TaskManager's log).

The Kafka and Cassandra drivers log each connection they open at INFO, and a job opens many: its readers, the
offset committer, the dead-letter producer, a Cassandra session per bundle. A streaming job on Flink filled a fifth
of the TaskManager's log with them. They show at ``--log_level DEBUG`` only; their warnings and errors always.
"""

import json
import logging
from typing import Iterable, Optional

DRIVER_LOGGERS = ('kafka', 'cassandra')
LOG_LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR')  # what --log_level takes
DEFAULT_LOG_LEVEL = 'INFO'


def quiet_drivers(log_level: str, also: Iterable[str] = ()) -> None:
  """The drivers' loggers, and those named in ``also``, at WARNING unless the job logs at DEBUG."""
  level = logging.DEBUG if log_level == 'DEBUG' else logging.WARNING
  for name in (*DRIVER_LOGGERS, *also):
    logging.getLogger(name).setLevel(level)


def log_level_of(pipeline_options_json: Optional[str]) -> str:
  """The job's --log_level in its options as a runner's provision service gives them to a worker: JSON, keyed by
  Beam's portable names (``beam:option:log_level:v1``) or, from older runners, by plain names under ``options``."""
  options = json.loads(pipeline_options_json) if pipeline_options_json else {}
  options = options.get('options', options)
  level = options.get('beam:option:log_level:v1', options.get('log_level'))
  return level if isinstance(level, str) else DEFAULT_LOG_LEVEL
