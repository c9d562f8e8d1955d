"""Preflight: what the launcher checks, on every runner, before anything is submitted.

The brokers answer, every source topic exists, the dead-letter topic exists (or is created, as Kafka Connect does
for its dead-letter queue), Cassandra answers, the counter table exists with the expected columns (or is
created, with ``--create_schema``), and the keyspace's replication, on the nodes that are up, can meet the
consistency levels asked for. Each failure is a PreflightError whose message is one line saying what is
wrong and which option or command fixes it; its ``exit_code`` is 2 for a setting that names something missing
or wrong, and 1 for a service that cannot be reached. The workers keep their own checks: a job submitted with
``--skip_preflight`` still fails with the same messages.
"""

import collections
import contextlib
import dataclasses
import json
import logging
import socket
from typing import Callable, Dict, List, Optional, Tuple

from beam_pipeline.io.cassandra import consistency
from beam_pipeline.io.cassandra.connection import READ_PROFILE, CassandraConnection
from beam_pipeline.compat.kafka import broker_count, cluster_topics
from beam_pipeline.io.kafka.config import KafkaReadConfig, security_settings_hint
from beam_pipeline.io.kafka.metadata import (
    matching_topics, missing_topic_message, missing_topics, no_matching_topic_message)
from beam_pipeline.io.cassandra.offset_ledger import LEDGER_TABLE, ledger_ends
from beam_pipeline.io.cassandra.schema import LEASE_TABLE, create_schema, schema_command
from beam_pipeline.io.security import SecretError
from beam_pipeline.options import configs
from beam_pipeline.io.dead_letter_record import SMALLEST_DEAD_LETTER_TOPIC_LIMIT
from beam_pipeline.io.kafka.admin import (TopicConfigError, TopicCreationError, active_group_members, create_topic,
                                          default_replication_factor, topic_max_message_bytes)
from beam_pipeline.errors import BadSetting, KafkaReadError, ServiceUnreachable

_LOGGER = logging.getLogger(__name__)

# A service whose port takes no TCP connection within this long is unreachable (refused connections fail at once).
_TCP_PROBE_TIMEOUT_S = 3.0
# How long the preflight waits for a Kafka answer once a broker took the connection (at most
# --kafka_connect_timeout_s): a broker answers in milliseconds, so a longer wait only delays a clear error.
_KAFKA_TIMEOUT_S = 8.0
# The counter table's columns and their CQL types, and its key.
COUNTER_TABLE_COLUMNS = {'date': 'date', 'site_id': 'int', 'views': 'counter', 'clicks': 'counter'}
COUNTER_TABLE_PARTITION_KEY = ['date']
COUNTER_TABLE_CLUSTERING_KEY = ['site_id']


# Something missing that the launch may create: called once every check has passed, returns what it did.
Creation = Callable[[], str]


def _answers_tcp(addresses: List[Tuple[str, int]]) -> bool:
  """Whether any of the addresses takes a TCP connection: tells 'nothing listens there' in seconds, before a
  client library's own connect timeout."""
  for host, port in addresses:
    try:
      socket.create_connection((host, port), timeout=_TCP_PROBE_TIMEOUT_S).close()
      return True
    except OSError:
      continue
  return False


