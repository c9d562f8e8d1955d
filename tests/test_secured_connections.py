"""The job against the secured local pair: Kafka SASL_SSL (SCRAM-SHA-512) and TLS, Cassandra password
authentication and client TLS, with secrets read from an environment variable or a file, and never shown."""

import glob
import logging
import subprocess
import sys
import uuid

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.display import DisplayData

from beam_pipeline.io.cassandra.connection import build_cluster
from beam_pipeline.devservices.stack import LocalStack
from beam_pipeline.options.site_stats import SiteStatsOptions
from beam_pipeline.pipeline import build_graph
from beam_pipeline.io.security import KafkaSecurity
from beam_pipeline.testing.counters import expected_counters, read_counters
from beam_pipeline.testing.datasets import fresh_keyspace, fresh_topic, produce_dataset
from beam_pipeline.testing.jobs import run_bounded
from beam_pipeline.testing.topics import read_dead_letters

_PASSWORD_VARIABLE = 'SITE_STATS_TEST_KAFKA_PASSWORD'


@pytest.fixture(scope='module')
def secure_session(secure_stack):
  cluster = build_cluster(['127.0.0.1'], secure_stack.cassandra.port, secure_stack.cassandra.client_security())
  yield cluster.connect()
  cluster.shutdown()


@pytest.fixture
def secure_topic(request, secure_stack):
  with fresh_topic(secure_stack.kafka.address, request.node.name, secure_stack.kafka.client_security()) as name:
    yield name


@pytest.fixture
def secure_keyspace(request, secure_session):
  with fresh_keyspace(secure_session, request.node.name) as name:
    yield name


def _secrets(stack: LocalStack):
  return [stack.credentials.secret(name) for name in ('kafka', 'cassandra', 'kafka-broker', 'keystore')]


def _job_args(stack, topic, keyspace, *extra):
  """The secured pair's options, with the Kafka password taken from an environment variable instead of a file."""
  arguments = stack.connection_arguments()
  at = arguments.index('--kafka_password_file')
  arguments[at:at + 2] = ['--kafka_password_env', _PASSWORD_VARIABLE]
  return [*arguments, '--topic', topic, '--keyspace', keyspace, '--consumer_group', f'{topic}-group', *extra]


def test_the_job_counts_exactly_over_sasl_ssl_and_cassandra_auth_tls_and_shows_no_secret(
    secure_stack, secure_topic, secure_keyspace, secure_session, monkeypatch, caplog, capfd, tmp_path, kafka_client):
  security = secure_stack.kafka.client_security()
  monkeypatch.setenv(_PASSWORD_VARIABLE, secure_stack.credentials.secret('kafka'))
  expected = produce_dataset(secure_stack.kafka.address, secure_topic, count=1500, keys=60, bad_ratio=0.05,
                             seed=11, security=security)
  for logger in ('', 'kafka', 'cassandra', 'apache_beam', 'beam_pipeline'):
    caplog.set_level(logging.DEBUG, logger=logger)
  args = _job_args(secure_stack, secure_topic, secure_keyspace, '--dead_letter_path', str(tmp_path / 'dead'),
                   '--kafka_client', kafka_client)

  summary = run_bounded(*args)

  assert read_counters(secure_session, secure_keyspace) == expected_counters(expected)
  dead_letters = read_dead_letters(secure_stack.kafka.address, secure_topic, security=security)
  assert {(d['partition'], d['offset']) for d in dead_letters} == set(expected.invalid_offsets)
  assert summary.read == expected.messages

  pipeline = beam.Pipeline(options=PipelineOptions([*args, '--bounded']))
  build_graph(pipeline, pipeline.options.view_as(SiteStatsOptions))
  shown = {
      'logs': '\n'.join(f'{r.name} {r.getMessage()} {r.exc_text or ""}' for r in caplog.records),
      'output': ''.join(capfd.readouterr()),
      'dead-letter topic': repr(dead_letters),
      'dead-letter files': ''.join(open(path).read() for path in glob.glob(str(tmp_path / 'dead' / '*'))),
      'display data': repr(_all_display_data(pipeline)),
      'pipeline proto (pickled DoFns)': pipeline.to_runner_api().SerializeToString().decode('latin-1'),
  }
  assert len(caplog.records) > 100, 'debug logging must have been on for the check to mean anything'
  for secret in _secrets(secure_stack):
    for where, text in shown.items():
      assert secret not in text, f'a secret appears in the {where}'


def _all_display_data(pipeline):
  items = [item.get_dict() for item in DisplayData.create_from_options(pipeline.options).items]

  class Collect(beam.pipeline.PipelineVisitor):
    def visit_transform(self, node):
      items.extend(item.get_dict() for item in DisplayData.create_from(node.transform).items)
      if isinstance(node.transform, beam.ParDo):
        items.extend(item.get_dict() for item in DisplayData.create_from(node.transform.fn).items)
    visit_composite_transform = visit_transform

  pipeline.visit(Collect())
  assert items, 'the pipeline must have display data for the check to mean anything'
  return items


