"""The pipeline's options, and the checks that make a bad value fail before the job starts."""

import argparse
import datetime
import json
import os
import re
import time
from typing import Dict, List, Optional, Tuple

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from beam_pipeline.dates import day_start_ms, parse_dates
# Imported for what it declares: the Flink runner's own options are then known flags.
from beam_pipeline.flink_options import FlinkJavaRunnerOptions  # pylint: disable=unused-import
from beam_pipeline.kafka_read import (
    DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_MAX_BUNDLE_SECONDS, DEFAULT_MAX_RECORDS_PER_BUNDLE)
from beam_pipeline.schema import DEFAULT_TABLE, check_identifier, replication_cql
from beam_pipeline.security import (
    KAFKA_SASL_MECHANISMS, KAFKA_SECURITY_PROTOCOLS, CassandraSecurity, KafkaSecurity, SecretError,
    add_cassandra_security_arguments, cassandra_security_from, parse_bool, secret_source)

START_OFFSETS = ('earliest', 'latest')
SINK_MODES = ('increment', 'reconcile')
LOG_LEVELS = ('DEBUG', 'INFO', 'WARNING', 'ERROR')
# Runner names that mean "run here, in this process" (see pipeline.choose_runner).
LOCAL_RUNNER_NAMES = (None, 'DirectRunner', 'SwitchingDirectRunner', 'FnApiRunner')
_TOPIC = re.compile(r'[A-Za-z0-9._\-]{1,249}')
_HOST_PORT = re.compile(r'[^\s,:]+:\d{1,5}')


class OptionError(ValueError):
  """An option's value cannot work; the message names the option and says what to use instead."""


def unknown_options(argv) -> list:
  """Flags that no registered PipelineOptions class declares, as Beam reads them (Beam drops these with only a
  warning). Flags are compared as spelled: ``--experiment`` and ``--no_use_public_ips`` are known though the
  options they set are named differently."""
  from apache_beam.options.pipeline_options import _BeamArgumentParser
  # The parser Beam builds for its own parsing: every direct PipelineOptions subclass, once.
  parser = _BeamArgumentParser(allow_abbrev=False)
  for cls in {str(cls): cls for cls in PipelineOptions.__subclasses__()}.values():
    cls._add_argparse_args(parser)  # pylint: disable=protected-access
  actions = parser._actions  # pylint: disable=protected-access
  spellings = {spelling for action in actions for spelling in action.option_strings}
  flags = (arg.split('=', 1)[0] for arg in argv if arg.startswith('--'))
  return [flag for flag in flags if flag not in spellings]


