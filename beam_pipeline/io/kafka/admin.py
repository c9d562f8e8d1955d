"""Creating Kafka topics: the job's dead-letter topic when it is missing, and the topics of local runs, demos and
benchmarks."""

import logging
import time
from typing import Iterable, List, Tuple

from beam_pipeline.io.security import KafkaSecurity

_LOGGER = logging.getLogger(__name__)


def ensure_topics(bootstrap_servers: str, names: Iterable[str], partitions: int, timeout_s: float = 60,
                  security: KafkaSecurity = KafkaSecurity()) -> None:
  """Creates each topic that does not exist yet and waits until its metadata is visible."""
  from kafka import KafkaAdminClient
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
  wait_until_visible(bootstrap_servers, names, timeout_s, security)


def wait_until_visible(bootstrap_servers: str, names: Iterable[str], timeout_s: float,
                       security: KafkaSecurity = KafkaSecurity()) -> None:
  """Waits until the brokers report every one of the topics (a new topic's metadata spreads in a moment)."""
  from kafka import KafkaConsumer
  names = list(names)
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


class TopicCreationError(RuntimeError):
  """The brokers refused to create a topic (no permission, too few brokers for the replication factor, ...)."""


def default_replication_factor(broker_count: int) -> int:
  """Three copies where the cluster has three brokers, fewer only where it has fewer."""
  return max(1, min(3, broker_count))


def create_topic(bootstrap_servers: str, name: str, partitions: int, replication_factor: int,
                 security: KafkaSecurity = KafkaSecurity(), timeout_s: float = 30) -> bool:
  """Creates one topic and waits until the brokers report it; False if it existed (another client may have
  created it first). Raises TopicCreationError with the brokers' reason."""
  from kafka import KafkaAdminClient
  from kafka.admin import NewTopic
  from kafka.errors import KafkaError, TopicAlreadyExistsError
  admin = None
  try:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(','),
                             request_timeout_ms=int(timeout_s * 1000), **security.client_config())
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)],
                        timeout_ms=int(timeout_s * 1000))
  except TopicAlreadyExistsError:
    return False
  except KafkaError as error:
    raise TopicCreationError(
        f'the brokers at {bootstrap_servers} refused to create topic {name!r} ({partitions} partitions, '
        f'replication factor {replication_factor}): {error}') from None
  finally:
    if admin is not None:
      admin.close()
  wait_until_visible(bootstrap_servers, [name], timeout_s, security)
  return True


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


# Kafka's own default for a topic's max.message.bytes (the broker's message.max.bytes), used when the topic's
# setting cannot be read.
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1048588


class TopicConfigError(RuntimeError):
  """A topic's configuration could not be read."""


def topic_max_message_bytes(bootstrap_servers: str, topic: str, security: KafkaSecurity = KafkaSecurity(),
                            timeout_s: float = 30) -> int:
  """The largest record batch the brokers accept on ``topic`` (its max.message.bytes, as set on the topic or
  inherited from the broker). Raises TopicConfigError when the brokers do not say (no such topic, no
  DescribeConfigs permission, no answer)."""
  from kafka import KafkaAdminClient
  from kafka.admin import ConfigResource, ConfigResourceType
  from kafka.errors import KafkaError, for_code
  admin = None
  try:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(','),
                             request_timeout_ms=int(timeout_s * 1000), **security.client_config())
    responses = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={'max.message.bytes': None})])
  except KafkaError as error:
    raise TopicConfigError(f'{topic!r}: {error}') from None
  finally:
    if admin is not None:
      admin.close()
  for response in responses:
    for resource in response.to_object()['resources']:
      if resource['error_code']:
        raise TopicConfigError(f'{topic!r}: {for_code(resource["error_code"]).__name__}')
      for entry in resource['config_entries']:
        if entry['config_names'] == 'max.message.bytes':
          return int(entry['config_value'])
  raise TopicConfigError(f'{topic!r}: the brokers did not report its max.message.bytes')


def active_group_members(bootstrap_servers: str, group: str, security: KafkaSecurity = KafkaSecurity(),
                         timeout_s: float = 10) -> List[Tuple[str, str]]:
  """The (client id, host) of each member the consumer group has now: its subscribed consumers."""
  from kafka import KafkaAdminClient
  from kafka.errors import KafkaError
  admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(','), request_timeout_ms=int(timeout_s * 1000),
                           **security.client_config())
  deadline = time.monotonic() + timeout_s
  try:
    while True:
      try:
        described, = admin.describe_consumer_groups([group])
        break
      except KafkaError as error:
        # The admin client raises what the brokers answer, retriable or not: a new cluster has no group
        # coordinator until it has created its offsets topic.
        if not error.retriable or time.monotonic() > deadline:
          raise
        time.sleep(0.5)
  finally:
    admin.close()
  return sorted((member.client_id, member.client_host.lstrip('/')) for member in described.members)
