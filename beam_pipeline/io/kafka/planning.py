"""The reads a job plans at start: one PartitionRead per partition, with its offsets resolved."""

import logging
from typing import Callable, Dict, List, Optional

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_pipeline import metrics
from beam_pipeline.io.kafka.config import OFFSET_RESET_FAIL, KafkaReadConfig
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


def plan_partition_reads(config: KafkaReadConfig, log_plan: bool = False,
                         count_lost: Optional[Callable[[int], None]] = None) -> List:
  """One PartitionRead per partition of each topic, with offsets resolved now; streaming, also one per partition
  each topic may gain and, with a topic pattern, a NewTopicsRead for the matching topics created later. The
  reader plans at job start; a bounded run's launcher plans too, to know how much it will read (without
  ``count_lost``: the messages lost are counted once, by the reader's plan)."""
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
      if tp in start_offsets or committed is not None:
        start = _inside_log(config, tp, start, beginning[tp], end[tp], 'the offset --start_offsets gives'
                            if tp in start_offsets else 'the committed offset', count_lost)
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
    return spread_over_readers(reads, config.reader_placement)
  finally:
    consumer.close(autocommit=False)


def offset_outside_log_message(config: KafkaReadConfig, tp, what: str, offset: int, beginning: int, end: int) -> str:
  """The one line a partition whose offset to read from is outside its log stops the job with."""
  group = config.consumer_group or '<group>'
  return (f'topic {tp.topic} partition {tp.partition}: {what} {offset} is outside the log, which holds offsets '
          f'[{beginning}, {end}) (retention removed messages past it, or the topic was recreated). Rerun with '
          '--offset_reset earliest to read what the log holds from its start, or --offset_reset latest to skip to '
          f'its end, or reset the group: kafka-consumer-groups.sh --bootstrap-server {config.bootstrap_servers} '
          f'--group {group} --topic {tp.topic}:{tp.partition} --reset-offsets --to-earliest --execute')


def _inside_log(config: KafkaReadConfig, tp, start: int, beginning: int, end: int, what: str,
                count_lost: Optional[Callable[[int], None]]) -> int:
  """``start`` when the log holds it (its end included: nothing new yet), else where --offset_reset says; the
  offsets below the log's start that are skipped are messages removed before they were read."""
  if beginning <= start <= end:
    return start
  if config.offset_reset == OFFSET_RESET_FAIL:
    raise KafkaReadError(offset_outside_log_message(config, tp, what, start, beginning, end))
  reset = beginning if config.offset_reset == 'earliest' else end
  # Above the end (a recreated topic) nothing is known to be lost: the old log's messages past it were never there.
  lost = beginning - start if start < beginning else 0
  _LOGGER.warning('topic %s partition %d: %s %d is outside the log [%d, %d); --offset_reset %s: starting at %d%s',
                  tp.topic, tp.partition, what, start, beginning, end, config.offset_reset, reset,
                  f' ({lost} messages removed before they were read are lost)' if lost else '')
  if lost and count_lost is not None:
    count_lost(lost)
  return reset


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
    self._lost = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_LOST)

  def process(self, unused_impulse):
    yield from plan_partition_reads(self._config, log_plan=True, count_lost=self._lost.inc)
