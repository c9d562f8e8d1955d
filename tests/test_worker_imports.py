"""The SDK worker processes of a local run import Beam's Google Cloud client libraries only when the job names a
gs:// location; the launcher's rule for its own process (a Dataflow run or a gs:// location keeps them)."""

import os
import sys

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from beam_pipeline.compat.beam_google_cloud import GOOGLE_CLOUD_PACKAGES
from beam_pipeline.runners.google_cloud_imports import arguments_need_google_cloud
from beam_pipeline.runners.local.runner import LocalRunner

TWO_WORKER_PROCESSES = ['--direct_num_workers', '2', '--direct_running_mode', 'multi_processing']


class ReportImports(beam.DoFn):
  """Per element: whether it ran in another process than the test's, the Google Cloud modules loaded there, and
  the file system that a gs:// path gets there."""

  def __init__(self, test_process: int):
    self._test_process = test_process

  def process(self, element):
    loaded = sorted(name for name, module in list(sys.modules.items()) if getattr(module, '__file__', None)
                    and any(name == p or name.startswith(p + '.') for p in GOOGLE_CLOUD_PACKAGES))
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


def test_worker_processes_of_a_job_without_gs_locations_import_no_google_cloud_library():
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
