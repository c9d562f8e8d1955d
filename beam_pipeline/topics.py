"""Creating the Kafka topics the job reads and dead-letters to, for local runs, demos and benchmarks."""

import logging
import time
from typing import Iterable

from beam_pipeline.security import KafkaSecurity

_LOGGER = logging.getLogger(__name__)


def ensure_topics(bootstrap_servers: str, names: Iterable[str], partitions: int, timeout_s: float = 60,
                  security: KafkaSecurity = KafkaSecurity()) -> None:
  """Creates each topic that does not exist yet and waits until its metadata is visible."""
  from kafka import KafkaAdminClient, KafkaConsumer
  from kafka.admin import NewTopic
  from kafka.errors import TopicAlreadyExistsError
  names = list(names)
  admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(','), **security.client_config())
  try:
    existing = set(admin.list_topics())
    missing = [n for n in names if n not in existing]
    if missing:
      try:
        admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing])
      except TopicAlreadyExistsError:
        pass
      _LOGGER.info('created topics %s with %d partitions', ', '.join(missing), partitions)
  finally:
    admin.close()
  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(','), enable_auto_commit=False,
                           **security.client_config())
  try:
    deadline = time.monotonic() + timeout_s
    while any(not consumer.partitions_for_topic(n) for n in names):
      if time.monotonic() > deadline:
        raise TimeoutError(f'topics {names} not visible on {bootstrap_servers} after {timeout_s:.0f}s')
      time.sleep(0.2)
  finally:
    consumer.close()


def delete_topics(bootstrap_servers: str, names: Iterable[str], security: KafkaSecurity = KafkaSecurity()) -> None:
  from kafka import KafkaAdminClient
  from kafka.errors import UnknownTopicOrPartitionError
  admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(','), **security.client_config())
  try:
    existing = set(admin.list_topics())
    doomed = [n for n in names if n in existing]
    if doomed:
      try:
        admin.delete_topics(doomed)
      except UnknownTopicOrPartitionError:
        pass
  finally:
    admin.close()
