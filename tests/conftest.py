"""Fixtures on the real local services: Kafka and Cassandra are started through ./run_local.sh when needed.

Every test gets its own topic and keyspace, so tests never see each other's data. If a service cannot be
started, the whole run fails: nothing is skipped. What the fixtures do lives in beam_pipeline/testing/.

A test that uses any service fixture is marked ``needs_services``; the others make ``./run_tests.sh --quick``.
"""

import logging
import os

import pytest
from hypothesis import settings

from beam_pipeline.devservices.stack import LocalStack
from beam_pipeline.io.cassandra.connection import build_cluster
from beam_pipeline.io.kafka.fetch import KAFKA_CLIENTS
from beam_pipeline.processes.local_process import ServiceStartError
from beam_pipeline.testing import services
from beam_pipeline.testing.datasets import KeyspaceSupply, fresh_keyspace, fresh_topic

logging.getLogger('cassandra').setLevel(logging.ERROR)
logging.getLogger('kafka').setLevel(logging.WARNING)

# Generated examples per property: many by default; ./run_tests.sh --quick passes --hypothesis-profile=quick.
settings.register_profile('thorough', max_examples=2000, deadline=None)
settings.register_profile('quick', max_examples=200, deadline=None)
settings.load_profile('thorough')

# The fixtures that start or reach a service; every other fixture that needs one depends on one of these.
SERVICE_FIXTURES = {'local_stack', 'secure_stack', 'other_kafka', 'other_cassandra_port', 'flink_job_server',
                    'flink_cluster'}
_SERVICES_USED = pytest.StashKey[bool]()


def pytest_collection_modifyitems(items):
  for item in items:
    if SERVICE_FIXTURES.intersection(getattr(item, 'fixturenames', ())):
      item.add_marker(pytest.mark.needs_services)


def pytest_runtest_setup(item):
  if item.get_closest_marker('needs_services'):
    item.config.stash[_SERVICES_USED] = True


def pytest_terminal_summary(terminalreporter, config):
  """After a run that used the services: which are still running, and the commands that stop them."""
  if not config.stash.get(_SERVICES_USED, False):
    return
  running = services.left_running()
  if not running:
    return
  terminalreporter.section('local services left running')
  for stop_command, lines in running:
    for line in lines:
      terminalreporter.write_line(line)
    terminalreporter.write_line(f'  stop them with: {stop_command}')


def _started(start, what: str):
  try:
    return start()
  except ServiceStartError as error:
    pytest.fail(f'{what} did not start; the tests need it.\n{error}', pytrace=False)


@pytest.fixture(scope='session')
def local_stack() -> LocalStack:
  return _started(services.started_stack, 'the local Kafka and Cassandra')


@pytest.fixture(scope='session')
def secure_stack() -> LocalStack:
  return _started(lambda: services.started_stack(secure=True), 'the secured Kafka and Cassandra')


@pytest.fixture(scope='session', params=services.COMPATIBLE_KAFKA)
def other_kafka(request, local_stack) -> str:
  """The address of a broker of another Kafka release the project supports (beside the usual Cassandra)."""
  return _started(lambda: services.started_stack(kafka_version=request.param),
                  f'the local Kafka {request.param}').kafka.address


@pytest.fixture(scope='session', params=services.COMPATIBLE_CASSANDRA)
def other_cassandra_port(request, local_stack) -> int:
  """The native port of a node of another Cassandra release the project supports (beside the usual Kafka)."""
  return _started(lambda: services.started_stack(cassandra_version=request.param),
                  f'the local Cassandra {request.param}').cassandra.port


@pytest.fixture(scope='session')
def bootstrap_servers(local_stack) -> str:
  return local_stack.kafka.address


@pytest.fixture(scope='session')
def cassandra_port(local_stack) -> int:
  return local_stack.cassandra.port


@pytest.fixture(scope='session')
def cassandra_cluster(cassandra_port):
  # It leaves out the schema changes Cassandra pushes to every client (the keyspace supply makes them while other
  # tests run): the driver handles each with a delay drawn from the random module, which a Hypothesis test's
  # generation then sees change. Its own schema changes still refresh its metadata.
  cluster = build_cluster(['127.0.0.1'], cassandra_port, schema_event_refresh_window=-1)
  yield cluster
  cluster.shutdown()


@pytest.fixture(scope='session')
def cassandra_session(cassandra_cluster):
  return cassandra_cluster.connect()


@pytest.fixture
def topic(request, bootstrap_servers) -> str:
  with fresh_topic(bootstrap_servers, request.node.name) as name:
    yield name


@pytest.fixture(scope='session')
def keyspace_supply(cassandra_session):
  supply = KeyspaceSupply(cassandra_session)
  yield supply
  supply.close()


@pytest.fixture
def keyspace(request, cassandra_session, keyspace_supply) -> str:
  """A keyspace of the test's own (datasets.fresh_keyspace); with KEEP_TEST_KEYSPACES set, named after the test and
  kept afterwards."""
  if os.environ.get('KEEP_TEST_KEYSPACES'):
    with fresh_keyspace(cassandra_session, request.node.name) as name:
      yield name
    return
  name = keyspace_supply.take()
  try:
    yield name
  finally:
    keyspace_supply.drop_later(name)


@pytest.fixture(params=KAFKA_CLIENTS)
def kafka_client(request) -> str:
  """A test about reading runs once with each client the reader can fetch with (--kafka_client)."""
  return request.param


@pytest.fixture(scope='session')
def flink_job_server(local_stack):
  """The embedded Flink job server (a Flink mini cluster inside it), started unless it runs."""
  return _started(services.started_job_server, 'the embedded Flink job server')


@pytest.fixture(scope='session')
def flink_cluster(local_stack):
  """The local Flink session cluster, started with ./run_local.sh flink-up unless it answers."""
  return _started(services.started_flink_cluster, 'the Flink session cluster')
