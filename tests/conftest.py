"""Fixtures on the real local services: Kafka and Cassandra are started through ./run_local.sh when needed.

Every test gets its own topic and keyspace, so tests never see each other's data. If a service cannot be
started, the whole run fails: nothing is skipped.
"""

import logging
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from beam_pipeline import schema
from beam_pipeline.cassandra_connection import build_cluster
from beam_pipeline.local.stack import LocalStack
from beam_pipeline.topics import delete_topics, ensure_topics

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_PARTITIONS = 4

logging.getLogger('cassandra').setLevel(logging.ERROR)
logging.getLogger('kafka').setLevel(logging.WARNING)


@pytest.fixture(scope='session')
def local_stack() -> LocalStack:
  stack = LocalStack.from_environment(REPO_ROOT)
  if not stack.all_ready():
    result = subprocess.run([str(REPO_ROOT / 'run_local.sh'), 'up'], capture_output=True, text=True)
    if result.returncode != 0:
      pytest.fail(f'./run_local.sh up failed; the tests need real Kafka and Cassandra.\n'
                  f'{result.stdout}\n{result.stderr}', pytrace=False)
  return stack


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


@pytest.fixture(scope='session')
def kafka_admin(bootstrap_servers):
  admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
  yield admin
  admin.close()


def _unique_name(request, prefix: str) -> str:
  test = re.sub(r'[^a-z0-9]+', '_', request.node.name.lower()).strip('_')[:24]
  return f'{prefix}_{test}_{uuid.uuid4().hex[:8]}'


@pytest.fixture
def topic(request, kafka_admin, bootstrap_servers) -> str:
  """A fresh topic with TEST_PARTITIONS partitions and its ``-dlq`` topic, both deleted after the test."""
  name = _unique_name(request, 't')
  ensure_topics(bootstrap_servers, [name, f'{name}-dlq'], TEST_PARTITIONS)
  yield name
  delete_topics(bootstrap_servers, [name, f'{name}-dlq'])


@pytest.fixture
def keyspace(request, cassandra_session) -> str:
  """A fresh keyspace holding the site_stats table, dropped after the test."""
  name = _unique_name(request, 'ks')[:48]
  schema.create_schema(cassandra_session, name)
  yield name
  if not os.environ.get('KEEP_TEST_KEYSPACES'):
    cassandra_session.execute(f'DROP KEYSPACE IF EXISTS {name}')
