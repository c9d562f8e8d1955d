"""A test's own data: a fresh topic and keyspace that no other test sees, and a known dataset produced into it."""

import contextlib
import logging
import os
import re
import uuid
from concurrent import futures
from typing import Iterator, Mapping, Union

from beam_pipeline.io.cassandra import schema
from beam_pipeline.io.kafka.admin import delete_topics, ensure_topics
from beam_pipeline.io.security import KafkaSecurity
from beam_pipeline.tools import produce

TEST_PARTITIONS = 4
# One replica on the one-node test Cassandra, so the default LOCAL_QUORUM (a majority of one) is that replica.
TEST_REPLICATION = {'class': 'SimpleStrategy', 'replication_factor': 1}

_LOGGER = logging.getLogger(__name__)


def unique_name(prefix: str, label: str) -> str:
  """A Kafka- and CQL-safe name starting with ``prefix``, readable from ``label`` (a test's name), never reused."""
  readable = re.sub(r'[^a-z0-9]+', '_', label.lower()).strip('_')[:24]
  return f'{prefix}_{readable}_{uuid.uuid4().hex[:8]}'


@contextlib.contextmanager
def fresh_topic(bootstrap_servers: str, label: str, security: KafkaSecurity = KafkaSecurity()) -> Iterator[str]:
  """A new topic with TEST_PARTITIONS partitions and its ``-dlq`` topic; both are deleted afterwards."""
  name = unique_name('t', label)
  ensure_topics(bootstrap_servers, [name, f'{name}-dlq'], TEST_PARTITIONS, security=security)
  try:
    yield name
  finally:
    delete_topics(bootstrap_servers, [name, f'{name}-dlq'], security=security)


def _new_keyspace(session, label: str, replication: Mapping[str, Union[str, int]] = None) -> str:
  name = unique_name('ks', label)[:48]  # CQL's limit on a keyspace name
  schema.create_schema(session, name, replication=replication or TEST_REPLICATION)
  return name


@contextlib.contextmanager
def fresh_keyspace(session, label: str, replication: Mapping[str, Union[str, int]] = None) -> Iterator[str]:
  """A new keyspace holding the site_stats and lease tables, with ``replication`` (default TEST_REPLICATION: one
  replica, so every consistency level the job accepts but TWO and THREE is met by the one node); dropped afterwards
  unless KEEP_TEST_KEYSPACES is set."""
  name = _new_keyspace(session, label, replication)
  try:
    yield name
  finally:
    if not os.environ.get('KEEP_TEST_KEYSPACES'):
      session.execute(f'DROP KEYSPACE IF EXISTS {name}')


class KeyspaceSupply:
  """Fresh keyspaces as ``fresh_keyspace`` makes them, for one test after another: the next one is created while a
  test runs and a used one is dropped after it, one schema change at a time in a thread of their own, so that their
  time (about 0.3 s to create and 0.4 s to drop on the local Cassandra) overlaps the tests instead of adding to each.
  None is reused: a job a test left running writes only into that test's keyspace, and is refused once it is
  dropped. Named ``ks_test_*``, not after the test: ``fresh_keyspace`` names them, where that matters (debugging with
  KEEP_TEST_KEYSPACES)."""

  def __init__(self, session):
    self._session = session
    self._schema_changes = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix='test-keyspaces')
    self._next = self._schema_changes.submit(self._create)

  def _create(self) -> str:
    return _new_keyspace(self._session, 'test')

  def take(self) -> str:
    try:
      name = self._next.result()
    except Exception as error:  # pylint: disable=broad-except
      # Created while Cassandra was down (a fault test stops it): once more, now, and failing the test if it fails.
      _LOGGER.info('creating a test keyspace ahead failed (%s); creating it now', error)
      name = self._schema_changes.submit(self._create).result()
    self._next = self._schema_changes.submit(self._create)
    return name

  def drop_later(self, name: str) -> None:
    self._schema_changes.submit(self._drop, name)

  def _drop(self, name: str) -> None:
    try:
      self._session.execute(f'DROP KEYSPACE IF EXISTS {name}')
    except Exception as error:  # pylint: disable=broad-except
      _LOGGER.warning('could not drop test keyspace %s: %s', name, error)

  def close(self) -> None:
    """Drops the keyspace created ahead and waits for every drop."""
    try:
      self.drop_later(self._next.result())
    except Exception:  # pylint: disable=broad-except
      pass  # never created
    self._schema_changes.shutdown(wait=True)


def allow_messages_up_to(bootstrap_servers: str, topic: str, max_bytes: int) -> None:
  """Sets the topic's max.message.bytes, as a user whose events are larger than Kafka's default does."""
  from kafka import KafkaAdminClient
  from kafka.admin import ConfigResource, ConfigResourceType
  admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(','))
  try:
    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={'max.message.bytes': str(max_bytes)})])
  finally:
    admin.close()


def produce_dataset(bootstrap_servers: str, topic: str, count: int, keys: int = 200, bad_ratio: float = 0.05,
                    seed: int = 1, security: KafkaSecurity = KafkaSecurity()) -> produce.ExpectedTotals:
  """Produces ``count`` generated messages (``bad_ratio`` of them invalid); returns what they should count to."""
  return produce.produce(bootstrap_servers, topic, produce.generate(count, keys, bad_ratio, seed), security)