def check_kafka(config: KafkaReadConfig, dead_letter_topic: Optional[str], create_dead_letter_topic: bool,
                dead_letter_replication_factor: Optional[int],
                with_log_ends: bool = False) -> Tuple[List[Creation], Dict[Tuple[str, int], int]]:
  """Checks the brokers and the topics; returns the creation of the dead-letter topic when it is missing and
  that is allowed, and, ``with_log_ends``, where each source partition's log ends (else nothing is asked)."""
  servers = config.bootstrap_servers
  addresses = [server.strip().rpartition(':') for server in servers.split(',')]
  if not _answers_tcp([(host, int(port)) for host, _, port in addresses]):
    raise ServiceUnreachable(
        f'no Kafka broker answered at {servers}: check --bootstrap_servers and that the brokers run and are '
        'reachable from here (add --skip_preflight if only the workers can reach them)')
  timeout_s = min(config.connect_timeout_s, _KAFKA_TIMEOUT_S)
  try:
    consumer = dataclasses.replace(config, connect_timeout_s=timeout_s).connected_consumer('preflight')
  except KafkaReadError:
    raise BadSetting(
        f'{servers} took a connection but did not answer as a Kafka broker within {timeout_s:.0f}s: check '
        f'--bootstrap_servers (the port) and {security_settings_hint(config.security)}') from None
  try:
    topics = _source_topics(consumer, config, timeout_s)
    log_ends = _log_ends(consumer, topics) if with_log_ends else {}
    if config.commits_at_end:
      _refuse_catch_up_beside_members(config, timeout_s)
    if dead_letter_topic is None:
      return [], log_ends
    if dead_letter_topic in (cluster_topics(consumer, timeout_s) or ()):
      _refuse_a_dead_letter_topic_too_small(config, dead_letter_topic, timeout_s)
      return [], log_ends
    # As many partitions as the widest source topic, so that its dead letters may spread as its messages do.
    partitions = max((len(consumer.partitions_for_topic(topic)) for topic in topics), default=1)
    brokers = broker_count(consumer)
  finally:
    consumer.close(autocommit=False)
  replication = dead_letter_replication_factor or default_replication_factor(brokers)
  if not create_dead_letter_topic:
    raise BadSetting(
        f'dead-letter topic {dead_letter_topic!r} does not exist on {servers}: create it (kafka-topics.sh '
        f'--create --topic {dead_letter_topic} --partitions {partitions} --replication-factor {replication}), '
        'name another with --dead_letter_topic, or let the job create it (drop --no_create_dead_letter_topic)')

  def create() -> str:
    try:
      created = create_topic(servers, dead_letter_topic, partitions, replication, config.security, timeout_s)
    except TopicCreationError as error:
      raise BadSetting(f'{error}: create {dead_letter_topic!r} yourself, name another with --dead_letter_topic, '
                       'or set --dead_letter_replication_factor') from None
    if not created:
      return f'dead-letter topic {dead_letter_topic} exists (created meanwhile by another client)'
    return f'created dead-letter topic {dead_letter_topic} ({partitions} partitions, replication factor {replication})'
  return [create], log_ends


def _log_ends(consumer, topics: List[str]) -> Dict[Tuple[str, int], int]:
  from kafka import TopicPartition
  partitions = [TopicPartition(topic, partition) for topic in topics
                for partition in sorted(consumer.partitions_for_topic(topic) or ())]
  return {(tp.topic, tp.partition): end for tp, end in consumer.end_offsets(partitions).items()} if partitions else {}


def _refuse_a_recreated_topic(session, keyspace: str, table: str, log_ends: Dict[Tuple[str, int], int]) -> None:
  """A partition whose log ends below what the offset ledger holds of it was deleted and created again (or cut
  short): the ledger would skip its new messages as counted. Refused, naming the rows to delete if so."""
  if not log_ends:
    return
  ends = ledger_ends(session, keyspace, table, sorted({topic for topic, _ in log_ends}), READ_PROFILE)
  behind = sorted(key for key, end in ends.items() if key in log_ends and log_ends[key] < end)
  if behind:
    (topic, partition), more = behind[0], len(behind) - 1
    raise BadSetting(
        f'{topic}[{partition}] ends at offset {log_ends[(topic, partition)]}, but {keyspace}.{LEDGER_TABLE} holds '
        f'offsets up to {ends[(topic, partition)]} of it as counted into {table}'
        f'{f" (and {more} more partitions)" if more else ""}: the topic was deleted and created again, and its new '
        f'messages would be skipped as counted. If so, forget the old topic\'s offsets (DELETE FROM '
        f'{keyspace}.{LEDGER_TABLE} WHERE counter_table = \'{table}\' AND topic = \'{topic}\' AND partition IN '
        f'({", ".join(str(p) for t, p in sorted(log_ends) if t == topic)})) and run again')


