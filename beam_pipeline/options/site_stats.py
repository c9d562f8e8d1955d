"""The job's own options, declared in one place (``python -m beam_pipeline --help`` lists them by group)."""

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.io.cassandra.schema import DEFAULT_TABLE
from beam_pipeline.io.cassandra.connection import DEFAULT_PORT as DEFAULT_CASSANDRA_PORT, DEFAULT_REQUEST_TIMEOUT_S
from beam_pipeline.io.cassandra.consistency import CONSISTENCY_LEVELS, DEFAULT_CONSISTENCY
from beam_pipeline.io.cassandra.counter_write import DEFAULT_MAX_CONCURRENT_WRITES, DEFAULT_STATEMENTS_PER_BATCH
from beam_pipeline.io.kafka.config import (
    DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_MAX_BUNDLE_SECONDS, DEFAULT_MAX_RECORDS_PER_BUNDLE, DEFAULT_OFFSET_RESET,
    DEFAULT_PARTITION_HEADROOM, DEFAULT_PROGRESS_INTERVAL_S, DEFAULT_TOPIC_DISCOVERY_INTERVAL_S, OFFSET_RESETS)
from beam_pipeline.io.kafka.fetch import KAFKA_CLIENTS, KAFKA_PYTHON
from beam_pipeline.io.security import add_cassandra_security_arguments, add_kafka_security_arguments
from beam_pipeline.processes.log_levels import DEFAULT_LOG_LEVEL, LOG_LEVELS
from beam_pipeline.switches import add_switch
# Imported for what it declares: the Flink runner's own options are then known flags.
from beam_pipeline.runners.flink.options import FlinkJavaRunnerOptions  # pylint: disable=unused-import

START_OFFSETS = ('earliest', 'latest')
ISOLATION_LEVELS = ('read_uncommitted', 'read_committed')
SINK_MODES = ('increment', 'reconcile')
COUNTING_ONCE, COUNTING_AT_LEAST_ONCE = 'once', 'at_least_once'
COUNTING_MODES = (COUNTING_ONCE, COUNTING_AT_LEAST_ONCE)


class SiteStatsOptions(PipelineOptions):
  """Where to read events, where to count them, and where refused messages go."""

  @classmethod
  def _add_argparse_args(cls, parser):
    _add_kafka_arguments(parser)
    _add_cassandra_arguments(parser)
    _add_sink_arguments(parser)
    add_kafka_security_arguments(parser.add_argument_group('Kafka security'))
    add_cassandra_security_arguments(parser.add_argument_group('Cassandra security'))
    _add_dead_letters_arguments(parser)
    _add_launch_arguments(parser)


