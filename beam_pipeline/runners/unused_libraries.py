"""Which of Beam's optional libraries a process of a job leaves out: the libraries of IOs the job never uses, unless
it runs on Dataflow or names a gs:// location (dead letters or temporary files there), which keeps them all. Every
other process, the launcher of a local or Flink run (whose in-process and LOOPBACK workers are its threads) and each
SDK worker process we start, goes without them, and starts sooner and smaller (docs/performance.md#start-up).

How they are left out: ``import apache_beam`` imports the libraries of all its IOs that are installed, whether or
not the job uses them: the Google Cloud clients of its ``gcp`` extra (the Dataflow client, Cloud Storage, BigQuery,
Pub/Sub, google-auth), regex (BigQuery's), pymongo (MongoDB) and pyarrow (Arrow batches, Parquet), about half of
its import time. Beam has no option to leave them out. Each of those imports is optional in Beam (``try: import ...
except ImportError``), so that Beam works without them: a finder that refuses these modules, installed before Beam
is first imported, gives the process exactly what an install without them gives, less the warning that says so
(``AbsentMongoClientWarning``). tests/test_worker_imports.py fails when Beam changes what these imports do.

apitools stays importable: Beam's bundled BigQuery client warns without it through ``logging.warning``, which
would also configure the process's root logger (``basicConfig``) before the process does.

Imports no Beam module: it decides before Beam is first imported.
"""

import importlib.abc
import json
import logging
import sys
from typing import Iterable, Optional

from beam_pipeline.compat import require_version

# The Beam whose imports the finder was checked against.
BEAM_VERSION = require_version('apache-beam', ('2.77.',))

# The client libraries of Beam's gcp extra, and what only its Google Cloud IOs use.
GOOGLE_CLOUD_PACKAGES = ('google.cloud', 'google.api_core', 'google.auth', 'google.oauth2', 'google_auth_httplib2',
                         'googleapiclient', 'regex')
# What only Beam's MongoDB IO (pymongo, and its bson) and its Arrow batches and Parquet IO (pyarrow) use.
OTHER_IO_PACKAGES = ('pymongo', 'bson', 'pyarrow')
UNUSED_PACKAGES = GOOGLE_CLOUD_PACKAGES + OTHER_IO_PACKAGES


def is_unused_package_module(name: str) -> bool:
  return any(name == package or name.startswith(package + '.') for package in UNUSED_PACKAGES)


class UnusedLibraryFinder(importlib.abc.MetaPathFinder):
  """Answers an import of any module of UNUSED_PACKAGES as if it were not installed."""

  def find_spec(self, fullname, path=None, target=None):
    if is_unused_package_module(fullname):
      raise ModuleNotFoundError(f'No module named {fullname!r} (left out of this process: its job neither runs on '
                                'Dataflow nor uses gs://, and no other of its IOs needs it)', name=fullname)
    return None


class AbsentMongoClientWarning(logging.Filter):
  """Drops the warning Beam's MongoDB IO logs at import without pymongo, which here is by design."""

  LOGGER = 'apache_beam.io.mongodbio'
  MESSAGE = 'Could not find a compatible bson package.'

  def filter(self, record: logging.LogRecord) -> bool:
    return record.getMessage() != self.MESSAGE


def unused_libraries_hidden() -> bool:
  return any(isinstance(finder, UnusedLibraryFinder) for finder in sys.meta_path)


def hide_unused_libraries() -> bool:
  """Makes the libraries of UNUSED_PACKAGES unimportable in this process, so that Beam, imported next, goes without
  them. Does nothing once Beam is imported (its modules have already taken the libraries, and a module that imports
  one later would fail); returns whether they are hidden."""
  if not unused_libraries_hidden() and 'apache_beam' not in sys.modules:
    sys.meta_path.insert(0, UnusedLibraryFinder())
    logging.getLogger(AbsentMongoClientWarning.LOGGER).addFilter(AbsentMongoClientWarning())
  return unused_libraries_hidden()


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


def leave_out_unless_arguments_need_them(argv: list) -> bool:
  """For a command that runs a job: hides the libraries unless its arguments need them; returns whether hidden."""
  if arguments_need_google_cloud(argv):
    return False
  return hide_unused_libraries()


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