def _refuse_a_dead_letter_topic_too_small(config: KafkaReadConfig, topic: str, timeout_s: float) -> None:
  """A dead letter larger than its topic takes is cut to fit (dead_letter_record.py), down to a limit; a topic that
  takes less would stop the job at its first dead letter. Unknown limits (no DescribeConfigs permission) pass: the
  publisher then cuts to Kafka's default."""
  try:
    limit = topic_max_message_bytes(config.bootstrap_servers, topic, config.security, timeout_s)
  except TopicConfigError:
    return
  if limit < SMALLEST_DEAD_LETTER_TOPIC_LIMIT:
    raise BadSetting(
        f'dead-letter topic {topic!r} takes records of at most {limit} bytes (max.message.bytes), too few for a '
        f'dead letter: raise it to at least {SMALLEST_DEAD_LETTER_TOPIC_LIMIT} (kafka-configs.sh --alter '
        f'--entity-type topics --entity-name {topic} --add-config max.message.bytes=1048588), or name another '
        'with --dead_letter_topic')


def _source_topics(consumer, config: KafkaReadConfig, timeout_s: float) -> List[str]:
  """Every topic --topic names, or those --topic_pattern matches (none is refused for a bounded run; a streaming
  one waits for them); PreflightError when a named topic is missing."""
  servers = config.bootstrap_servers
  no_answer = ServiceUnreachable(f'the Kafka brokers at {servers} sent no topic list within {timeout_s:.0f}s')
  if not config.topic_pattern:
    missing = missing_topics(consumer, config.topics, timeout_s)
    if missing is None:
      raise no_answer
    if missing:
      raise BadSetting(missing_topic_message(missing, servers))
    return list(config.topics)
  matching = matching_topics(consumer, config.topic_pattern, timeout_s)
  if matching is None:
    raise no_answer
  if not matching and config.bounded:
    raise BadSetting(no_matching_topic_message(config.topic_pattern, servers))
  _LOGGER.info('--topic_pattern %r matches %d topics on %s%s', config.topic_pattern, len(matching), servers,
               f': {", ".join(matching)}' if matching else '; the job waits for one to be created')
  return matching


def table_shape_problems(table_metadata) -> List[str]:
  """How a table differs from the counter table the job writes; empty when it has that shape."""
  problems = []
  columns = {name: column.cql_type for name, column in table_metadata.columns.items()}
  for name, cql_type in COUNTER_TABLE_COLUMNS.items():
    if name not in columns:
      problems.append(f'no column {name}')
    elif columns[name] != cql_type:
      problems.append(f'{name} is {columns[name]}, not {cql_type}')
  partition_key = [c.name for c in table_metadata.partition_key]
  clustering_key = [c.name for c in table_metadata.clustering_key]
  if partition_key != COUNTER_TABLE_PARTITION_KEY or clustering_key != COUNTER_TABLE_CLUSTERING_KEY:
    problems.append(f'its key is (({", ".join(partition_key)}), {", ".join(clustering_key)}), not ((date), site_id)')
  return problems


