"""Which processes of a job import Beam's Google Cloud client libraries: only those of a job that runs on Dataflow
or names a gs:// location (dead letters or temporary files there). Every other one, the launcher of a local or
Flink run (whose in-process and LOOPBACK workers are its threads) and each SDK worker process we start, goes
without them, and starts about 0.3 s sooner (docs/performance.md#start-up).

How they are left out: ``import apache_beam`` imports the Google Cloud clients of the ``gcp`` extra whenever they
are installed (the Dataflow client for the runner, Cloud Storage for ``gs://`` paths, BigQuery, Pub/Sub,
google-auth), about a third of its import time, whether or not the job uses them; Beam has no option to leave them
out. Each of those imports is optional in Beam (``try: import ... except ImportError``), so that Beam works without
the extra: a finder that refuses these modules, installed before Beam is first imported, gives the process exactly
what an install without the extra gives. tests/test_worker_imports.py fails when Beam changes what these imports do.

Imports no Beam module: it decides before Beam is first imported.
"""

import importlib.abc
import json
import sys
from typing import Iterable, Optional

from beam_pipeline.compat import require_version

# The Beam whose imports the finder was checked against.
BEAM_VERSION = require_version('apache-beam', ('2.77.',))

# The client libraries of Beam's gcp extra that Beam imports optionally. apitools stays visible: Beam's bundled
# BigQuery client needs it at import and logs a warning on every import without it.
GOOGLE_CLOUD_PACKAGES = ('google.cloud', 'google.api_core', 'google.auth', 'google.oauth2', 'google_auth_httplib2',
                         'googleapiclient')


class GoogleCloudRefusingFinder(importlib.abc.MetaPathFinder):
  """Answers an import of any module of GOOGLE_CLOUD_PACKAGES as if it were not installed."""

  def find_spec(self, fullname, path=None, target=None):
    if any(fullname == package or fullname.startswith(package + '.') for package in GOOGLE_CLOUD_PACKAGES):
      raise ModuleNotFoundError(f'No module named {fullname!r} (Google Cloud libraries are left out of this '
                                'process: its job neither runs on Dataflow nor uses gs://)', name=fullname)
    return None


def google_cloud_hidden() -> bool:
  return any(isinstance(finder, GoogleCloudRefusingFinder) for finder in sys.meta_path)


def hide_google_cloud_libraries() -> bool:
  """Makes the Google Cloud client libraries unimportable in this process, so that Beam, imported next, goes
  without them. Does nothing once Beam is imported (its modules have already taken the libraries, and a module
  that imports one later would fail); returns whether they are hidden."""
  if not google_cloud_hidden() and 'apache_beam' not in sys.modules:
    sys.meta_path.insert(0, GoogleCloudRefusingFinder())
  return google_cloud_hidden()


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