class SiteStatsOptions(PipelineOptions):
  """Where to read events, where to count them, and where refused messages go."""

  @classmethod
  def _add_argparse_args(cls, parser):
    kafka = parser.add_argument_group('Kafka source')
    try:
      kafka.add_argument('--bootstrap_servers', default='localhost:9092',
                         help='Kafka brokers to bootstrap from, host:port[,host:port...].')
    except argparse.ArgumentError:
      pass  # Beam declares the same flag, with the same meaning, for its Kafka Streams runner: share it.
    kafka.add_argument('--topic', help='Topic holding the JSON events (required).')
    kafka.add_argument('--consumer_group', default='site-stats',
                       help='Consumer group whose committed offsets the job starts from and advances once a '
                            'bundle is durably processed.')
    kafka.add_argument('--start_offset', default='earliest', choices=START_OFFSETS,
                       help='Where to start a partition the group has no committed offset for.')
    kafka.add_argument('--start_time',
                       help='Streaming: start each partition without a committed offset at the first message at '
                            'or after this time (ISO-8601, UTC if no zone, or epoch milliseconds). Bounded: the '
                            'start of the window to read, whatever the group has committed.')
    kafka.add_argument('--stop_time',
                       help='With --bounded: stop each partition before the first message at or after this time '
                            '(ISO-8601 or epoch milliseconds).')
    # `--bounded` alone, or `--bounded=true|false` as Flex templates pass parameters.
    kafka.add_argument('--bounded', nargs='?', const=True, default=False, type=parse_bool,
                       help='Read each partition up to its end at job start (or --stop_time), then finish. '
                            'Without it the job streams until cancelled.')
    kafka.add_argument('--start_offsets', metavar='P=OFFSET,...',
                       help='With --bounded: the window starts at these offsets (partition=offset, comma-separated).')
    kafka.add_argument('--stop_offsets', metavar='P=OFFSET,...',
                       help='With --bounded: the window stops before these offsets (partition=offset, ...).')
    kafka.add_argument('--max_records_per_bundle', type=int, default=DEFAULT_MAX_RECORDS_PER_BUNDLE,
                       help='How many records one partition contributes to a bundle before the reader '
                            'checkpoints; bounds memory and how much a failed bundle replays.')
    kafka.add_argument('--kafka_connect_timeout_s', type=float, default=DEFAULT_CONNECT_TIMEOUT_S,
                       help='How long to wait for the brokers and the topic before failing with an error.')
    kafka.add_argument('--partition_headroom', type=int, default=8,
                       help='Streaming: how many partitions the topic may gain while the job runs and still be '
                            'read (from their first offset) without a restart. Partitions beyond that are read '
                            'after the next restart.')
    kafka.add_argument('--max_bundle_seconds', type=float, default=DEFAULT_MAX_BUNDLE_SECONDS,
                       help='How long one partition reads into a bundle before the reader checkpoints.')

    cassandra = parser.add_argument_group('Cassandra sink')
    cassandra.add_argument('--cassandra_hosts', default='127.0.0.1',
                           help='Cassandra contact points, comma-separated host names or addresses.')
    cassandra.add_argument('--cassandra_port', type=int, default=9042, help='Cassandra native protocol port.')
    cassandra.add_argument('--keyspace', help='Keyspace holding the counter table (required).')
    cassandra.add_argument('--table', default=DEFAULT_TABLE, help='Counter table name.')
    cassandra.add_argument('--max_concurrent_writes', type=int, default=64,
                           help='Cassandra requests in flight at once per writer.')
    cassandra.add_argument('--statements_per_batch', type=int, default=50,
                           help='How many keys of one date (one partition) share a counter batch; 1 sends '
                                'every UPDATE on its own.')

    sink = parser.add_argument_group('Sink mode (backfills)')
    sink.add_argument('--sink_mode', default='increment', choices=SINK_MODES,
                      help='increment: add each message to the counters. reconcile (with --bounded and --dates): '
                           'set the dates\' counters to the exact sums of their valid messages in the window.')
    sink.add_argument('--dates', metavar='D1..D2',
                      help='Only these event dates: YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD, or a comma list.')
    sink.add_argument('--report_only', nargs='?', const=True, default=False, type=parse_bool,
                      help='With reconcile: report the drift, write nothing.')
    sink.add_argument('--force_window', nargs='?', const=True, default=False, type=parse_bool,
                      help='With reconcile: accept a window that may not hold every message of the dates.')
    sink.add_argument('--lease_ttl_s', type=int, default=3600,
                      help='With reconcile: how long a date\'s lease lasts if the job dies holding it.')

    kafka_security = parser.add_argument_group('Kafka security')
    kafka_security.add_argument('--kafka_security_protocol', default='PLAINTEXT', choices=KAFKA_SECURITY_PROTOCOLS,
                                help='How the job connects to the brokers: TLS (SSL), SASL (SASL_PLAINTEXT) or both '
                                     '(SASL_SSL).')
    kafka_security.add_argument('--kafka_sasl_mechanism', choices=KAFKA_SASL_MECHANISMS,
                                help='SASL mechanism for SASL_SSL / SASL_PLAINTEXT.')
    kafka_security.add_argument('--kafka_username', help='SASL user name.')
    kafka_security.add_argument('--kafka_password_env', metavar='VARIABLE',
                                help='Name of the environment variable (on the launcher and the workers) holding '
                                     'the SASL password.')
    kafka_security.add_argument('--kafka_password_file', metavar='PATH',
                                help='File (on the launcher and the workers) holding the SASL password.')
    kafka_security.add_argument('--kafka_ssl_ca_file', metavar='PEM',
                                help='CA certificates to trust for the brokers\' TLS (default: the system\'s).')

    add_cassandra_security_arguments(parser.add_argument_group('Cassandra security'))

    dead_letters = parser.add_argument_group('Dead letters')
    dead_letters.add_argument('--dead_letter_topic',
                              help='Kafka topic for refused messages (default: <topic>-dlq), created when missing. '
                                   'Window runs (reconcile, backfills from --start_time, --start_offsets or '
                                   '--dates) publish dead letters only to a topic or path given explicitly.')
    dead_letters.add_argument('--dead_letter_path',
                              help='Also write refused messages as JSON-lines files into this directory (local or '
                                   'gs://), one file per bundle that refused any.')
    dead_letters.add_argument('--create_dead_letter_topic', nargs='?', const=True, default=True, type=parse_bool,
                              help='Create the dead-letter topic when it is missing (default true), with as many '
                                   'partitions as the source topic.')
    dead_letters.add_argument('--no_create_dead_letter_topic', dest='create_dead_letter_topic',
                              action='store_false',
                              help='Never create the dead-letter topic: a missing one stops the job at launch.')
    dead_letters.add_argument('--dead_letter_replication_factor', type=int,
                              help='Replication factor of a dead-letter topic the job creates '
                                   '(default: min(3, number of brokers)).')

    launch = parser.add_argument_group('Launch checks and output')
    launch.add_argument('--create_schema', nargs='?', const=True, default=False, type=parse_bool,
                        help='Create the keyspace and counter table when they are missing (default: refuse to '
                             'start, naming the schema command).')
    launch.add_argument('--schema_replication', metavar='JSON',
                        help='With --create_schema: the replication of a keyspace it creates, as JSON (default: '
                             '{"class": "SimpleStrategy", "replication_factor": min(3, number of nodes)}).')
    launch.add_argument('--skip_preflight', nargs='?', const=True, default=False, type=parse_bool,
                        help='Submit without first checking the brokers, topics and table from the launching '
                             'machine (for launchers that cannot reach them while the workers can).')
    launch.add_argument('--progress_interval_s', type=float, default=10.0,
                        help='How often a bounded run logs its progress when its output is not a terminal (a '
                             'terminal shows a bar), and a streaming reader logs its rate and lag per partition; 0 '
                             'turns both off.')
    launch.add_argument('--log_level', default='INFO', choices=LOG_LEVELS,
                        help='Log level of the launcher (DEBUG also prints the traceback of a failure).')
    launch.add_argument('--verbose', nargs='?', const=True, default=False, type=parse_bool,
                        help='On failure, print the traceback after the one-line error.')


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