def _add_kafka_arguments(parser) -> None:
  kafka = parser.add_argument_group('Kafka source')
  try:
    kafka.add_argument('--bootstrap_servers', default='localhost:9092',
                       help='Kafka brokers to bootstrap from, host:port[,host:port...].')
  except argparse.ArgumentError:
    pass  # Beam declares the same flag, with the same meaning, for its Kafka Streams runner: share it.
  kafka.add_argument('--topic', metavar='TOPIC[,TOPIC...]',
                     help='Topic holding the JSON events (this or --topic_pattern is required); several, '
                          'comma-separated, are counted into the same table.')
  kafka.add_argument('--topic_pattern', metavar='REGEX',
                     help='Read every topic whose whole name matches this regular expression (Python syntax) '
                          'instead of --topic; a streaming job also reads matching topics created while it runs.')
  kafka.add_argument('--topic_discovery_interval_s', type=float, default=DEFAULT_TOPIC_DISCOVERY_INTERVAL_S,
                     help='Streaming with --topic_pattern: how often to look for new matching topics.')
  kafka.add_argument('--consumer_group', default='site-stats',
                     help='Consumer group whose committed offsets the job starts from and advances once a '
                          'bundle is durably processed.')
  kafka.add_argument('--start_offset', default='earliest', choices=START_OFFSETS,
                     help='Where to start a partition the group has no committed offset for.')
  kafka.add_argument('--offset_reset', default=DEFAULT_OFFSET_RESET, choices=OFFSET_RESETS,
                     help='A committed (or --start_offsets) offset outside the partition\'s log (retention removed '
                          'the messages past it, or the topic was recreated): fail stops the job naming the '
                          'partition (like Kafka\'s auto.offset.reset=none); earliest reads what the log holds from '
                          'its start; latest skips to its end. Offsets below the log\'s start are counted in '
                          'messages_lost. A streaming reader whose log start moves past it applies the same.')
  kafka.add_argument('--start_time',
                     help='Streaming: start each partition without a committed offset at the first message at '
                          'or after this time (ISO-8601, UTC if no zone, or epoch milliseconds). Bounded: the '
                          'start of the window to read, whatever the group has committed.')
  kafka.add_argument('--stop_time',
                     help='With --bounded: stop each partition before the first message at or after this time '
                          '(ISO-8601 or epoch milliseconds).')
  add_switch(kafka, '--bounded', False,
              help='Read each partition up to its end at job start (or --stop_time), then finish. '
                   'Without it the job streams until cancelled.')
  kafka.add_argument('--start_offsets', metavar='TOPIC:P=OFFSET,...',
                     help='With --bounded: the window starts at these offsets (topic:partition=offset, '
                          'comma-separated; partition=offset when one topic is read).')
  kafka.add_argument('--stop_offsets', metavar='TOPIC:P=OFFSET,...',
                     help='With --bounded: the window stops before these offsets (topic:partition=offset, ...).')
  kafka.add_argument('--max_records_per_bundle', type=int, default=DEFAULT_MAX_RECORDS_PER_BUNDLE,
                     help='How many records one partition contributes to a bundle before the reader '
                          'checkpoints; bounds memory and how much a failed bundle replays.')
  kafka.add_argument('--kafka_connect_timeout_s', type=float, default=DEFAULT_CONNECT_TIMEOUT_S,
                     help='How long to wait for the brokers and the topic before failing with an error.')
  kafka.add_argument('--partition_headroom', type=int, default=DEFAULT_PARTITION_HEADROOM,
                     help='Streaming: how many partitions the topic may gain while the job runs and still be '
                          'read (from their first offset) without a restart. Partitions beyond that are read '
                          'after the next restart.')
  kafka.add_argument('--kafka_consumer_config', action='append', metavar='KEY=VALUE',
                     help='A kafka-python consumer setting for every consumer the job makes (readers, planner, '
                          'launch checks, committer), such as fetch_min_bytes=65536; repeat it for several. '
                          'Settings the job owns (group_id, enable_auto_commit, auto_offset_reset, deserializers, '
                          'bootstrap_servers, security_protocol, sasl_*, ssl_*) are refused, naming the option to '
                          'use instead; a client_id prefixes each consumer\'s role.')
  kafka.add_argument('--kafka_isolation_level', choices=ISOLATION_LEVELS,
                     help='read_committed: skip the messages of aborted transactions, and a bounded run stops at '
                          'the last stable offset (default read_uncommitted: every message is read).')
  kafka.add_argument('--kafka_client', choices=KAFKA_CLIENTS, default=KAFKA_PYTHON,
                     help='The client the readers fetch with: kafka-python (default), or confluent: librdkafka '
                          'through confluent-kafka (pip extra [librdkafka]), which reads about 2.5 times as fast. '
                          'Planning, launch checks and commits at the end of a bounded run use kafka-python '
                          'either way; --kafka_consumer_config keys are translated (a key librdkafka has no '
                          'equivalent of is refused).')
  kafka.add_argument('--max_bundle_seconds', type=float, default=DEFAULT_MAX_BUNDLE_SECONDS,
                     help='How long one partition reads into a bundle before the reader checkpoints.')


def _add_cassandra_arguments(parser) -> None:
  cassandra = parser.add_argument_group('Cassandra sink')
  cassandra.add_argument('--cassandra_hosts', default='127.0.0.1',
                         help='Cassandra contact points, comma-separated host names or addresses.')
  cassandra.add_argument('--cassandra_port', type=int, default=DEFAULT_CASSANDRA_PORT, help='Cassandra native protocol port.')
  cassandra.add_argument('--keyspace', help='Keyspace holding the counter table (required).')
  cassandra.add_argument('--table', default=DEFAULT_TABLE, help='Counter table name.')
  cassandra.add_argument('--max_concurrent_writes', type=int, default=DEFAULT_MAX_CONCURRENT_WRITES,
                         help='Cassandra requests in flight at once per writer.')
  cassandra.add_argument('--statements_per_batch', type=int, default=DEFAULT_STATEMENTS_PER_BATCH,
                         help='How many keys of one date (one partition) share a counter batch; 1 sends '
                              'every UPDATE on its own.')
  cassandra.add_argument('--cassandra_write_consistency', choices=CONSISTENCY_LEVELS, default=DEFAULT_CONSISTENCY,
                         help='How many replicas must acknowledge a counter write (and reconcile\'s corrections and '
                              'leases) before it counts as durable and its offsets may be committed (default '
                              f'{DEFAULT_CONSISTENCY}: a majority of the local datacenter\'s replicas).')
  cassandra.add_argument('--cassandra_read_consistency', choices=CONSISTENCY_LEVELS, default=DEFAULT_CONSISTENCY,
                         help='How many replicas answer reconcile\'s reads of the counters (default '
                              f'{DEFAULT_CONSISTENCY}); with the write level it must overlap for reconcile to read '
                              'the latest counters.')
  cassandra.add_argument('--cassandra_request_timeout_s', type=float, default=DEFAULT_REQUEST_TIMEOUT_S,
                         help='How long a Cassandra request may take before the driver gives up on it. A counter '
                              'write given up on has an unknown outcome: its offsets become uncertain (counting '
                              'once) or its bundle is retried (at least once).')


