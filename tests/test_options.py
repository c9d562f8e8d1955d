"""Bad options fail before the job starts, with a message naming the option."""

import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_pipeline.errors import OptionError
from beam_pipeline.options import configs
from beam_pipeline.options.checks import check_options
from beam_pipeline.options.configs import parse_time_ms
from beam_pipeline.options.known_flags import unknown_options
from beam_pipeline.options.site_stats import SiteStatsOptions

BASE = ['--topic', 'events', '--keyspace', 'stats']


@pytest.mark.parametrize('args,message', [
    (['--keyspace', 'stats'], '--topic is required'),
    (['--topic', 'events'], '--keyspace is required'),
    (BASE + ['--topic', 'bad topic!'], '--topic='),
    (BASE + ['--keyspace', 'x;drop'], '--keyspace'),
    (BASE + ['--table', '1table'], '--table'),
    (BASE + ['--bootstrap_servers', 'localhost'], '--bootstrap_servers'),
    (BASE + ['--start_time', 'yesterday-ish'], '--start_time'),
    (BASE + ['--stop_time', '2017-02-05'], '--stop_time ends the read, so it needs --bounded'),
    (BASE + ['--bounded', '--start_time', '2017-02-05', '--stop_time', '2017-02-04'], 'must be after --start_time'),
    (BASE + ['--bounded', '--streaming'], 'drop --streaming'),
    (BASE + ['--max_concurrent_writes', '0'], '--max_concurrent_writes'),
    (BASE + ['--max_records_per_bundle', '0'], '--max_records_per_bundle'),
    (BASE + ['--cassandra_port', '70000'], '--cassandra_port'),
    (BASE + ['--dead_letter_topic', 'a b'], '--dead_letter_topic'),
    (BASE + ['--direct_num_workers', '2'], '--direct_num_workers 2 needs --direct_running_mode multi_processing'),
    (BASE + ['--statements_per_batch', '0'], '--statements_per_batch'),
    (BASE + ['--sink_mode', 'reconcile', '--dates', '2017-02-01'], 'add --bounded'),
    (BASE + ['--bounded', '--sink_mode', 'reconcile'], 'needs --dates'),
    (BASE + ['--bounded', '--dates', '2017-02-30'], '--dates'),
    (BASE + ['--bounded', '--sink_mode', 'reconcile', '--dates', '2017-02-01', '--stop_time', '2017-02-01T12:00'],
     'before 2017-02-01 does'),
    (BASE + ['--bounded', '--sink_mode', 'reconcile', '--dates', '2017-02-02', '--start_time', '2017-02-02T01:00'],
     'after 2017-02-02 begins'),
    (BASE + ['--bounded', '--sink_mode', 'reconcile', '--dates', '2017-02-02', '--start_offsets', '0=5'],
     'cannot check that an offset window'),
    (BASE + ['--bounded', '--report_only'], '--report_only goes with --sink_mode reconcile'),
    (BASE + ['--start_offsets', '0=5'], '--start_offsets sets a window, so it needs --bounded'),
    (BASE + ['--bounded', '--start_offsets', '0:5'], 'partition=offset'),
])
def test_a_bad_value_is_refused_naming_the_option(args, message):
  with pytest.raises(OptionError, match=message.replace('(', r'\(')):
    check_options(PipelineOptions(args))


def test_a_streaming_read_turns_on_streaming():
  options = PipelineOptions(BASE)
  notes = check_options(options)
  assert options.view_as(StandardOptions).streaming and notes


def test_beam_flags_spelled_unlike_their_option_names_are_known_and_misspellings_are_not():
  known = ['--experiment', 'use_runner_v2', '--no_use_public_ips', '--label', 'team=web', '--resource_hint',
           'min_ram=4GB', '--direct_num_workers=2', '--topic', 't']
  assert unknown_options(known) == []
  assert unknown_options(['--topc', 't', '--direct-num-workers', '2', '--experiments=a']) == [
      '--topc', '--direct-num-workers']


def test_the_consistency_levels_reach_the_cassandra_connection_and_default_to_local_quorum():
  def levels(*args):
    connection = configs.cassandra_connection(PipelineOptions(BASE + list(args)).view_as(SiteStatsOptions))
    return connection.write_consistency, connection.read_consistency

  assert levels() == ('LOCAL_QUORUM', 'LOCAL_QUORUM')
  assert levels('--cassandra_write_consistency', 'ALL', '--cassandra_read_consistency', 'ONE') == ('ALL', 'ONE')


def test_times_are_iso8601_or_epoch_milliseconds():
  assert parse_time_ms('2017-02-04T00:00:00Z', 'start_time') == 1486166400000
  assert parse_time_ms('2017-02-04', 'start_time') == 1486166400000
  assert parse_time_ms('2017-02-04T01:00:00+01:00', 'start_time') == 1486166400000
  assert parse_time_ms('1486166400000', 'start_time') == 1486166400000


