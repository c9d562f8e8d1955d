"""A test's own data: a fresh topic and keyspace that no other test sees, and a known dataset produced into it."""

import contextlib
import os
import re
import uuid
from typing import Iterator

from beam_pipeline.io.cassandra import schema
from beam_pipeline.io.kafka.admin import delete_topics, ensure_topics
from beam_pipeline.io.security import KafkaSecurity
from beam_pipeline.tools import produce

TEST_PARTITIONS = 4


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


@contextlib.contextmanager
def fresh_keyspace(session, label: str) -> Iterator[str]:
  """A new keyspace holding the site_stats table; dropped afterwards unless KEEP_TEST_KEYSPACES is set."""
  name = unique_name('ks', label)[:48]  # CQL's limit on a keyspace name
  schema.create_schema(session, name)
  try:
    yield name
  finally:
    if not os.environ.get('KEEP_TEST_KEYSPACES'):
      session.execute(f'DROP KEYSPACE IF EXISTS {name}')


def produce_dataset(bootstrap_servers: str, topic: str, count: int, keys: int = 200, bad_ratio: float = 0.05,
                    seed: int = 1, security: KafkaSecurity = KafkaSecurity()) -> produce.ExpectedTotals:
  """Produces ``count`` generated messages (``bad_ratio`` of them invalid); returns what they should count to."""
  return produce.produce(bootstrap_servers, topic, produce.generate(count, keys, bad_ratio, seed), security)
