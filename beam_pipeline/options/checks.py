"""The checks that make a bad option fail before the job starts, with one line naming the option."""

import datetime
import os
import re
import time
from typing import List

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from beam_pipeline.errors import OptionError
from beam_pipeline.io.cassandra.schema import check_identifier
from beam_pipeline.io.kafka.fetch import CONFLUENT
from beam_pipeline.io.security import SecretError
from beam_pipeline.options import configs
from beam_pipeline.options.site_stats import SiteStatsOptions
from beam_pipeline.runners.flink.options import FlinkRestartOptions
from beam_pipeline.runners.local.worker_pool import LOCAL_RUNNER_NAMES
from beam_pipeline.transforms.dates import day_start_ms

# Runner names that mean "run here, in this process" (see launch.run.choose_runner).
_TOPIC = re.compile(r'[A-Za-z0-9._\-]{1,249}')
_HOST_PORT = re.compile(r'[^\s,:]+:\d{1,5}')


def check_options(options: PipelineOptions) -> List[str]:
  """Raises OptionError for the first option that cannot work; returns notes on what was implied."""
  site = options.view_as(SiteStatsOptions)
  standard = options.view_as(StandardOptions)
  _check_source(site, standard)
  _check_sink(site)
  _check_security(site, read_secrets_now=standard.runner in LOCAL_RUNNER_NAMES)
  if standard.runner == 'FlinkRunner':
    _check_flink_restarts(options.view_as(FlinkRestartOptions))
  direct = options.view_as(DirectOptions)
  if standard.runner in LOCAL_RUNNER_NAMES and direct.direct_num_workers != 1 and (
      direct.direct_running_mode == 'in_memory'):
    raise OptionError(f'--direct_num_workers {direct.direct_num_workers} needs --direct_running_mode '
                      'multi_processing (one worker process per core; in_memory runs a single worker)')
  notes = []
  if not site.bounded and not standard.streaming:
    standard.streaming = True
    notes.append('streaming read (no --bounded): running with --streaming')
  return notes


def _check_flink_restarts(restarts: FlinkRestartOptions) -> None:
  limits = (restarts.flink_restart_max_failures, restarts.flink_restart_failure_interval_s,
            restarts.flink_restart_delay_s)
  if min(limits) < 1 or restarts.flink_restart_delay_s >= restarts.flink_restart_failure_interval_s:
    raise OptionError(
        f'--flink_restart_max_failures, --flink_restart_failure_interval_s and --flink_restart_delay_s must be '
        f'at least 1, and the delay shorter than the interval (got {", ".join(map(str, limits))})')


def _check_source(site: SiteStatsOptions, standard: StandardOptions) -> None:
  if site.topic and site.topic_pattern:
    raise OptionError('give --topic or --topic_pattern, not both')
  if not site.topic and not site.topic_pattern:
    raise OptionError('--topic is required: the Kafka topic holding the events (or several, comma-separated), or '
                      '--topic_pattern REGEX')
  _check_topic_pattern(site)
  names = configs.topics(site)
  for name in names:
    if not _TOPIC.fullmatch(name):
      raise OptionError(f'--topic={site.topic!r}: {name!r} is not a Kafka topic name (letters, digits, ".", "_", '
                        '"-"; several names are separated by commas)')
  if len(set(names)) < len(names):
    raise OptionError(f'--topic={site.topic!r} names a topic twice')
  if not site.bootstrap_servers or not all(
      _HOST_PORT.fullmatch(s.strip()) for s in site.bootstrap_servers.split(',')):
    raise OptionError(f'--bootstrap_servers={site.bootstrap_servers!r}: use host:port[,host:port...]')
  if not site.consumer_group or not site.consumer_group.strip():
    raise OptionError('--consumer_group must not be empty')
  start_ms = configs.parse_time_ms(site.start_time, 'start_time') if site.start_time else None
  if site.stop_time:
    if not site.bounded:
      raise OptionError('--stop_time ends the read, so it needs --bounded')
    stop_ms = configs.parse_time_ms(site.stop_time, 'stop_time')
    if start_ms is not None and stop_ms <= start_ms:
      raise OptionError(f'--stop_time ({site.stop_time}) must be after --start_time ({site.start_time})')
  for option in ('start_offsets', 'stop_offsets'):
    if getattr(site, option):
      if not site.bounded:
        raise OptionError(f'--{option} sets a window, so it needs --bounded')
      configs.parse_partition_offsets(getattr(site, option), option, names, site.topic_pattern)
  if site.bounded and standard.streaming:
    raise OptionError('--bounded reads a fixed range and finishes; drop --streaming (or drop --bounded)')
  if site.max_records_per_bundle < 1:
    raise OptionError(f'--max_records_per_bundle={site.max_records_per_bundle} must be at least 1')
  if site.kafka_connect_timeout_s <= 0:
    raise OptionError(f'--kafka_connect_timeout_s={site.kafka_connect_timeout_s} must be positive')
  if site.partition_headroom < 0:
    raise OptionError(f'--partition_headroom={site.partition_headroom} must be 0 or more')
  if site.max_bundle_seconds <= 0:
    raise OptionError(f'--max_bundle_seconds={site.max_bundle_seconds} must be positive')
  configs.consumer_settings(site)
  _check_kafka_client(site)


def _check_kafka_client(site: SiteStatsOptions) -> None:
  if site.kafka_client != CONFLUENT:
    return
  try:
    import confluent_kafka  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    raise OptionError('--kafka_client confluent needs confluent-kafka: pip install '
                      '"beam-pipeline-site-stats[librdkafka]" (workers too: see docs/options.md)') from None


