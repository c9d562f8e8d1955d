"""Which processes of a job import Beam's Google Cloud client libraries: only those of a job that runs on Dataflow
or names a gs:// location (dead letters or temporary files there). Every other one, the launcher of a local or
Flink run (whose in-process and LOOPBACK workers are its threads) and each SDK worker process we start, goes
without them, and starts about 0.3 s sooner (docs/performance.md#start-up).

Imports no Beam module: it decides before Beam is first imported.
"""

import json
from typing import Iterable, Optional

from beam_pipeline.compat.beam_google_cloud import hide_google_cloud_libraries

GCS_SCHEME = 'gs://'


def needs_google_cloud(runner: Optional[str], option_values: Iterable[str]) -> bool:
  return 'dataflow' in (runner or '').lower() or any(GCS_SCHEME in value for value in option_values)


def _runner_in(argv: list) -> Optional[str]:
  runner = None
  for index, argument in enumerate(argv):
    if argument == '--runner' and index + 1 < len(argv):
      runner = argv[index + 1]
    elif argument.startswith('--runner='):
      runner = argument.split('=', 1)[1]
  return runner


def arguments_need_google_cloud(argv: list) -> bool:
  return needs_google_cloud(_runner_in(argv), argv)


def leave_out_unless_arguments_need_it(argv: list) -> bool:
  """For a command that runs a job: hides the libraries unless its arguments need them; returns whether hidden."""
  if arguments_need_google_cloud(argv):
    return False
  return hide_google_cloud_libraries()


def _strings_in(value) -> Iterable[str]:
  if isinstance(value, str):
    yield value
  elif isinstance(value, dict):
    for item in value.values():
      yield from _strings_in(item)
  elif isinstance(value, (list, tuple)):
    for item in value:
      yield from _strings_in(item)


def options_need_google_cloud(options: dict) -> bool:
  """Whether the SDK workers of a job with these options (name or URN to value) need the libraries: Dataflow
  starts its own workers, so only a gs:// location counts."""
  return needs_google_cloud(None, _strings_in(options))


def worker_needs_google_cloud(pipeline_options_json: Optional[str]) -> bool:
  """options_need_google_cloud for the options as the runner's provision service gives them to a worker (JSON);
  a worker given none keeps the libraries."""
  return not pipeline_options_json or options_need_google_cloud(json.loads(pipeline_options_json))