@pytest.mark.parametrize('checked_by, kafka_client, expected_message', [
    ('the launcher', 'kafka-python', 'took a connection but did not answer as a Kafka broker within 8s'),
    # The workers' check is the same for both clients but for their own calls; one of them by default.
    pytest.param('the workers', 'kafka-python', 'sent no metadata within 10s', marks=pytest.mark.slow),
    ('the workers', 'confluent', 'sent no metadata within 10s')])
def test_a_wrong_kafka_password_fails_the_job_with_an_error_that_does_not_echo_it(
    secure_stack, secure_topic, secure_keyspace, monkeypatch, checked_by, kafka_client, expected_message):
  wrong = 'not-the-password-' + secure_stack.credentials.secret('kafka')[:6]
  monkeypatch.setenv(_PASSWORD_VARIABLE, wrong)
  args = _job_args(secure_stack, secure_topic, secure_keyspace, '--kafka_connect_timeout_s', '10',
                   '--kafka_client', kafka_client)
  if checked_by == 'the workers':
    args.append('--skip_preflight')

  with pytest.raises(Exception) as failure:
    run_bounded(*args)

  message = ''.join(str(e) for e in (failure.value, failure.value.__cause__, failure.value.__context__) if e)
  assert expected_message in message and '--kafka_username' in message, message
  for secret in [wrong, *_secrets(secure_stack)]:
    assert secret not in message


@pytest.mark.parametrize('checked_by, expected_message', [
    ('the launcher', "refused the login of user 'site_stats': check --cassandra_username and its password"),
    ('the workers', 'Bad credentials')])
def test_a_wrong_cassandra_password_fails_with_an_authentication_error(
    secure_stack, secure_topic, secure_keyspace, monkeypatch, tmp_path, checked_by, expected_message):
  monkeypatch.setenv(_PASSWORD_VARIABLE, secure_stack.credentials.secret('kafka'))
  wrong_file = tmp_path / 'cassandra.password'
  wrong_file.write_text('certainly-wrong-password\n')
  args = _job_args(secure_stack, secure_topic, secure_keyspace)
  args[args.index('--cassandra_password_file') + 1] = str(wrong_file)
  if checked_by == 'the workers':
    args.append('--skip_preflight')
  produce_dataset(secure_stack.kafka.address, secure_topic, count=10, security=secure_stack.kafka.client_security())

  with pytest.raises(Exception) as failure:
    run_bounded(*args)

  assert expected_message in str(failure.value), failure.value
  assert 'certainly-wrong-password' not in str(failure.value)


def test_kafka_over_tls_without_sasl_reads_the_topic(secure_stack, secure_topic, secure_keyspace, secure_session,
                                                     kafka_client):
  expected = produce_dataset(secure_stack.kafka.address, secure_topic, count=400, keys=20, bad_ratio=0.0,
                             security=secure_stack.kafka.client_security())
  args = secure_stack.connection_arguments()
  # The TLS-only listener: no SASL options, only the CA.
  args[args.index('--bootstrap_servers') + 1] = f'127.0.0.1:{secure_stack.kafka.tls_port}'
  args[args.index('--kafka_security_protocol') + 1] = 'SSL'
  for option in ('--kafka_sasl_mechanism', '--kafka_username', '--kafka_password_file'):
    at = args.index(option)
    del args[at:at + 2]

  run_bounded(*args, '--topic', secure_topic, '--keyspace', secure_keyspace,
              '--consumer_group', f'{secure_topic}-tls', '--kafka_client', kafka_client)

  assert read_counters(secure_session, secure_keyspace) == expected_counters(expected)


def test_a_plaintext_client_is_refused_by_the_secured_broker(secure_stack):
  from kafka import KafkaAdminClient
  from kafka.errors import KafkaError, NoBrokersAvailable
  with pytest.raises((NoBrokersAvailable, KafkaError, OSError)):
    admin = KafkaAdminClient(bootstrap_servers=secure_stack.kafka.address, request_timeout_ms=3000,
                             api_version_auto_timeout_ms=3000, **KafkaSecurity().client_config())
    try:
      admin.describe_cluster()
    finally:
      admin.close()


def test_the_schema_command_creates_the_table_on_the_secured_cassandra(secure_stack, secure_session):
  cassandra = secure_stack.cassandra.client_security()
  keyspace = f'ks_schema_secure_{uuid.uuid4().hex[:8]}'
  result = subprocess.run(
      [sys.executable, '-m', 'beam_pipeline.tools.create_schema', '--cassandra_port', str(secure_stack.cassandra.port),
       '--keyspace', keyspace, '--cassandra_username', cassandra.username,
       '--cassandra_password_file', cassandra.password.file, '--cassandra_ssl',
       '--cassandra_ssl_ca_file', cassandra.ca_file], capture_output=True, text=True, timeout=120)
  try:
    assert result.returncode == 0, result.stderr
    tables = secure_session.execute(
        'SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s', (keyspace,))
    assert 'site_stats' in {row.table_name for row in tables}
  finally:
    secure_session.execute(f'DROP KEYSPACE IF EXISTS {keyspace}')
