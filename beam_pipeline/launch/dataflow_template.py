"""Builds and launches the Dataflow Flex template; what ``./run_dataflow.sh`` runs.

Settings come from flags or the environment variables in brackets:

    --project (GCP_PROJECT)          --region (GCP_REGION)           --image (TEMPLATE_IMAGE)
    --template_path (TEMPLATE_PATH)  --temp_location (TEMP_LOCATION)
    --bootstrap_servers (KAFKA_BOOTSTRAP_SERVERS)  --topic (KAFKA_TOPIC)
    --cassandra_hosts (CASSANDRA_HOSTS)            --keyspace (CASSANDRA_KEYSPACE)
    [--job_name] [--bounded] [--parameter name=value ...]

``--dry-run`` prints the commands instead of running them, and builds the Dataflow job graph locally with
Beam's DataflowRunner ``--dry_run`` (needs ``pip install .[dataflow]``), submitting nothing.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from typing import Dict, List

from beam_pipeline import REPO_ROOT


_SETTINGS = [
    # flag, environment variable, what it is
    ('project', 'GCP_PROJECT', 'the Google Cloud project'),
    ('region', 'GCP_REGION', 'the Dataflow region, e.g. europe-west1'),
    ('image', 'TEMPLATE_IMAGE', 'the container image, e.g. europe-west1-docker.pkg.dev/PROJECT/REPO/site-stats:1'),
    ('template_path', 'TEMPLATE_PATH', 'where the template spec goes, e.g. gs://BUCKET/templates/site-stats.json'),
    ('temp_location', 'TEMP_LOCATION', 'a gs:// folder for staging and temporary files'),
    ('bootstrap_servers', 'KAFKA_BOOTSTRAP_SERVERS', 'Kafka brokers reachable from the workers'),
    ('topic', 'KAFKA_TOPIC', 'the Kafka topic to read'),
    ('cassandra_hosts', 'CASSANDRA_HOSTS', 'Cassandra contact points reachable from the workers'),
    ('keyspace', 'CASSANDRA_KEYSPACE', 'the keyspace of the counter table'),
]


class LaunchSettingsError(ValueError):
  """A required setting is missing or malformed."""


def beam_version() -> str:
  """The Beam version pinned in setup.py: the image is built with the same one."""
  match = re.search(r"^BEAM_VERSION = '([^']+)'", (REPO_ROOT / 'setup.py').read_text(), re.MULTILINE)
  if not match:
    raise LaunchSettingsError('setup.py does not define BEAM_VERSION')
  return match.group(1)


def resolve_settings(args: argparse.Namespace) -> Dict[str, str]:
  settings, missing = {}, []
  for flag, variable, description in _SETTINGS:
    value = getattr(args, flag) or os.environ.get(variable, '')
    if not value:
      missing.append(f'  --{flag} (or {variable}): {description}')
    settings[flag] = value
  if missing:
    raise LaunchSettingsError('missing settings:\n' + '\n'.join(missing))
  for flag in ('template_path', 'temp_location'):
    if not settings[flag].startswith('gs://'):
      raise LaunchSettingsError(f'--{flag}={settings[flag]!r} must be a gs:// path')
  return settings


def pipeline_parameters(settings: Dict[str, str], args: argparse.Namespace) -> Dict[str, str]:
  parameters = {name: settings[name] for name in ('bootstrap_servers', 'topic', 'cassandra_hosts', 'keyspace')}
  if args.bounded:
    parameters['bounded'] = 'true'
  for item in args.parameter:
    name, separator, value = item.partition('=')
    if not separator or not name:
      raise LaunchSettingsError(f'--parameter {item!r}: use name=value')
    parameters[name] = value
  return parameters


def commands(settings: Dict[str, str], parameters: Dict[str, str], job_name: str) -> List[List[str]]:
  image = settings['image']
  parameter_list = ','.join(f'{k}={v}' for k, v in sorted({**parameters, 'sdk_container_image': image}.items()))
  return [
      ['docker', 'build', '-f', 'templates/Dockerfile', '--build-arg', f'BEAM_VERSION={beam_version()}',
       '-t', image, '.'],
      ['docker', 'push', image],
      ['gcloud', 'dataflow', 'flex-template', 'build', settings['template_path'], '--image', image,
       '--sdk-language', 'PYTHON', '--metadata-file', 'templates/metadata.json', '--project', settings['project']],
      ['gcloud', 'dataflow', 'flex-template', 'run', job_name, '--project', settings['project'],
       '--region', settings['region'], '--template-file-gcs-location', settings['template_path'],
       '--temp-location', settings['temp_location'], f'--parameters={parameter_list}'],
  ]


def dry_run_job(settings: Dict[str, str], parameters: Dict[str, str]):
  """Builds the Dataflow job (graph and job type) locally; submits nothing. Returns Beam's dry-run result."""
  from beam_pipeline.launch.run import run
  argv = ['--runner', 'DataflowRunner', '--dry_run', 'True', '--project', settings['project'],
          '--region', settings['region'], '--temp_location', settings['temp_location'],
          '--sdk_container_image', settings['image'], '--setup_file', str(REPO_ROOT / 'setup.py')]
  argv += [f'--{name}={value}' for name, value in parameters.items()]
  result, _ = run(argv, wait=False)
  return result


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog='./run_dataflow.sh', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  for flag, variable, description in _SETTINGS:
    parser.add_argument(f'--{flag}', help=f'{description} (default: ${variable})')
  parser.add_argument('--job_name', default=f'site-stats-{time.strftime("%Y%m%d-%H%M%S")}')
  parser.add_argument('--bounded', action='store_true', help='launch a bounded (backfill) batch job')
  parser.add_argument('--parameter', action='append', default=[], metavar='NAME=VALUE',
                      help='any other pipeline option, e.g. --parameter consumer_group=site-stats-eu')
  parser.add_argument('--dry-run', '--dry_run', dest='dry_run', action='store_true',
                      help='print the commands and build the job graph locally; run and submit nothing')
  return parser


def main(argv=None) -> int:
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    settings = resolve_settings(args)
    parameters = pipeline_parameters(settings, args)
  except LaunchSettingsError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  planned = commands(settings, parameters, args.job_name)
  if args.dry_run:
    for command in planned:
      print(shlex.join(command))
    result = dry_run_job(settings, parameters)
    job = result.job.proto
    print(f'dry run: built Dataflow job {job.name or args.job_name!r}, type {job.type.name}, '
          f'{len(result.job.proto_pipeline.components.transforms)} transforms; nothing was submitted')
    return 0
  for command in planned:
    print(f'+ {shlex.join(command)}', flush=True)
    subprocess.run(command, cwd=REPO_ROOT, check=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