def _check_topic_pattern(site: SiteStatsOptions) -> None:
  if site.topic_discovery_interval_s <= 0:
    raise OptionError(f'--topic_discovery_interval_s={site.topic_discovery_interval_s} must be positive')
  if not site.topic_pattern:
    return
  try:
    re.compile(site.topic_pattern)
  except re.error as error:
    raise OptionError(f'--topic_pattern={site.topic_pattern!r} is not a regular expression: {error}') from None
  if not site.dead_letter_topic and not configs.is_window_run(site):
    raise OptionError('--topic_pattern needs --dead_letter_topic: one topic for the dead letters of every '
                      'matching topic, which the pattern does not match')


def _check_sink(site: SiteStatsOptions) -> None:
  if not site.keyspace:
    raise OptionError('--keyspace is required: the Cassandra keyspace holding the counter table')
  for name, value in (('keyspace', site.keyspace), ('table', site.table)):
    try:
      check_identifier(value, name)
    except ValueError as error:
      raise OptionError(f'--{name}: {error}') from None
  if not site.cassandra_hosts or not all(h.strip() for h in site.cassandra_hosts.split(',')):
    raise OptionError(f'--cassandra_hosts={site.cassandra_hosts!r}: use host[,host...]')
  if not 0 < site.cassandra_port < 65536:
    raise OptionError(f'--cassandra_port={site.cassandra_port} is not a TCP port (1-65535)')
  if not site.cassandra_request_timeout_s > 0:
    raise OptionError(f'--cassandra_request_timeout_s={site.cassandra_request_timeout_s} must be positive')
  if site.max_concurrent_writes < 1:
    raise OptionError(f'--max_concurrent_writes={site.max_concurrent_writes} must be at least 1')
  if site.statements_per_batch < 1:
    raise OptionError(f'--statements_per_batch={site.statements_per_batch} must be at least 1')
  dates = configs.requested_dates(site)
  if site.sink_mode == 'reconcile':
    if not site.bounded:
      raise OptionError('--sink_mode reconcile corrects a finished window: add --bounded')
    if not dates:
      raise OptionError('--sink_mode reconcile needs --dates: the event dates whose counters to correct')
    if site.lease_ttl_s < 1:
      raise OptionError(f'--lease_ttl_s={site.lease_ttl_s} must be at least 1')
    _check_window(site, dates, int(time.time() * 1000))
  elif site.report_only:
    raise OptionError('--report_only goes with --sink_mode reconcile')
  if site.dead_letter_topic and not _TOPIC.fullmatch(site.dead_letter_topic):
    raise OptionError(f'--dead_letter_topic={site.dead_letter_topic!r} is not a Kafka topic name')
  published_to = site.dead_letter_topic if site.topic_pattern else configs.dead_letter_outputs(site)[0]
  if published_to in configs.topics(site) or (published_to and site.topic_pattern and re.fullmatch(
      site.topic_pattern, published_to)):
    raise OptionError(f'the dead-letter topic {published_to} is also a topic the job reads (--topic or '
                      '--topic_pattern): name another with --dead_letter_topic')
  if site.dead_letter_replication_factor is not None and site.dead_letter_replication_factor < 1:
    raise OptionError(f'--dead_letter_replication_factor={site.dead_letter_replication_factor} must be at least 1')
  if site.schema_replication:
    if not site.create_schema:
      raise OptionError('--schema_replication is the replication of a keyspace the job creates: add --create_schema')
    configs.schema_replication(site)
  if site.progress_interval_s < 0:
    raise OptionError(f'--progress_interval_s={site.progress_interval_s} must be 0 (off) or more')


def _check_security(site: SiteStatsOptions, read_secrets_now: bool) -> None:
  """Inconsistent settings fail at once; a local run also reads its secrets now, so that a missing variable
  or file fails before the job starts (remote workers read theirs when they build their clients)."""
  for security in (configs.kafka_security(site), configs.cassandra_security(site)):
    try:
      security.check()
      if read_secrets_now and security.password is not None:
        security.password.read()
    except (ValueError, SecretError) as error:
      raise OptionError(str(error)) from None
  for option in ('kafka_ssl_ca_file', 'cassandra_ssl_ca_file'):
    path = getattr(site, option)
    if path and read_secrets_now and not os.path.isfile(path):
      raise OptionError(f'--{option}={path}: no such file')


def _check_window(site: SiteStatsOptions, dates: List[datetime.date], now_ms: int) -> None:
  if site.force_window:
    return
  if site.start_offsets or site.stop_offsets:
    raise OptionError('reconcile cannot check that an offset window holds every message of --dates; '
                      'use --start_time/--stop_time, or add --force_window')
  first_ms, end_ms = day_start_ms(dates[0]), day_start_ms(dates[-1] + datetime.timedelta(days=1))
  if site.start_time and configs.parse_time_ms(site.start_time, 'start_time') > first_ms:
    raise OptionError(f'--start_time {site.start_time} is after {dates[0]} begins: the window may miss messages '
                      'of that date (add --force_window to reconcile anyway)')
  stop_ms = configs.parse_time_ms(site.stop_time, 'stop_time') if site.stop_time else now_ms
  if stop_ms < end_ms:
    raise OptionError(f'the window ends ({site.stop_time or "now"}) before {dates[-1]} does: messages of that date '
                      'may still arrive (run it after the date plus its allowed lateness, or add --force_window)')