@pytest.mark.parametrize('args,message', [
    (BASE + ['--topc', 'x'], 'unknown option(s) --topc'),
    (['--keyspace', 'stats', '--bounded'], '--topic is required'),
    (BASE + ['--cassandra_write_consistency', 'ANY'], "--cassandra_write_consistency: invalid choice: 'ANY'"),
    (BASE + ['--cassandra_read_consistency', 'SERIAL'], "--cassandra_read_consistency: invalid choice: 'SERIAL'"),
])
def test_the_command_line_exits_2_with_the_message_before_any_work(args, message):
  result = subprocess.run([sys.executable, '-m', 'beam_pipeline', *args], capture_output=True, text=True, timeout=60)
  assert result.returncode == 2
  assert message in result.stderr


def test_help_explains_every_option():
  result = subprocess.run([sys.executable, '-m', 'beam_pipeline', '--help'], capture_output=True, text=True,
                          timeout=60)
  assert result.returncode == 0
  for option in ('--bootstrap_servers', '--topic', '--consumer_group', '--start_offset', '--start_time',
                 '--stop_time', '--bounded', '--cassandra_hosts', '--cassandra_port', '--keyspace', '--table',
                 '--dead_letter_topic', '--dead_letter_path'):
    assert option in result.stdout


def test_dates_name_days_ranges_and_shortcuts():
  import datetime
  from beam_pipeline.transforms.dates import parse_dates
  today = datetime.date(2017, 3, 1)
  assert parse_dates('2017-02-27..2017-03-01,2017-02-01', today) == [
      datetime.date(2017, 2, 1), datetime.date(2017, 2, 27), datetime.date(2017, 2, 28), datetime.date(2017, 3, 1)]
  assert parse_dates('yesterday', today) == [datetime.date(2017, 2, 28)]
  assert parse_dates('yesterday..today', today) == [datetime.date(2017, 2, 28), today]
  with pytest.raises(ValueError, match='ends before it starts'):
    parse_dates('2017-02-05..2017-02-01', today)


SASL = BASE + ['--kafka_security_protocol', 'SASL_SSL', '--kafka_sasl_mechanism', 'SCRAM-SHA-512',
               '--kafka_username', 'u']


@pytest.mark.parametrize('args,message', [
    (BASE + ['--kafka_security_protocol', 'SASL_SSL'], 'needs --kafka_sasl_mechanism'),
    (SASL, 'needs --kafka_username and its password in --kafka_password_env'),
    (SASL + ['--kafka_password_env', 'A', '--kafka_password_file', '/x'], 'not both'),
    (SASL + ['--kafka_password_env', 'SITE_STATS_SURELY_UNSET'], 'SITE_STATS_SURELY_UNSET is not set'),
    (SASL + ['--kafka_password_file', '/nonexistent/kafka.password'], 'cannot read the secret file'),
    (BASE + ['--kafka_username', 'u'], 'need --kafka_security_protocol SASL_SSL'),
    (BASE + ['--kafka_ssl_ca_file', '/etc/hostname'], '--kafka_ssl_ca_file needs --kafka_security_protocol SSL'),
    (BASE + ['--kafka_security_protocol', 'SSL', '--kafka_ssl_ca_file', '/nonexistent.pem'], 'no such file'),
    (BASE + ['--cassandra_username', 'u'], 'needs both --cassandra_username and its password'),
    (BASE + ['--cassandra_password_env', 'X'], 'needs both --cassandra_username and its password'),
    (BASE + ['--cassandra_ssl_ca_file', '/etc/hostname'], '--cassandra_ssl_ca_file needs --cassandra_ssl'),
])
def test_inconsistent_security_options_are_refused_by_name(args, message):
  with pytest.raises(OptionError, match=message):
    check_options(PipelineOptions(args))


def test_a_password_is_read_from_its_variable_or_file_and_never_kept_in_the_options(tmp_path, monkeypatch):
  from beam_pipeline.options.configs import cassandra_security, kafka_security
  from beam_pipeline.options.site_stats import SiteStatsOptions
  monkeypatch.setenv('SITE_STATS_TEST_PASSWORD', 'from-the-environment')
  password_file = tmp_path / 'password'
  password_file.write_text('from-a-file\n')
  options = PipelineOptions(SASL + ['--kafka_password_env', 'SITE_STATS_TEST_PASSWORD', '--cassandra_username', 'c',
                                    '--cassandra_password_file', str(password_file), '--cassandra_ssl'])
  check_options(options)
  site = options.view_as(SiteStatsOptions)

  assert kafka_security(site).client_config()['sasl_plain_password'] == 'from-the-environment'
  assert cassandra_security(site).cluster_config()['auth_provider'].password == 'from-a-file'
  assert 'from-' not in repr(options.get_all_options()) + repr(kafka_security(site)) + repr(cassandra_security(site))
