"""The counter table the pipeline writes to, reconcile's lease table and the offset ledger, as CQL, and their
creation.

Keyspace and table names are checked as plain CQL identifiers before they reach any statement, because
DDL cannot take bind markers.
"""

import logging
import re
from typing import Mapping, Union

from beam_pipeline.io.cassandra.offset_ledger import ledger_table_cql


_LOGGER = logging.getLogger(__name__)

DEFAULT_TABLE = 'site_stats'
# The command that creates the keyspace and tables (beam_pipeline/tools/create_schema.py).
SCHEMA_COMMAND = 'python -m beam_pipeline.tools.create_schema'
# Reconcile's per-date leases (a counter table cannot hold other columns, so they live beside it).
LEASE_TABLE = 'reconcile_leases'
DEFAULT_REPLICATION = {'class': 'SimpleStrategy', 'replication_factor': 1}

# Unquoted CQL names: a letter, then letters, digits or underscores; Cassandra caps them at 48 characters.
_IDENTIFIER = re.compile(r'[A-Za-z][A-Za-z0-9_]{0,47}')
_REPLICATION_TOKEN = re.compile(r'[A-Za-z0-9_.\-]+')


def check_identifier(name: str, what: str) -> str:
  """Returns ``name`` lowered (as CQL folds unquoted names) or raises ValueError saying what is allowed."""
  if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
    raise ValueError(
        f'{what} name {name!r} is not a valid CQL identifier: use a letter followed by up to 47 letters, '
        'digits or underscores')
  return name.lower()


def replication_cql(replication: Mapping[str, Union[str, int]]) -> str:
  """Renders a replication map as a CQL literal, accepting only plain names and numbers."""
  if not isinstance(replication, Mapping) or 'class' not in replication:
    raise ValueError(f'replication must be a JSON object with a "class", got {replication!r}')
  items = []
  for key, value in replication.items():
    if isinstance(value, bool) or not isinstance(value, (str, int)):
      raise ValueError(f'replication value for {key!r} must be a string or an integer, got {value!r}')
    for token in (key, str(value)):
      if not _REPLICATION_TOKEN.fullmatch(token):
        raise ValueError(f'replication entry {key!r}: {value!r} has characters other than letters, digits, '
                         '"_", "." and "-"')
    items.append(f"'{key}': '{value}'")
  return '{' + ', '.join(items) + '}'


def table_cql(keyspace: str, table: str) -> str:
  return (f'CREATE TABLE IF NOT EXISTS {keyspace}.{table} ('
          'date date, site_id int, views counter, clicks counter, PRIMARY KEY ((date), site_id))')


def increment_cql(keyspace: str, table: str) -> str:
  """The counter UPDATE every writer prepares: views, clicks, date, site_id."""
  return (f'UPDATE {keyspace}.{table} SET views = views + ?, clicks = clicks + ? '
          'WHERE date = ? AND site_id = ?')


def create_schema(session, keyspace: str, table: str = DEFAULT_TABLE,
                  replication: Mapping[str, Union[str, int]] = None) -> None:
  """Creates keyspace and table if missing; safe to run any number of times."""
  keyspace = check_identifier(keyspace, 'keyspace')
  table = check_identifier(table, 'table')
  replication = replication_cql(replication or DEFAULT_REPLICATION)
  session.execute(f'CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}')
  session.execute(table_cql(keyspace, table))
  session.execute(f'CREATE TABLE IF NOT EXISTS {keyspace}.{LEASE_TABLE} '
                  '(date date PRIMARY KEY, owner text, acquired_at timestamp)')
  session.execute(ledger_table_cql(keyspace))
  _LOGGER.info('schema ready: %s.%s', keyspace, table)


def schema_command(hosts, port: int, keyspace: str, table: str) -> str:
  """The command line that creates this keyspace and table, for messages that tell the user to run it."""
  return (f'{SCHEMA_COMMAND} --cassandra_hosts {",".join(hosts)} --cassandra_port {port} --keyspace {keyspace} '
          f'--table {table}')
