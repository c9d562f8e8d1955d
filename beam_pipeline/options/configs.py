"""What the options mean for the stages: their configs, read from a parsed SiteStatsOptions.

Each conversion raises OptionError, naming the option, for a value that cannot work.
"""

import datetime
import json
import re
from typing import Dict, List, Optional, Tuple

from beam_pipeline.errors import OptionError
from beam_pipeline.io.cassandra.connection import CassandraConnection
from beam_pipeline.io.cassandra.schema import replication_cql
from beam_pipeline.io.kafka.config import KafkaReadConfig
from beam_pipeline.io.kafka.consumer_settings import (
    ConsumerSettingError, ConsumerSettings, librdkafka_settings, parse_consumer_settings)
from beam_pipeline.io.kafka.fetch import CONFLUENT
from beam_pipeline.io.kafka.placement import ReaderPlacement
from beam_pipeline.io.security import (
    CassandraSecurity, KafkaSecurity, cassandra_security_from, kafka_security_from)
from beam_pipeline.options.site_stats import COUNTING_ONCE, SiteStatsOptions
from beam_pipeline.transforms.dates import parse_dates


def parse_time_ms(value: str, option: str) -> int:
  """Epoch milliseconds from ISO-8601 (naive means UTC) or from a plain integer of milliseconds."""
  text = value.strip()
  if text.isdigit():
    return int(text)
  try:
    moment = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
  except ValueError:
    raise OptionError(f'--{option}={value!r} is not a time: use ISO-8601 such as 2017-02-04T00:00:00Z, '
                      'or epoch milliseconds') from None
  if moment.tzinfo is None:
    moment = moment.replace(tzinfo=datetime.timezone.utc)
  return int(moment.timestamp() * 1000)


def kafka_security(site: SiteStatsOptions) -> KafkaSecurity:
  try:
    return kafka_security_from(site)
  except ValueError as error:
    raise OptionError(str(error)) from None


def cassandra_security(site: SiteStatsOptions) -> CassandraSecurity:
  try:
    return cassandra_security_from(site)
  except ValueError as error:
    raise OptionError(str(error)) from None


def topics(site: SiteStatsOptions) -> List[str]:
  """The topics --topic names (a comma-separated list), in its order; none with --topic_pattern."""
  return [name.strip() for name in site.topic.split(',')] if site.topic else []


def parse_partition_offsets(value: Optional[str], option: str, topic_names: List[str],
                            pattern: Optional[str] = None) -> Dict[Tuple[str, int], int]:
  """``events:0=100,events:1=250`` as {('events', 0): 100, ('events', 1): 250}; a job that reads one topic may
  leave it out (``0=100,1=250``). Each topic is one of ``topic_names`` or matches ``pattern``."""
  if not value:
    return {}
  usage = 'use topic:partition=offset pairs such as events:0=100,events:1=250 (or 0=100,1=250 for one topic)'
  offsets = {}
  for item in value.split(','):
    where, separator, offset = item.strip().partition('=')
    topic, colon, partition = where.rpartition(':')
    if not separator or not partition.isdigit() or not offset.isdigit():
      raise OptionError(f'--{option}={value!r}: {usage}')
    if not colon:
      if len(topic_names) != 1:
        raise OptionError(f'--{option}={value!r}: name each partition\'s topic when several are read ({usage})')
      topic = topic_names[0]
    if topic not in topic_names and not (pattern and re.fullmatch(pattern, topic)):
      raise OptionError(f'--{option}={value!r}: topic {topic!r} is not one that --topic names (or '
                        '--topic_pattern matches)')
    offsets[(topic, int(partition))] = int(offset)
  return offsets


def consumer_settings(site: SiteStatsOptions) -> ConsumerSettings:
  """--kafka_consumer_config's settings, with --kafka_isolation_level among them when it is given."""
  try:
    settings = dict(parse_consumer_settings(site.kafka_consumer_config or ()))
  except ConsumerSettingError as error:
    raise OptionError(f'--kafka_consumer_config {error}') from None
  if site.kafka_isolation_level:
    passed = settings.setdefault('isolation_level', site.kafka_isolation_level)
    if passed != site.kafka_isolation_level:
      raise OptionError(f'--kafka_isolation_level {site.kafka_isolation_level} and --kafka_consumer_config '
                        f'isolation_level={passed} disagree: give one of them')
  settings = tuple(sorted(settings.items()))
  if site.kafka_client == CONFLUENT:
    try:
      librdkafka_settings(settings)
    except ConsumerSettingError as error:
      raise OptionError(f'--kafka_consumer_config {error}') from None
  return settings