def check_options(options: PipelineOptions) -> List[str]:
  """Raises OptionError for the first option that cannot work; returns notes on what was implied."""
  site = options.view_as(SiteStatsOptions)
  standard = options.view_as(StandardOptions)
  _check_source(site, standard)
  _check_sink(site)
  _check_security(site, read_secrets_now=standard.runner in LOCAL_RUNNER_NAMES)
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


def _check_source(site: SiteStatsOptions, standard: StandardOptions) -> None:
  if not site.topic:
    raise OptionError('--topic is required: the Kafka topic holding the events')
  if not _TOPIC.fullmatch(site.topic):
    raise OptionError(f'--topic={site.topic!r} is not a Kafka topic name (letters, digits, ".", "_", "-")')
  if not site.bootstrap_servers or not all(
      _HOST_PORT.fullmatch(s.strip()) for s in site.bootstrap_servers.split(',')):
    raise OptionError(f'--bootstrap_servers={site.bootstrap_servers!r}: use host:port[,host:port...]')
  if not site.consumer_group or not site.consumer_group.strip():
    raise OptionError('--consumer_group must not be empty')
  start_ms = parse_time_ms(site.start_time, 'start_time') if site.start_time else None
  if site.stop_time:
    if not site.bounded:
      raise OptionError('--stop_time ends the read, so it needs --bounded')
    stop_ms = parse_time_ms(site.stop_time, 'stop_time')
    if start_ms is not None and stop_ms <= start_ms:
      raise OptionError(f'--stop_time ({site.stop_time}) must be after --start_time ({site.start_time})')
  for option in ('start_offsets', 'stop_offsets'):
    if getattr(site, option):
      if not site.bounded:
        raise OptionError(f'--{option} sets a window, so it needs --bounded')
      parse_partition_offsets(getattr(site, option), option)
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
  if site.max_concurrent_writes < 1:
    raise OptionError(f'--max_concurrent_writes={site.max_concurrent_writes} must be at least 1')
  if site.statements_per_batch < 1:
    raise OptionError(f'--statements_per_batch={site.statements_per_batch} must be at least 1')
  dates = requested_dates(site)
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
  if site.dead_letter_replication_factor is not None and site.dead_letter_replication_factor < 1:
    raise OptionError(f'--dead_letter_replication_factor={site.dead_letter_replication_factor} must be at least 1')
  if site.schema_replication:
    if not site.create_schema:
      raise OptionError('--schema_replication is the replication of a keyspace the job creates: add --create_schema')
    schema_replication(site)
  if site.progress_interval_s < 0:
    raise OptionError(f'--progress_interval_s={site.progress_interval_s} must be 0 (off) or more')


