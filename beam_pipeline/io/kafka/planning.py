"""The reads a job plans at start: one PartitionRead per partition, with its offsets resolved."""

import logging
from typing import Dict, List, Optional

import apache_beam as beam

from beam_pipeline.io.kafka.config import KafkaReadConfig
from beam_pipeline.errors import KafkaReadError
from beam_pipeline.io.kafka.placement import spread_over_readers
from beam_pipeline.io.kafka.metadata import matching_topics, no_matching_topic_message, wait_for_partitions
from beam_pipeline.records import UNBOUNDED_STOP_OFFSET, NewTopicsRead, PartitionRead

_LOGGER = logging.getLogger(__name__)


def _topics_to_read(consumer, config: KafkaReadConfig, log_plan: bool) -> List[str]:
  """The topics named, or those matching the pattern now; KafkaReadError when a bounded read has none."""
  if not config.topic_pattern:
    return list(config.topics)
  topics = matching_topics(consumer, config.topic_pattern, config.connect_timeout_s)
  if topics is None:
    raise KafkaReadError(f'the brokers at {config.bootstrap_servers} sent no topic list within '
                         f'{config.connect_timeout_s:.0f}s')
  if not topics and config.bounded:
    raise KafkaReadError(no_matching_topic_message(config.topic_pattern, config.bootstrap_servers))
  if log_plan:
    _LOGGER.info('--topic_pattern %r matches %d topics now%s', config.topic_pattern, len(topics),
                 f': {", ".join(topics)}' if topics else '; waiting for one to be created')
  return topics


def plan_partition_reads(config: KafkaReadConfig, log_plan: bool = False) -> List:
  """One PartitionRead per partition of each topic, with offsets resolved now; streaming, also one per partition
  each topic may gain and, with a topic pattern, a NewTopicsRead for the matching topics created later. The
  reader plans at job start; a bounded run's launcher plans too, to know how much it will read."""
  from kafka import TopicPartition
  consumer = config.connected_consumer('planner')
  try:
    topics = _topics_to_read(consumer, config, log_plan)
    numbers = wait_for_partitions(consumer, config, topics) if topics else {}
    partitions = [TopicPartition(topic, p) for topic in topics for p in numbers[topic]]
    beginning = consumer.beginning_offsets(partitions)
    # With isolation_level read_committed, the last stable offset: a bounded run stops before open transactions.
    end = consumer.end_offsets(partitions)
    start_at_time = _offsets_at(consumer, partitions, config.start_time_ms, end)
    stop_at_time = _offsets_at(consumer, partitions, config.stop_time_ms, end)
    start_offsets = {(topic, partition): offset for topic, partition, offset in config.start_offsets}
    stop_offsets = {(topic, partition): offset for topic, partition, offset in config.stop_offsets}
    reads = []
    for tp in partitions:
      committed = (consumer.committed(tp, timeout_ms=int(config.connect_timeout_s * 1000))
                   if config.consumer_group and config.use_committed_offsets else None)
      if tp in start_offsets:
        start = start_offsets[tp]
      elif committed is not None:
        start = committed
      elif start_at_time is not None:
        start = start_at_time[tp]
      else:
        start = beginning[tp] if config.start_offset == 'earliest' else end[tp]
      if start < beginning[tp]:
        _LOGGER.warning('%s: offsets %d..%d expired before they were read; starting at %d',
                        tp, start, beginning[tp] - 1, beginning[tp])
        start = beginning[tp]
      if config.bounded:
        stop = stop_at_time[tp] if stop_at_time is not None else end[tp]
        stop = min(stop_offsets.get(tp, stop), end[tp])
        stop = max(stop, start)
      else:
        stop = UNBOUNDED_STOP_OFFSET
      reads.append(PartitionRead(tp.topic, tp.partition, start, stop))
      if log_plan:
        _LOGGER.info('%s: reading offsets [%d, %s)%s', tp, start, stop if config.bounded else 'unbounded',
                     ' from the committed offset' if committed is not None else '')
    if not config.bounded and config.partition_headroom:
      for topic in topics:
        reads += _partitions_to_come(topic, max(numbers[topic]) + 1, config.partition_headroom, log_plan)
    if not config.bounded and config.topic_pattern:
      reads.append(NewTopicsRead(tuple(topics)))
    return spread_over_readers(reads, config.parallel_readers, config.max_parallelism)
  finally:
    consumer.close(autocommit=False)


def _partitions_to_come(topic: str, first: int, headroom: int, log_plan: bool) -> List[PartitionRead]:
  """Partitions the topic may gain later: all they will hold is new, so they are read from their start."""
  if log_plan:
    _LOGGER.info('%s: partitions %d..%d will be read if the topic gains them', topic, first, first + headroom - 1)
  return [PartitionRead(topic, partition, 0, UNBOUNDED_STOP_OFFSET, awaits_creation=True)
          for partition in range(first, first + headroom)]


def _offsets_at(consumer, partitions, time_ms, end) -> Optional[Dict]:
  if time_ms is None:
    return None
  found = consumer.offsets_for_times({tp: time_ms for tp in partitions})
  return {tp: found[tp].offset if found.get(tp) is not None else end[tp] for tp in partitions}


class PlanPartitionReadsFn(beam.DoFn):
  """Turns the impulse into one PartitionRead per partition, with offsets resolved at job start."""

  def __init__(self, config: KafkaReadConfig):
    self._config = config

  def process(self, unused_impulse):
    yield from plan_partition_reads(self._config, log_plan=True)
