"""The SDK worker processes of a local run import the libraries of Beam's unused IOs (Google Cloud, MongoDB, Arrow)
only when the job names a gs:// location; the launcher's rule for its own process (a Dataflow run or a gs://
location keeps them); and Beam still imports them eagerly, and goes without them silently once they are hidden."""

import json
import os
import subprocess
import sys

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from beam_pipeline.runners.unused_libraries import (
    arguments_need_google_cloud, hide_unused_libraries, is_unused_package_module, unused_libraries_hidden)
from beam_pipeline.runners.local.runner import LocalRunner

TWO_WORKER_PROCESSES = ['--direct_num_workers', '2', '--direct_running_mode', 'multi_processing']


class ReportImports(beam.DoFn):
  """Per element: whether it ran in another process than the test's, whether modules of the unused libraries are
  loaded there, and the file system that a gs:// path gets there."""

  def __init__(self, test_process: int):
    self._test_process = test_process

  def process(self, element):
    loaded = sorted(name for name, module in list(sys.modules.items())
                    if getattr(module, '__file__', None) and is_unused_package_module(name))
    try:
      gcs = type(FileSystems.get_filesystem('gs://bucket/dead-letters')).__name__
    except ValueError:
      gcs = None
    yield os.getpid() != self._test_process, bool(loaded), gcs


def _run_reporting_imports(*args: str, expected):
  with beam.Pipeline(runner=LocalRunner(), options=PipelineOptions([*TWO_WORKER_PROCESSES, *args])) as pipeline:
    reports = (pipeline | beam.Create(range(8)) | beam.Reshuffle() | beam.ParDo(ReportImports(os.getpid()))
               | beam.Distinct())
    assert_that(reports, equal_to(expected))


def test_worker_processes_of_a_job_without_gs_locations_import_no_unused_library():
  _run_reporting_imports(expected=[(True, False, None)])


def test_worker_processes_of_a_job_with_a_gs_location_can_write_there():
  _run_reporting_imports('--temp_location', 'gs://bucket/tmp', expected=[(True, True, 'GCSFileSystem')])


@pytest.mark.parametrize('argv, needed', [
    (['--topic', 't', '--keyspace', 'k'], False),
    (['--runner', 'FlinkRunner', '--flink_master', 'host:8081'], False),
    (['--runner', 'DataflowRunner', '--project', 'p'], True),
    (['--runner=DataflowRunner'], True),
    (['--dead_letter_path', 'gs://bucket/dead-letters'], True),
    (['--runner', 'FlinkRunner', '--dead_letter_path=gs://bucket/dead-letters'], True),
])
def test_a_job_keeps_the_google_cloud_libraries_when_it_runs_on_dataflow_or_names_a_gs_location(argv, needed):
  assert arguments_need_google_cloud(argv) is needed


# Imports Beam in a fresh interpreter, the unused libraries hidden first or not, and reports what it loaded.
_BEAM_IMPORT_PROBE = '''
import json, logging, sys
from beam_pipeline.runners.unused_libraries import hide_unused_libraries, is_unused_package_module
hidden = sys.argv[1] == 'hidden' and hide_unused_libraries()
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
def filesystem(path):
  try:
    return type(FileSystems.get_filesystem(path)).__name__
  except ValueError:
    return None
# A namespace package (google.cloud, made by a .pth file at start-up) holds no code: only modules with a file count.
loaded = sorted(m for m, module in list(sys.modules.items())
                if getattr(module, '__file__', None) and is_unused_package_module(m))
print(json.dumps({'hidden': hidden, 'loaded': loaded, 'local': filesystem('/tmp/x'), 'gcs': filesystem('gs://b/x'),
                  'read_from_text': hasattr(beam.io, 'ReadFromText'), 'root_handlers': len(logging.root.handlers)}))
'''


def _import_beam(libraries: str):
  probe = subprocess.run([sys.executable, '-c', _BEAM_IMPORT_PROBE, libraries], capture_output=True, text=True,
                         timeout=120, check=True)
  return json.loads(probe.stdout), probe.stderr


def test_beam_still_imports_the_unused_libraries_eagerly_when_installed():
  # When this fails, Beam imports the missing ones only when used, and the finder need no longer refuse them.
  imported, _ = _import_beam('visible')
  assert not imported['hidden']
  eager = ['google.cloud.storage', 'google.cloud.dataflow', 'regex', 'pymongo', 'pyarrow']
  assert [module for module in eager if module not in imported['loaded']] == []
  assert imported['gcs'] == 'GCSFileSystem'


def test_beam_goes_without_the_hidden_libraries_silently_as_without_them_installed():
  imported, stderr = _import_beam('hidden')
  assert imported['hidden']
  assert imported['loaded'] == []
  assert imported['local'] == 'LocalFileSystem' and imported['read_from_text']
  assert imported['gcs'] is None
  assert stderr == ''  # no warning from Beam's optional imports
  assert imported['root_handlers'] == 0  # nor did one configure the root logger before the process does


def test_the_unused_libraries_are_not_hidden_once_beam_is_imported():
  assert 'apache_beam' in sys.modules
  assert not hide_unused_libraries()
  assert not unused_libraries_hidden()
