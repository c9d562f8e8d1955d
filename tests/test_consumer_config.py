"""--kafka_consumer_config: kafka-python settings passed through to every consumer the job makes; the settings the
job owns, unknown keys and values of the wrong type are refused in one line naming the key, never the value."""

import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline import REPO_ROOT
from beam_pipeline.errors import OptionError
from beam_pipeline.options import configs
from beam_pipeline.options.checks import check_options
from beam_pipeline.options.site_stats import SiteStatsOptions

BASE = ['--topic', 'events', '--keyspace', 'stats']


def _checked(*settings: str):
  options = PipelineOptions([*BASE, *(arg for s in settings for arg in ('--kafka_consumer_config', s))])
  check_options(options)
  return options.view_as(SiteStatsOptions)


@pytest.mark.parametrize('setting,instead', [
    ('group_id=other', 'use --consumer_group'),
    ('enable_auto_commit=true', 'it commits offsets itself'),
    ('auto_offset_reset=latest', 'use --start_offset'),
    ('value_deserializer=json', 'it reads the raw bytes'),
    ('bootstrap_servers=kafka-9:9092', 'use --bootstrap_servers'),
    ('security_protocol=SSL', 'use --kafka_security_protocol'),
    ('sasl_plain_username=ann', 'use --kafka_username'),
    ('ssl_certfile=/etc/client.pem', 'is a security setting: use --kafka_security_protocol'),
    ('group.id=other', 'use --consumer_group'),  # Java's dotted spelling names the same key
])
def test_a_setting_the_job_owns_is_refused_naming_the_option_to_use_instead(setting, instead):
  key = setting.split('=')[0].replace('.', '_')
  with pytest.raises(OptionError, match=f'^--kafka_consumer_config {key} .*{instead}'):
    _checked(setting)


@pytest.mark.parametrize('setting,message', [
    ('fetch_min_byte=1', 'fetch_min_byte is not a kafka-python consumer setting (did you mean fetch_min_bytes?)'),
    ('fetch_min_bytes=lots', 'fetch_min_bytes takes an integer'),
    ('check_crcs=maybe', 'check_crcs takes true or false'),
    ('isolation_level=serializable', 'isolation_level takes one of read_uncommitted, read_committed'),
    ('selector=epoll', 'selector takes a Python object'),
    ('fetch_min_bytes', 'takes key=value'),
])
def test_an_unknown_key_or_a_value_of_the_wrong_type_is_refused_naming_the_key(setting, message):
  with pytest.raises(OptionError) as refused:
    _checked(setting)
  assert str(refused.value).startswith(f'--kafka_consumer_config {message}')


def test_values_take_the_types_kafka_python_expects():
  site = _checked('fetch_min_bytes=65536', 'check_crcs=false', 'fetch.max.wait.ms=100', 'api_version=2.5.0')
  assert dict(configs.consumer_settings(site)) == {
      'fetch_min_bytes': 65536, 'check_crcs': False, 'fetch_max_wait_ms': 100, 'api_version': (2, 5, 0)}


def test_the_isolation_level_option_and_the_passthrough_must_agree():
  site = _checked('isolation_level=read_committed')
  assert dict(configs.consumer_settings(site)) == {'isolation_level': 'read_committed'}
  with pytest.raises(OptionError, match='^--kafka_isolation_level read_uncommitted and --kafka_consumer_config '
                                        'isolation_level=read_committed disagree'):
    check_options(PipelineOptions([*BASE, '--kafka_isolation_level', 'read_uncommitted',
                                   '--kafka_consumer_config', 'isolation_level=read_committed']))


def test_a_refused_secret_fails_in_one_line_with_exit_2_and_is_never_printed():
  result = subprocess.run(
      [sys.executable, '-m', 'beam_pipeline', *BASE, '--kafka_consumer_config', 'fetch_min_bytes=1024',
       '--kafka_consumer_config', 'sasl_plain_password=hunter2-secret'],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      'error: --kafka_consumer_config sasl_plain_password is set by the job: use --kafka_password_env or '
      '--kafka_password_file']
  assert 'hunter2-secret' not in result.stdout + result.stderr


def test_every_consumer_the_job_makes_carries_the_settings(bootstrap_servers):
  options = PipelineOptions([*BASE, '--bootstrap_servers', bootstrap_servers, '--kafka_consumer_config',
                             'fetch_min_bytes=4096', '--kafka_consumer_config', 'client_id=region-eu',
                             '--kafka_consumer_config', 'max_partition_fetch_bytes=65536'])
  check_options(options)
  read_config = configs.read_config(options.view_as(SiteStatsOptions))
  for role in ('reader', 'planner', 'preflight', 'committer'):
    consumer = read_config.consumer(role)
    try:
      assert consumer.config['fetch_min_bytes'] == 4096
      assert consumer.config['max_partition_fetch_bytes'] == 65536  # the job's own choice, overridden
      assert consumer.config['client_id'] == f'region-eu-{role}'
      assert consumer.config['group_id'] == 'site-stats' and consumer.config['enable_auto_commit'] is False
    finally:
      consumer.close(autocommit=False)


def test_with_the_librdkafka_client_the_settings_are_translated_and_one_without_an_equivalent_is_refused():
  from beam_pipeline.io.kafka.fetch_librdkafka import client_settings
  options = PipelineOptions([*BASE, '--kafka_client', 'confluent', '--kafka_consumer_config', 'fetch_min_bytes=4096',
                             '--kafka_consumer_config', 'client_id=region-eu', '--kafka_isolation_level',
                             'read_committed'])
  check_options(options)
  settings = client_settings(configs.read_config(options.view_as(SiteStatsOptions)), 'reader')
  assert {key: settings[key] for key in ('fetch.min.bytes', 'client.id', 'isolation.level', 'enable.auto.commit')} == {
      'fetch.min.bytes': 4096, 'client.id': 'region-eu-reader', 'isolation.level': 'read_committed',
      'enable.auto.commit': False}
  with pytest.raises(OptionError, match='^--kafka_consumer_config api_version has no librdkafka equivalent .*'
                                        'use one of .*fetch_min_bytes'):
    check_options(PipelineOptions([*BASE, '--kafka_client', 'confluent', '--kafka_consumer_config',
                                   'api_version=2.5.0']))
