"""Topics and partitions as the brokers report them, and the one statement of what a missing topic means."""

import re
import time
from typing import Dict, List, Optional, Sequence

from beam_pipeline.compat.kafka import cluster_topics
from beam_pipeline.errors import KafkaReadError
from beam_pipeline.io.kafka.config import KafkaReadConfig

# A topic created a moment ago may not have reached the broker that answered first: it is called missing only
# when the brokers say so twice, this long apart.
MISSING_TOPIC_RECHECK_S = 1.0


def missing_topic_message(topics: Sequence[str], bootstrap_servers: str) -> str:
  names = ', '.join(repr(topic) for topic in topics)
  what = f'topic {names} does not exist' if len(topics) == 1 else f'topics {names} do not exist'
  return f'{what} on {bootstrap_servers}: check --topic (and --bootstrap_servers), or create the topic'


def missing_topics(consumer, topics: Sequence[str], timeout_s: float) -> Optional[List[str]]:
  """Those of ``topics`` that the brokers say, twice ``MISSING_TOPIC_RECHECK_S`` apart, do not exist; None when
  they did not answer within ``timeout_s``."""
  deadline = time.monotonic() + timeout_s
  missing = list(topics)
  for attempt in range(2):
    existing = cluster_topics(consumer, max(deadline - time.monotonic(), 0.1))
    if existing is None:
      return None
    missing = [topic for topic in missing if topic not in existing]
    if not missing or attempt == 1:
      return missing
    time.sleep(MISSING_TOPIC_RECHECK_S)
  return missing


def no_matching_topic_message(pattern: str, bootstrap_servers: str) -> str:
  return (f'no topic on {bootstrap_servers} matches --topic_pattern {pattern!r}: check the pattern (it must match '
          'whole names) and --bootstrap_servers, or create a matching topic')


def matching_topics(consumer, pattern: str, timeout_s: float) -> Optional[List[str]]:
  """The topics whose whole name matches ``pattern``, sorted (Kafka's internal topics never); None when the
  brokers did not answer within ``timeout_s``."""
  existing = cluster_topics(consumer, timeout_s)
  if existing is None:
    return None
  compiled = re.compile(pattern)
  return sorted(topic for topic in existing if compiled.fullmatch(topic) and not topic.startswith('__'))


def wait_for_partitions(consumer, config: KafkaReadConfig, topics: Sequence[str]) -> Dict[str, List[int]]:
  """Each topic's partition numbers; raises KafkaReadError naming the topics as soon as the brokers say they do
  not exist, or if they do not answer in time."""
  deadline = time.monotonic() + config.connect_timeout_s
  while True:
    missing = missing_topics(consumer, topics, max(deadline - time.monotonic(), 0.1))
    if missing:
      raise KafkaReadError(missing_topic_message(missing, config.bootstrap_servers))
    partitions = {topic: sorted(consumer.partitions_for_topic(topic) or ()) for topic in topics}
    waiting = [topic for topic, numbers in partitions.items() if not numbers]
    if not waiting:
      return partitions
    if time.monotonic() > deadline:
      raise KafkaReadError(
          f'the brokers at {config.bootstrap_servers} sent no metadata for topic {waiting[0]!r} within '
          f'{config.connect_timeout_s:.0f}s')
    time.sleep(0.5)
