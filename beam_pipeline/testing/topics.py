"""What a topic holds (its records, its dead letters) and what a consumer group has committed on it."""

import json
import time
from typing import Dict, List, Optional

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from beam_pipeline.io.security import KafkaSecurity


def read_topic(bootstrap_servers: str, topic: str, timeout_s: float = 30,
               security: KafkaSecurity = KafkaSecurity()) -> list:
  """Every record now in the topic, read from the beginning up to the end offsets."""
  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                           receive_message_max_bytes=64 * 1024 * 1024, **security.client_config())
  try:
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    records, deadline = [], time.monotonic() + timeout_s
    while any(consumer.position(tp) < end[tp] for tp in partitions):
      if time.monotonic() > deadline:
        raise TimeoutError(f'could not read {topic} to its end within {timeout_s}s')
      for batch in consumer.poll(timeout_ms=500).values():
        records.extend(batch)
    return records
  finally:
    consumer.close()


def read_dead_letters(bootstrap_servers: str, topic: str, security: KafkaSecurity = KafkaSecurity()) -> List[dict]:
  """The dead letters the job published for ``topic`` (to ``<topic>-dlq``), as documents."""
  return [json.loads(record.value) for record in read_topic(bootstrap_servers, f'{topic}-dlq', security=security)]


class TopicOffsets:
  """A topic's end offsets and a group's committed ones, through one consumer kept open while a test polls.

  Every call asks the broker afresh (partitions included, so a topic that grows is seen at once).
  """

  def __init__(self, bootstrap_servers: str, topic: str, group: Optional[str] = None):
    self._topic = topic
    self._consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False)

  def _partitions(self) -> List[TopicPartition]:
    self._consumer.topics()  # refreshes the metadata the partitions come from
    return [TopicPartition(self._topic, p) for p in self._consumer.partitions_for_topic(self._topic)]

  def end(self) -> Dict[int, int]:
    return {tp.partition: offset for tp, offset in self._consumer.end_offsets(self._partitions()).items()}

  def committed(self) -> Dict[int, Optional[int]]:
    return {tp.partition: self._consumer.committed(tp) for tp in self._partitions()}

  def all_committed(self) -> bool:
    return self.committed() == self.end()

  def close(self):
    self._consumer.close()

  def __enter__(self):
    return self

  def __exit__(self, *unused_exc_info):
    self.close()


def committed_offsets(bootstrap_servers: str, group: str, topic: str) -> Dict[int, Optional[int]]:
  with TopicOffsets(bootstrap_servers, topic, group) as offsets:
    return offsets.committed()


def end_offsets(bootstrap_servers: str, topic: str) -> Dict[int, int]:
  with TopicOffsets(bootstrap_servers, topic) as offsets:
    return offsets.end()


def commit_offsets(bootstrap_servers: str, group: str, topic: str, offsets: Dict[int, int]) -> None:
  """Commits ``{partition: offset}`` for the group, as a consumer of that group that had read up to there would."""
  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False)
  try:
    consumer.commit({TopicPartition(topic, partition): OffsetAndMetadata(offset, '', -1)
                     for partition, offset in offsets.items()})
  finally:
    consumer.close()