def _add_sink_arguments(parser) -> None:
  sink = parser.add_argument_group('Sink mode (backfills)')
  sink.add_argument('--sink_mode', default='increment', choices=SINK_MODES,
                    help='increment: add each message to the counters. reconcile (with --bounded and --dates): '
                         'set the dates\' counters to the exact sums of their valid messages in the window.')
  sink.add_argument('--counting', default=COUNTING_ONCE, choices=COUNTING_MODES,
                    help='once (default): the offset ledger (<keyspace>.counted_offsets) records which offsets '
                         'the table has counted, and no rerun, restore, replay or second group counts them again; '
                         'a write whose outcome is unknown leaves its offsets uncertain until reconciled. '
                         'at_least_once: no ledger; a retried bundle may count its messages twice.')
  sink.add_argument('--dates', metavar='D1..D2',
                    help='Only these event dates: YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD, or a comma list.')
  add_switch(sink, '--report_only', False,
              help='With reconcile: report the drift, write nothing.')
  add_switch(sink, '--force_window', False,
              help='With reconcile: accept a window that may not hold every message of the dates.')
  sink.add_argument('--lease_ttl_s', type=int, default=3600,
                    help='With reconcile: how long a date\'s lease lasts if the job dies holding it.')


def _add_dead_letters_arguments(parser) -> None:
  dead_letters = parser.add_argument_group('Dead letters')
  dead_letters.add_argument('--dead_letter_topic',
                            help='Kafka topic for refused messages (default: <topic>-dlq, after the first topic '
                                 'when several are read; required with --topic_pattern), created when missing. '
                                 'Window runs (reconcile, backfills from --start_time, --start_offsets or '
                                 '--dates) publish dead letters only to a topic or path given explicitly.')
  dead_letters.add_argument('--dead_letter_path',
                            help='Also write refused messages as JSON-lines files into this directory (local or '
                                 'gs://), one file per bundle that refused any.')
  add_switch(dead_letters, '--create_dead_letter_topic', True,
              help='Create the dead-letter topic when it is missing (default true), with as many '
                   'partitions as the source topic.')
  dead_letters.add_argument('--no_create_dead_letter_topic', dest='create_dead_letter_topic',
                            action='store_false',
                            help='Never create the dead-letter topic: a missing one stops the job at launch.')
  dead_letters.add_argument('--dead_letter_replication_factor', type=int,
                            help='Replication factor of a dead-letter topic the job creates '
                                 '(default: min(3, number of brokers)).')


def _add_launch_arguments(parser) -> None:
  launch = parser.add_argument_group('Launch checks and output')
  add_switch(launch, '--create_schema', False,
              help='Create the keyspace and counter table when they are missing (default: refuse to '
                   'start, naming the schema command).')
  launch.add_argument('--schema_replication', metavar='JSON',
                      help='With --create_schema: the replication of a keyspace it creates, as JSON (default: '
                           '{"class": "SimpleStrategy", "replication_factor": min(3, number of nodes)}).')
  add_switch(launch, '--skip_preflight', False,
              help='Submit without first checking the brokers, topics and table from the launching '
                   'machine (for launchers that cannot reach them while the workers can).')
  launch.add_argument('--progress_interval_s', type=float, default=DEFAULT_PROGRESS_INTERVAL_S,
                      help='How often a bounded run logs its progress when its output is not a terminal (a '
                           'terminal shows a bar), and a streaming reader logs its rate and lag per partition; 0 '
                           'turns both off.')
  launch.add_argument('--metrics_port', type=int, metavar='PORT',
                      help='Local runner: serve the running job\'s metrics to Prometheus at '
                           'http://localhost:PORT/metrics (see docs/metrics.md).')
  launch.add_argument('--log_level', default=DEFAULT_LOG_LEVEL, choices=LOG_LEVELS,
                      help='Log level of the launcher (DEBUG also prints the traceback of a failure).')
  add_switch(launch, '--verbose', False,
              help='On failure, print the traceback after the one-line error.')
