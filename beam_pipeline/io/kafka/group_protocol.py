"""Kafka's consumer group protocol through either client, for a copy's member of its group (membership.py): join
by subscribing, hold the assigned partitions without fetching them, read and commit the group's offsets.

librdkafka rebalances cooperatively (cooperative-sticky): a rebalance revokes and assigns only the partitions that
change hands, and the other copies read on. kafka-python knows only the eager protocol: every rebalance revokes
every partition of every member, then assigns them again (sticky: mostly to the same copies).

Both report revoked and assigned partitions as sets of (topic, partition), from inside ``poll``.
"""

import logging
from typing import Callable, Dict, Iterable, Optional, Set, Tuple

from beam_pipeline.compat.kafka import finish_rebalance
from beam_pipeline.io.kafka.config import KafkaReadConfig
from beam_pipeline.io.kafka.fetch import KAFKA_PYTHON

_LOGGER = logging.getLogger(__name__)

Partition = Tuple[str, int]
_JOIN_REQUEST_TIMEOUT_MS = 75000
Callback = Callable[[Set[Partition]], None]


def _pattern(config: KafkaReadConfig) -> Optional[str]:
  # A group, not (?:...): librdkafka's regular expressions know only the plain kind.
  return f'^({config.topic_pattern})$' if config.topic_pattern else None


class KafkaPythonGroup:
  """kafka-python's group protocol: eager, sticky assignment."""

  protocol = 'eager (sticky)'

  def __init__(self, config: KafkaReadConfig, on_revoked: Callback, on_assigned: Callback):
    from kafka import ConsumerRebalanceListener
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
    self._consumer = config.consumer(
        'member', partition_assignment_strategy=[StickyPartitionAssignor],
        # A JoinGroup request is answered once every member has rejoined, after its revoke callback: longer than
        # the default request timeout (30 s) when a copy waits the whole release deadline for its readers.
        request_timeout_ms=_JOIN_REQUEST_TIMEOUT_MS,
        # A pattern subscription sees new topics when metadata is refreshed.
        metadata_max_age_ms=int(config.topic_discovery_interval_s * 1000))
    consumer = self._consumer
    self._rebalancing = False  # revoked, and not assigned since
    group = self

    class _Listener(ConsumerRebalanceListener):

      def on_partitions_revoked(self, revoked):
        group._rebalancing = True
        on_revoked({(tp.topic, tp.partition) for tp in revoked})

      def on_partitions_assigned(self, assigned):
        group._rebalancing = False
        consumer.pause(*assigned)  # the member fetches nothing: its copy's readers do
        on_assigned({(tp.topic, tp.partition) for tp in assigned})

    pattern = _pattern(config)
    if pattern:
      self._consumer.subscribe(pattern=pattern, listener=_Listener())
    else:
      self._consumer.subscribe(topics=list(config.topics), listener=_Listener())

  @property
  def client_id(self) -> str:
    return self._consumer.config['client_id']

  def poll(self, timeout_s: float) -> None:
    self._consumer.poll(timeout_ms=int(timeout_s * 1000))
    if self._rebalancing:
      # The revoke callback waits for the readers, so a poll's deadline may pass in the middle of the join.
      finish_rebalance(self._consumer)

  def committed(self, partitions: Iterable[Partition], timeout_s: float) -> Dict[Partition, Optional[int]]:
    from kafka import TopicPartition
    return {(topic, partition): self._consumer.committed(TopicPartition(topic, partition),
                                                         timeout_ms=int(timeout_s * 1000))
            for topic, partition in partitions}

  def commit(self, offsets: Dict[Partition, int], timeout_s: float) -> None:
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata
    self._consumer.commit({TopicPartition(*p): OffsetAndMetadata(offset, '', -1) for p, offset in offsets.items()},
                          timeout_ms=int(timeout_s * 1000))

  def close(self) -> None:
    self._consumer.close(autocommit=False)


class LibrdkafkaGroup:
  """librdkafka's group protocol: cooperative-sticky."""

  protocol = 'cooperative-sticky'

  def __init__(self, config: KafkaReadConfig, on_revoked: Callback, on_assigned: Callback):
    from confluent_kafka import Consumer
    from beam_pipeline.io.kafka.fetch_librdkafka import client_settings
    settings = client_settings(config, 'member')
    settings.setdefault('partition.assignment.strategy', 'cooperative-sticky')
    settings.setdefault('topic.metadata.refresh.interval.ms', int(config.topic_discovery_interval_s * 1000))
    self._client_id = settings['client.id']
    self._consumer = Consumer(settings)
    self._revoking = False  # inside the revoke callback, on the thread that polls

    def assign(consumer, partitions):
      # Assigned here rather than by the client after the callback, so that they can be paused before any fetch.
      consumer.incremental_assign(partitions)
      consumer.pause(partitions)
      on_assigned({(tp.topic, tp.partition) for tp in partitions})

    def revoke(unused_consumer, partitions):
      self._revoking = True
      try:
        on_revoked({(tp.topic, tp.partition) for tp in partitions})
      finally:
        self._revoking = False

    self._consumer.subscribe([_pattern(config)] if config.topic_pattern else list(config.topics),
                             on_assign=assign, on_revoke=revoke)

  @property
  def client_id(self) -> str:
    return self._client_id

  def poll(self, timeout_s: float) -> None:
    message = self._consumer.poll(timeout_s)
    if message is not None and message.error() is not None:
      _LOGGER.warning('consumer group member: %s', message.error().str())

  def committed(self, partitions: Iterable[Partition], timeout_s: float) -> Dict[Partition, Optional[int]]:
    from confluent_kafka import TopicPartition
    answer = self._consumer.committed([TopicPartition(topic, partition) for topic, partition in partitions],
                                      timeout=timeout_s)
    return {(tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None for tp in answer}

  def commit(self, offsets: Dict[Partition, int], timeout_s: float) -> None:
    from confluent_kafka import TopicPartition
    from beam_pipeline.io.kafka.fetch_librdkafka import CommitInThread
    positions = [TopicPartition(topic, partition, offset) for (topic, partition), offset in offsets.items()]
    if self._revoking:
      # Sent from another thread while the revoke callback waits, a commit went unanswered (the partition then
      # moved uncommitted); from the callback's own thread it is answered. It has no deadline there.
      self._consumer.commit(offsets=positions, asynchronous=False)
      return
    CommitInThread(self._consumer, positions, 'member-commit').wait(timeout_s)

  def close(self) -> None:
    self._consumer.close()


def join_group(config: KafkaReadConfig, on_revoked: Callback, on_assigned: Callback):
  """The group protocol of the job's Kafka client (``--kafka_client``)."""
  group = KafkaPythonGroup if config.kafka_client == KAFKA_PYTHON else LibrdkafkaGroup
  return group(config, on_revoked, on_assigned)
