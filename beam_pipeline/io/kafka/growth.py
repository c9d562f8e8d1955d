"""What the topics gain while a streaming job runs: partitions of the topics it reads, and (with a topic pattern)
matching topics created after the job planned its reads.

A partition the topic may gain has its own planned read, which waits until the partition exists. New topics are
read by one element (a NewTopicsRead) whose restriction holds the position reached in each of their
partitions. One element, because the planner cannot know the names of topics yet to come, and readers of separate
elements, on separate workers, could not agree on which of them reads which new topic; one reader per partition
keeps each partition's committed offset a single position. After a restart the planner finds those topics and
spreads their partitions like any other's, from the offsets committed meanwhile.
"""

import logging
import time
from typing import List

from beam_pipeline.compat.kafka import refresh_metadata
from beam_pipeline.io.kafka.metadata import matching_topics

_LOGGER = logging.getLogger(__name__)
# How long one look for new topics waits for the brokers' answer.
_DISCOVERY_TIMEOUT_S = 5.0
# How often a reader asks the brokers whether the topics gained partitions, and how long it waits for the answer.
PARTITION_CHECK_INTERVAL_S = 5.0
_PARTITION_CHECK_TIMEOUT_S = 5.0


class NewPartitionsWatch:
  """Whether a partition a topic may gain exists yet, asked of the brokers at most every
  PARTITION_CHECK_INTERVAL_S (a reader's consumer, shared with its reads: ``lock`` guards it)."""

  def __init__(self, consumer, lock):
    self._consumer = consumer
    self._lock = lock
    self._existing = set()  # (topic, partition)
    self._watched_topics = set()  # the topics of the partitions waited for
    self._checked_at = float('-inf')

  def exists(self, topic: str, partition: int) -> bool:
    if (topic, partition) in self._existing:
      return True
    self._watched_topics.add(topic)
    if time.monotonic() - self._checked_at >= PARTITION_CHECK_INTERVAL_S:
      self._checked_at = time.monotonic()
      with self._lock:
        refresh_metadata(self._consumer, _PARTITION_CHECK_TIMEOUT_S)
        found = {(name, number) for name in self._watched_topics
                 for number in self._consumer.partitions_for_topic(name) or ()}
      for name, number in sorted(found - self._existing):
        _LOGGER.info('%s: partition %d exists', name, number)
      self._existing |= found
    return (topic, partition) in self._existing


class NewTopicsWatch:
  """The partitions of the matching topics the job planned no reads for, asked of the brokers at most every
  ``interval_s`` (a reader's consumer, shared with its reads: ``lock`` guards it)."""

  def __init__(self, consumer, lock, pattern: str, interval_s: float):
    self._consumer = consumer
    self._lock = lock
    self._pattern = pattern
    self._interval_s = interval_s
    self._checked_at = float('-inf')
    self._partitions: List = []
    self._seen_topics = set()

  def partitions(self, known_topics) -> List:
    """TopicPartitions of every new matching topic, as of the last look."""
    from kafka import TopicPartition
    if time.monotonic() - self._checked_at < self._interval_s:
      return self._partitions
    self._checked_at = time.monotonic()
    with self._lock:
      matching = matching_topics(self._consumer, self._pattern, _DISCOVERY_TIMEOUT_S)
      if matching is None:
        return self._partitions  # no answer this time: keep reading what was found, look again later
      new = [topic for topic in matching if topic not in known_topics]
      self._partitions = [TopicPartition(topic, partition) for topic in new
                          for partition in sorted(self._consumer.partitions_for_topic(topic) or ())]
    for topic in sorted(set(new) - self._seen_topics):
      _LOGGER.info('%s: new topic matching %r, read from its first offset', topic, self._pattern)
    self._seen_topics |= set(new)
    return self._partitions