def check_cassandra(connection: CassandraConnection, keyspace: str, table: str, needs_leases: bool,
                    create: bool, replication: Optional[dict], needs_ledger: bool = False,
                    log_ends: Optional[Dict[Tuple[str, int], int]] = None) -> List[Creation]:
  """Checks that Cassandra answers and holds the counter table (and reconcile's lease table when
  ``needs_leases``, the offset ledger when ``needs_ledger``, which must not hold offsets past ``log_ends``, where
  the source partitions' logs end) of the right shape; returns the creation of what is missing when ``create``."""
  from cassandra import AuthenticationFailed
  from cassandra.cluster import NoHostAvailable
  keyspace, table = keyspace.lower(), table.lower()
  if not _answers_tcp([(host, connection.port) for host in connection.hosts]):
    raise ServiceUnreachable(
        f'no Cassandra node answered at {connection.address}: check --cassandra_hosts and --cassandra_port and '
        'that Cassandra runs and is reachable from here (add --skip_preflight if only the workers can reach it)')
  cluster = connection.cluster()
  try:
    try:
      session = cluster.connect()
    except NoHostAvailable as error:
      if any(isinstance(e, AuthenticationFailed) for e in error.errors.values()):
        raise BadSetting(f'Cassandra at {connection.address} refused the login of user '
                         f'{connection.security.username!r}: check --cassandra_username and its password '
                         '(--cassandra_password_env or --cassandra_password_file)') from None
      raise ServiceUnreachable(f'no Cassandra node answered at {connection.address}: '
                               f'{next(iter(error.errors.values()), error)}') from None
    existing = cluster.metadata.keyspaces.get(keyspace)
    if existing is not None and table in existing.tables:
      problems = table_shape_problems(existing.tables[table])
      if problems:
        raise BadSetting(
            f'table {keyspace}.{table} is not a site counter table ({"; ".join(problems)}): point --table at a '
            'table of the shape (date date, site_id int, views counter, clicks counter, PRIMARY KEY ((date), '
            f'site_id)), or create one with {schema_command(connection.hosts, connection.port, keyspace, "NEW_TABLE")}')
    wanted = [table] + ([LEASE_TABLE] if needs_leases else []) + ([LEDGER_TABLE] if needs_ledger else [])
    missing = [name for name in wanted if existing is None or name not in existing.tables]
    if missing and not create:
      what = f'keyspace {keyspace!r}' if existing is None else f'table {keyspace}.{missing[0]}'
      ledger = ' (the offset ledger, which counting once needs)' if missing[0] == LEDGER_TABLE else ''
      raise BadSetting(f'{what}{ledger} does not exist on {connection.address}: create it with '
                       f'{schema_command(connection.hosts, connection.port, keyspace, table)}, or add --create_schema')
    if existing is not None:
      replication = None  # the keyspace stays as it is
    elif replication is None:
      replication = {'class': 'SimpleStrategy', 'replication_factor': min(3, len(cluster.metadata.all_hosts()))}
    _check_consistency(connection, cluster, keyspace, needs_leases, replication or
                       consistency.replication_map(existing.replication_strategy), created=existing is None)
    if not missing:
      if needs_ledger:
        _refuse_a_recreated_topic(session, keyspace, table, log_ends or {})
      return []
    return [lambda: _create_schema(connection, keyspace, table, missing, replication)]
  finally:
    cluster.shutdown()


def _check_consistency(connection: CassandraConnection, cluster, keyspace: str, reads: bool,
                       replication: Optional[dict], created: bool) -> None:
  """Refuses a consistency level that the keyspace's replication (``created``: the one it will be created with)
  cannot meet on the nodes not known to be down: every write would fail, after the job has started."""
  placed = consistency.placement(replication) if replication else None
  hosts = cluster.metadata.all_hosts()
  if placed is None or (created and not {dc for dc in placed if dc} <= {host.datacenter for host in hosts}):
    return  # a strategy the job does not reason about; an unknown datacenter, which Cassandra refuses by name
  known, up = collections.Counter(), collections.Counter()
  for host in hosts:
    for scope in (None, host.datacenter):
      known[scope] += 1
      up[scope] += host.is_up is not False  # None: not yet probed (a remote datacenter's nodes)
  control = cluster.get_control_connection_host()
  local_dc = connection.local_dc or (control.datacenter if control else None)
  levels = [('--cassandra_write_consistency', connection.write_consistency)]
  if reads:
    levels.append(('--cassandra_read_consistency', connection.read_consistency))
  for option, level in levels:
    short = consistency.shortfall(level, placed, up, local_dc)
    if short is None:
      continue
    where = 'the cluster' if short.scope is None else f'datacenter {short.scope}'
    head = (f'keyspace {keyspace} (replication {_cql_map(replication)}) cannot meet {option} {level}: it needs '
            f'{short.needed} replicas in {where}')
    if short.replication_too_low:
      raised = consistency.raised_replication(replication, placed, short, local_dc)
      fix = (f"--schema_replication '{json.dumps(raised)}'" if created else
             f'ALTER KEYSPACE {keyspace} WITH replication = {_cql_map(raised)}')
      nodes = '' if up[short.scope] >= short.needed else f' and have {short.needed} nodes up in {where}'
      raise BadSetting(f'{head}, and the keyspace places {short.placed} there: lower {option}, or raise the '
                       f'keyspace\'s replication ({fix}){nodes}')
    fix = 'start the nodes that are down' if known[short.scope] > up[short.scope] else 'add nodes'
    raise BadSetting(f'{head}, and only {short.reachable} of its {short.placed} can be on nodes that are up '
                     f'({up[short.scope]} of {known[short.scope]} nodes in {where}): lower {option}, or {fix}')