def kafka_security(site: SiteStatsOptions) -> KafkaSecurity:
  try:
    return KafkaSecurity(
        protocol=site.kafka_security_protocol, sasl_mechanism=site.kafka_sasl_mechanism,
        username=site.kafka_username, ca_file=site.kafka_ssl_ca_file,
        password=secret_source(site.kafka_password_env, site.kafka_password_file, 'kafka_password'))
  except ValueError as error:
    raise OptionError(str(error)) from None


def cassandra_security(site: SiteStatsOptions) -> CassandraSecurity:
  try:
    return cassandra_security_from(site)
  except ValueError as error:
    raise OptionError(str(error)) from None


def _check_security(site: SiteStatsOptions, read_secrets_now: bool) -> None:
  """Inconsistent settings fail at once; a local run also reads its secrets now, so that a missing variable
  or file fails before the job starts (remote workers read theirs when they build their clients)."""
  for security in (kafka_security(site), cassandra_security(site)):
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


def parse_partition_offsets(value: Optional[str], option: str) -> Dict[int, int]:
  """``0=100,1=250`` as {0: 100, 1: 250}."""
  if not value:
    return {}
  offsets = {}
  for item in value.split(','):
    partition, separator, offset = item.strip().partition('=')
    if not separator or not partition.isdigit() or not offset.isdigit():
      raise OptionError(f'--{option}={value!r}: use partition=offset pairs such as 0=100,1=250')
    offsets[int(partition)] = int(offset)
  return offsets


def requested_dates(site: SiteStatsOptions) -> List[datetime.date]:
  try:
    return parse_dates(site.dates) if site.dates else []
  except ValueError as error:
    raise OptionError(f'--dates: {error}') from None


def is_window_run(site: SiteStatsOptions) -> bool:
  """A backfill of a window: it reads from the window's start and leaves every consumer group alone."""
  return site.bounded and bool(site.start_time or site.start_offsets or site.dates or site.sink_mode == 'reconcile')


def _check_window(site: SiteStatsOptions, dates: List[datetime.date], now_ms: int) -> None:
  if site.force_window:
    return
  if site.start_offsets or site.stop_offsets:
    raise OptionError('reconcile cannot check that an offset window holds every message of --dates; '
                      'use --start_time/--stop_time, or add --force_window')
  first_ms, end_ms = day_start_ms(dates[0]), day_start_ms(dates[-1] + datetime.timedelta(days=1))
  if site.start_time and parse_time_ms(site.start_time, 'start_time') > first_ms:
    raise OptionError(f'--start_time {site.start_time} is after {dates[0]} begins: the window may miss messages '
                      'of that date (add --force_window to reconcile anyway)')
  stop_ms = parse_time_ms(site.stop_time, 'stop_time') if site.stop_time else now_ms
  if stop_ms < end_ms:
    raise OptionError(f'the window ends ({site.stop_time or "now"}) before {dates[-1]} does: messages of that date '
                      'may still arrive (run it after the date plus its allowed lateness, or add --force_window)')


def dead_letter_topic(site: SiteStatsOptions) -> str:
  return site.dead_letter_topic or f'{site.topic}-dlq'


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
