"""Fixtures on the real local services: Kafka and Cassandra are started through ./run_local.sh when needed.

Every test gets its own topic and keyspace, so tests never see each other's data. If a service cannot be
started, the whole run fails: nothing is skipped.
"""

import logging
import os
import re
import subprocess
import uuid

import pytest

from beam_pipeline.io.cassandra import schema
from beam_pipeline.io.cassandra.connection import build_cluster
from beam_pipeline.devservices.stack import LocalStack
from beam_pipeline.io.security import KafkaSecurity
from beam_pipeline.io.kafka.admin import delete_topics, ensure_topics
from beam_pipeline.testing.jobs import REPO_ROOT

TEST_PARTITIONS = 4

logging.getLogger('cassandra').setLevel(logging.ERROR)
logging.getLogger('kafka').setLevel(logging.WARNING)


def started_stack(secure: bool = False) -> LocalStack:
  """The plain (or secured) local pair, started with ./run_local.sh up [--secure] unless it already answers."""
  stack = LocalStack.from_environment(REPO_ROOT, secure=secure)
  if not stack.all_ready():
    command = [str(REPO_ROOT / 'run_local.sh'), 'up', *(['--secure'] if secure else [])]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
      pytest.fail(f'{" ".join(command[1:])} failed; the tests need real Kafka and Cassandra.\n'
                  f'{result.stdout}\n{result.stderr}', pytrace=False)
  return stack


def fresh_topic(request, bootstrap_servers: str, security: KafkaSecurity = KafkaSecurity()):
  """Yields a new topic with TEST_PARTITIONS partitions and its ``-dlq`` topic; deletes both afterwards."""
  name = _unique_name(request, 't')
  ensure_topics(bootstrap_servers, [name, f'{name}-dlq'], TEST_PARTITIONS, security=security)
  yield name
  delete_topics(bootstrap_servers, [name, f'{name}-dlq'], security=security)


def fresh_keyspace(request, session):
  """Yields a new keyspace holding the site_stats table; drops it afterwards (unless KEEP_TEST_KEYSPACES)."""
  name = _unique_name(request, 'ks')[:48]
  schema.create_schema(session, name)
  yield name
  if not os.environ.get('KEEP_TEST_KEYSPACES'):
    session.execute(f'DROP KEYSPACE IF EXISTS {name}')


@pytest.fixture(scope='session')
def local_stack() -> LocalStack:
  return started_stack()


@pytest.fixture(scope='session')
def bootstrap_servers(local_stack) -> str:
  return local_stack.kafka.address


@pytest.fixture(scope='session')
def cassandra_port(local_stack) -> int:
  return local_stack.cassandra.port


@pytest.fixture(scope='session')
def cassandra_cluster(cassandra_port):
  cluster = build_cluster(['127.0.0.1'], cassandra_port)
  yield cluster
  cluster.shutdown()


@pytest.fixture(scope='session')
def cassandra_session(cassandra_cluster):
  return cassandra_cluster.connect()


def _unique_name(request, prefix: str) -> str:
  test = re.sub(r'[^a-z0-9]+', '_', request.node.name.lower()).strip('_')[:24]
  return f'{prefix}_{test}_{uuid.uuid4().hex[:8]}'


@pytest.fixture
def topic(request, bootstrap_servers) -> str:
  yield from fresh_topic(request, bootstrap_servers)


@pytest.fixture
def keyspace(request, cassandra_session) -> str:
  yield from fresh_keyspace(request, cassandra_session)


@pytest.fixture(scope='session')
def flink_job_server(local_stack):
  """The embedded Flink job server (a Flink mini cluster inside it), started unless it runs; resolving its jars
  is part of starting it. A failure fails the run."""
  from beam_pipeline.runners.flink.job_server import FlinkJobServer
  from beam_pipeline.processes.jvm import JvmSetupError
  from beam_pipeline.processes.local_process import ServiceStartError
  server = FlinkJobServer(REPO_ROOT)
  try:
    server.ensure_running()
  except (JvmSetupError, ServiceStartError) as error:
    pytest.fail(f'the embedded Flink job server did not start; the Flink tests need it.\n{error}', pytrace=False)
  return server


@pytest.fixture(scope='session')
def flink_cluster(local_stack):
  """The local Flink session cluster, started with ./run_local.sh flink-up unless it answers."""
  from beam_pipeline.devservices.flink import FlinkSessionCluster
  cluster = FlinkSessionCluster(REPO_ROOT)
  if not cluster.all_ready():
    result = subprocess.run([str(REPO_ROOT / 'run_local.sh'), 'flink-up'], capture_output=True, text=True)
    if result.returncode != 0:
      pytest.fail(f'flink-up failed; the session cluster tests need it.\n{result.stdout}\n{result.stderr}',
                  pytrace=False)
  return cluster