def _cql_map(replication: dict) -> str:
  return '{' + ', '.join(f"'{key}': '{value}'" for key, value in replication.items()) + '}'


def _create_schema(connection: CassandraConnection, keyspace: str, table: str, missing: List[str],
                   new_keyspace_replication: Optional[dict]) -> str:
  from cassandra import DriverException, RequestExecutionException
  from cassandra.protocol import ErrorMessage  # every error a server answers with
  cluster = connection.cluster()
  try:
    create_schema(cluster.connect(), keyspace, table, new_keyspace_replication)
  except (DriverException, RequestExecutionException, ErrorMessage) as error:
    raise BadSetting(f'Cassandra at {connection.address} refused to create {", ".join(missing)} in {keyspace} '
                     f'({error}): check --schema_replication and that --cassandra_username may create them, or '
                     f'create them with {schema_command(connection.hosts, connection.port, keyspace, table)}') from None
  finally:
    cluster.shutdown()
  created = ', '.join(f'{keyspace}.{name}' for name in missing)
  if new_keyspace_replication:
    return f'created keyspace {keyspace} (replication {new_keyspace_replication}) and {created}'
  return f'created {created}'


def _refuse_catch_up_beside_members(config: KafkaReadConfig, timeout_s: float) -> None:
  """A catch-up reads the group's partitions from its committed offsets and commits its stop offsets at the end:
  beside streaming copies of the job that hold them it would read what they read, and move their offsets."""
  from kafka.errors import KafkaError
  try:
    members = active_group_members(config.bootstrap_servers, config.consumer_group, config.security, timeout_s)
  except KafkaError as error:
    # No describe permission on the group, or no answer: not a reason to refuse the run.
    _LOGGER.warning('the members of consumer group %r could not be listed (%s): if copies of the streaming job '
                    'run in it, this catch-up reads what they read', config.consumer_group, error)
    return
  if members:
    names = ', '.join(f'{client} on {host}' for client, host in members)
    raise BadSetting(
        f'consumer group {config.consumer_group!r} has active members ({names}): a catch-up would read what they '
        'read; stop them first, read a window (--start_time/--stop_time) or use another --consumer_group')


def preflight(site, kafka_config: KafkaReadConfig, connection: CassandraConnection,
              dead_letter_topic: Optional[str], replication: Optional[dict]) -> List[str]:
  """Runs every check for the job ``site`` describes, then creates what is missing and may be created; returns
  what it created, one line each.

  Credentials only the workers can read (a password in an environment variable of theirs, a CA file in their
  image) cannot be checked here: then that service is left to the workers' own checks.
  """
  creations = []
  with _drivers_quiet():
    try:
      kafka_creations, log_ends = check_kafka(kafka_config, dead_letter_topic, site.create_dead_letter_topic,
                                              site.dead_letter_replication_factor,
                                              with_log_ends=configs.counts_once(site))
    except (SecretError, OSError) as error:
      kafka_creations, log_ends = [], {}
      _LOGGER.warning('Kafka not checked before launch (%s); the workers check it', error)
    try:
      creations += check_cassandra(connection, site.keyspace, site.table, site.sink_mode == 'reconcile',
                                   site.create_schema, replication, needs_ledger=configs.counts_once(site),
                                   log_ends=log_ends)
    except (SecretError, OSError) as error:
      _LOGGER.warning('Cassandra not checked before launch (%s); the workers check it', error)
    # Created only once every check passed, so that a launch refused by a check leaves nothing behind; the
    # schema first, being the creation most likely refused (replication, permissions).
    return [create() for create in creations + kafka_creations]


@contextlib.contextmanager
def _drivers_quiet():
  """While checking, the drivers' own complaints about a refused connection would only repeat, in many lines,
  what the one-line error says; at DEBUG they are kept."""
  loggers = [logging.getLogger(name) for name in ('kafka', 'cassandra')]
  levels = [logger.level for logger in loggers]
  for logger in loggers:
    if logger.getEffectiveLevel() > logging.DEBUG:
      logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    for logger, level in zip(loggers, levels):
      logger.setLevel(level)