def counts_once(site: SiteStatsOptions) -> bool:
  """Whether the counter writes go through the offset ledger (reconcile sets counters exact and needs none)."""
  return site.sink_mode == 'increment' and site.counting == COUNTING_ONCE


def requested_dates(site: SiteStatsOptions) -> List[datetime.date]:
  try:
    return parse_dates(site.dates) if site.dates else []
  except ValueError as error:
    raise OptionError(f'--dates: {error}') from None


def is_window_run(site: SiteStatsOptions) -> bool:
  """A backfill of a window: it reads from the window's start and leaves every consumer group alone."""
  return site.bounded and bool(site.start_time or site.start_offsets or site.dates or site.sink_mode == 'reconcile')


def dead_letter_topic(site: SiteStatsOptions) -> str:
  """--dead_letter_topic, or ``<topic>-dlq`` after the first topic --topic names (one for all of them); a
  --topic_pattern run needs --dead_letter_topic (checks.py says so)."""
  return site.dead_letter_topic or f'{topics(site)[0]}-dlq'


def dead_letter_outputs(site: SiteStatsOptions) -> Tuple[Optional[str], Optional[str]]:
  """Where refused messages are published: (Kafka topic or None, file directory or None).

  A window run re-reads messages that the streaming job already judged and published, so by default it only
  counts its dead letters; it publishes them where it is told to explicitly.
  """
  if is_window_run(site):
    return site.dead_letter_topic, site.dead_letter_path
  return dead_letter_topic(site), site.dead_letter_path


def schema_replication(site: SiteStatsOptions) -> Optional[dict]:
  """The --schema_replication map, or None for the default; OptionError if it is not a replication map."""
  if not site.schema_replication:
    return None
  try:
    replication = json.loads(site.schema_replication)
    replication_cql(replication)
  except ValueError as error:
    raise OptionError(f'--schema_replication: {error} (use JSON such as '
                      '\'{"class": "NetworkTopologyStrategy", "dc1": 3}\')') from None
  return replication


def optional_time_ms(value: Optional[str], option: str) -> Optional[int]:
  return parse_time_ms(value, option) if value else None


def _offsets_option(site: SiteStatsOptions, option: str) -> Tuple[Tuple[str, int, int], ...]:
  offsets = parse_partition_offsets(getattr(site, option), option, topics(site), site.topic_pattern)
  return tuple(sorted((topic, partition, offset) for (topic, partition), offset in offsets.items()))


def read_config(site: SiteStatsOptions, group_member: Optional[str] = None,
                reader_placement: Optional[ReaderPlacement] = None) -> KafkaReadConfig:
  """``group_member``: where the copy's member of the consumer group listens (a local streaming run);
  ``reader_placement``: how the runner places the reads on its parallel readers, when it says."""
  window = is_window_run(site)
  return KafkaReadConfig(
      bootstrap_servers=site.bootstrap_servers, topics=tuple(topics(site)), consumer_group=site.consumer_group,
      start_offset=site.start_offset, start_time_ms=optional_time_ms(site.start_time, 'start_time'),
      stop_time_ms=optional_time_ms(site.stop_time, 'stop_time'), bounded=site.bounded,
      max_records_per_bundle=site.max_records_per_bundle, max_bundle_seconds=site.max_bundle_seconds,
      connect_timeout_s=site.kafka_connect_timeout_s, security=kafka_security(site),
      partition_headroom=site.partition_headroom, progress_interval_s=site.progress_interval_s,
      commit_offsets=not window, use_committed_offsets=not window, consumer_settings=consumer_settings(site),
      start_offsets=_offsets_option(site, 'start_offsets'), stop_offsets=_offsets_option(site, 'stop_offsets'),
      topic_pattern=site.topic_pattern, topic_discovery_interval_s=site.topic_discovery_interval_s,
      kafka_client=site.kafka_client, offset_reset=site.offset_reset, group_member=group_member,
      reader_placement=reader_placement)


def cassandra_connection(site: SiteStatsOptions) -> CassandraConnection:
  return CassandraConnection(hosts=tuple(h.strip() for h in site.cassandra_hosts.split(',')),
                             port=site.cassandra_port, security=cassandra_security(site),
                             write_consistency=site.cassandra_write_consistency,
                             read_consistency=site.cassandra_read_consistency,
                             request_timeout_s=site.cassandra_request_timeout_s)
