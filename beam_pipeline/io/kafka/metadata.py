"""Topics and partitions as the brokers report them, and the one statement of what a missing topic means."""

import time
from typing import Iterable, Optional

from beam_pipeline.compat.kafka import cluster_topics
from beam_pipeline.errors import KafkaReadError
from beam_pipeline.io.kafka.config import KafkaReadConfig

# A topic created a moment ago may not have reached the broker that answered first: it is called missing only
# when the brokers say so twice, this long apart.
MISSING_TOPIC_RECHECK_S = 1.0


def missing_topic_message(topic: str, bootstrap_servers: str) -> str:
  return (f'topic {topic!r} does not exist on {bootstrap_servers}: check --topic (and --bootstrap_servers), '
          'or create the topic')




def topic_is_missing(consumer, topic: str, timeout_s: float) -> Optional[bool]:
  """Whether the brokers say, twice ``MISSING_TOPIC_RECHECK_S`` apart, that ``topic`` does not exist; None when
  they did not answer within ``timeout_s``."""
  deadline = time.monotonic() + timeout_s
  for attempt in range(2):
    topics = cluster_topics(consumer, max(deadline - time.monotonic(), 0.1))
    if topics is None:
      return None
    if topic in topics:
      return False
    if attempt == 0:
      time.sleep(MISSING_TOPIC_RECHECK_S)
  return True


def wait_for_partitions(consumer, config: KafkaReadConfig) -> Iterable[int]:
  """The topic's partition numbers; raises KafkaReadError naming the topic as soon as the brokers say it does
  not exist, or if they do not answer in time."""
  deadline = time.monotonic() + config.connect_timeout_s
  while True:
    if topic_is_missing(consumer, config.topic, max(deadline - time.monotonic(), 0.1)):
      raise KafkaReadError(missing_topic_message(config.topic, config.bootstrap_servers))
    partitions = consumer.partitions_for_topic(config.topic)
    if partitions:
      return sorted(partitions)
    if time.monotonic() > deadline:
      raise KafkaReadError(
          f'the brokers at {config.bootstrap_servers} sent no metadata for topic {config.topic!r} within '
          f'{config.connect_timeout_s:.0f}s')
    time.sleep(0.5)
