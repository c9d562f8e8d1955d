"""The Dataflow launch, verified offline: job graphs built by DataflowRunner's dry run, and the template files."""

import argparse
import json
import re
import subprocess
import sys

import apache_beam
import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.compat.beam import add_declared_arguments
from beam_pipeline.launch import dataflow_template as dataflow_launch
from beam_pipeline.options.site_stats import SiteStatsOptions

SETTINGS = ['--project', 'demo-project', '--region', 'europe-west1',
            '--image', 'europe-west1-docker.pkg.dev/demo-project/pipelines/site-stats:1',
            '--template_path', 'gs://demo-bucket/templates/site-stats.json', '--temp_location', 'gs://demo-bucket/tmp',
            '--bootstrap_servers', 'kafka-1.internal:9092,kafka-2.internal:9092', '--topic', 'site-events',
            '--cassandra_hosts', '10.0.0.5,10.0.0.6', '--keyspace', 'site_stats_ks']

STAGES = ('ReadFromKafka', 'ParseJson', 'Validate', 'CassandraCounterWrite', 'WriteDeadLetters')


def _dry_run_job(*extra):
  args = dataflow_launch.build_parser().parse_args(SETTINGS + list(extra))
  settings = dataflow_launch.resolve_settings(args)
  return dataflow_launch.dry_run_job(settings, dataflow_launch.pipeline_parameters(settings, args))


def _transform_names(result):
  return [t.unique_name for t in result.job.proto_pipeline.components.transforms.values()]


def _transforms_by_name(result):
  return {t.unique_name: t for t in result.job.proto_pipeline.components.transforms.values()}


def _dead_letter_producer(transforms, stage: str):
  """The primitive step inside ``stage`` whose output tagged ``dead_letters`` is the stage's dead-letter output."""
  dead_letters = transforms[stage].outputs['dead_letters']
  producers = [t for name, t in transforms.items() if name.startswith(f'{stage}/') and not t.subtransforms
               and t.outputs.get('dead_letters') == dead_letters]
  assert len(producers) == 1, (stage, [t.unique_name for t in producers])
  return producers[0]


@pytest.mark.parametrize('extra,job_type', [([], 'JOB_TYPE_STREAMING'), (['--bounded'], 'JOB_TYPE_BATCH')])
def test_the_dry_run_builds_the_stages_and_each_stages_dead_letters_flow_into_the_dead_letter_branch(
    extra, job_type):
  result = _dry_run_job(*extra)

  transforms = _transforms_by_name(result)
  for stage in STAGES:
    assert stage in transforms, (stage, sorted(n for n in transforms if '/' not in n))
  for stage in ('ParseJson', 'Validate'):
    branch = transforms.get(f'WriteDeadLetters/PublishToKafka{stage}')
    assert branch is not None, sorted(n for n in transforms if 'DeadLetters' in n)
    producer = _dead_letter_producer(transforms, stage)
    # What the branch reads is the PCollection the stage's own step emits under the dead_letters tag.
    assert list(branch.inputs.values()) == [producer.outputs['dead_letters']], (stage, dict(branch.inputs))
    assert transforms['WriteDeadLetters'].inputs[stage] == transforms[stage].outputs['dead_letters']
  assert result.job.proto.type.name == job_type


def test_run_dataflow_dry_run_prints_the_commands_and_submits_nothing():
  result = subprocess.run([str(REPO_ROOT / 'run_dataflow.sh'), '--dry-run', *SETTINGS],
                          capture_output=True, text=True, timeout=600)

  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert lines[0].startswith('docker build -f templates/Dockerfile --build-arg BEAM_VERSION=')
  assert any(line.startswith('gcloud dataflow flex-template build gs://demo-bucket/templates/site-stats.json')
             for line in lines)
  run_line = next(line for line in lines if line.startswith('gcloud dataflow flex-template run'))
  assert 'topic=site-events' in run_line and 'sdk_container_image=' in run_line
  assert 'nothing was submitted' in lines[-1] and 'JOB_TYPE_STREAMING' in lines[-1]


def test_run_dataflow_refuses_to_start_without_its_settings():
  result = subprocess.run([sys.executable, '-m', 'beam_pipeline.launch.dataflow_template', '--project', 'p'],
                          capture_output=True, text=True, timeout=120,
                          env={'PATH': '/usr/bin:/bin'})

  assert result.returncode == 2
  for missing in ('--region (or GCP_REGION)', '--image (or TEMPLATE_IMAGE)', '--topic (or KAFKA_TOPIC)',
                  '--keyspace (or CASSANDRA_KEYSPACE)'):
    assert missing in result.stderr
  assert '--project' not in result.stderr.split('missing settings:')[1]


def _declared_options():
  parser = argparse.ArgumentParser(add_help=False)
  add_declared_arguments(SiteStatsOptions, parser)
  return set(vars(parser.parse_args([])))


def test_metadata_describes_exactly_the_pipeline_options():
  metadata = json.loads((REPO_ROOT / 'templates' / 'metadata.json').read_text())
  parameters = {p['name']: p for p in metadata['parameters']}

  assert set(parameters) == _declared_options()
  for parameter in parameters.values():
    assert parameter['label'] and parameter['helpText'] and isinstance(parameter['isOptional'], bool)
  assert not parameters['topic']['isOptional'] and not parameters['keyspace']['isOptional']
  assert re.fullmatch(parameters['keyspace']['regexes'][0], 'site_stats_ks')
  assert not re.fullmatch(parameters['keyspace']['regexes'][0], 'x;drop')


def test_the_dockerfile_and_setup_py_pin_the_same_beam_version():
  dockerfile = (REPO_ROOT / 'templates' / 'Dockerfile').read_text()
  pinned = re.search(r'^ARG BEAM_VERSION=(\S+)$', dockerfile, re.MULTILINE).group(1)

  assert pinned == dataflow_launch.beam_version()
  assert "f'apache-beam=={BEAM_VERSION}'" in (REPO_ROOT / 'setup.py').read_text()
  assert apache_beam.__version__ == pinned


def test_the_reconcile_backfill_builds_as_a_batch_job_with_the_reconcile_sink_and_publishes_no_dead_letters():
  result = _dry_run_job('--bounded', '--parameter', 'sink_mode=reconcile',
                        '--parameter', 'dates=2017-02-01..2017-02-07')

  names = _transform_names(result)
  assert 'ReconcileCounters' in names and 'CassandraCounterWrite' not in names
  assert 'KeepDates' in names and 'WriteDeadLetters' not in names
  assert result.job.proto.type.name == 'JOB_TYPE_BATCH'


def test_a_reconcile_backfill_given_a_dead_letter_topic_publishes_there():
  result = _dry_run_job('--bounded', '--parameter', 'sink_mode=reconcile',
                        '--parameter', 'dates=2017-02-01..2017-02-07', '--parameter', 'dead_letter_topic=reconcile-dlq')

  assert 'WriteDeadLetters' in _transform_names(result)


def test_setup_py_builds_the_source_distribution_that_workers_install(tmp_path):
  result = subprocess.run([sys.executable, 'setup.py', '-q', 'sdist', '--dist-dir', str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)

  assert result.returncode == 0, result.stderr[-2000:]
  archive, = tmp_path.glob('*.tar.gz')
  import tarfile
  names = tarfile.open(archive).getnames()
  assert any(n.endswith('beam_pipeline/pipeline.py') for n in names)
  assert any(n.endswith('beam_pipeline/io/kafka/read.py') for n in names)
