"""Creates the keyspace, the counter table the pipeline writes to and reconcile's lease table, if missing.

    python -m beam_pipeline.schema --cassandra_hosts 127.0.0.1 --cassandra_port 9042 --keyspace site_stats_ks \\
        [--table site_stats] [--replication '{"class": "SimpleStrategy", "replication_factor": 1}']

Keyspace and table names are checked as plain CQL identifiers before they reach any statement, because
DDL cannot take bind markers.
"""

import argparse
import json
import logging
import re
import sys
from typing import Mapping, Union

from beam_pipeline.cassandra_connection import build_cluster
from beam_pipeline.security import add_cassandra_security_arguments, cassandra_security_from

_LOGGER = logging.getLogger(__name__)

DEFAULT_TABLE = 'site_stats'
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
  _LOGGER.info('schema ready: %s.%s', keyspace, table)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m beam_pipeline.schema', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--cassandra_hosts', default='127.0.0.1', help='comma-separated contact points')
  parser.add_argument('--cassandra_port', type=int, default=9042)
  parser.add_argument('--keyspace', required=True)
  parser.add_argument('--table', default=DEFAULT_TABLE)
  parser.add_argument('--replication', type=json.loads, default=None,
                      help='keyspace replication as JSON (default: SimpleStrategy, replication_factor 1)')
  add_cassandra_security_arguments(parser)
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(message)s')
  try:
    check_identifier(args.keyspace, 'keyspace')
    check_identifier(args.table, 'table')
    if args.replication is not None:
      replication_cql(args.replication)
    security = cassandra_security_from(args)
    security.check()
  except ValueError as error:
    parser.error(str(error))
  cluster = build_cluster(args.cassandra_hosts.split(','), args.cassandra_port, security)
  try:
    create_schema(cluster.connect(), args.keyspace, args.table, args.replication)
  finally:
    cluster.shutdown()
  print(f'{args.keyspace.lower()}.{args.table.lower()} is ready')
  return 0


if __name__ == '__main__':
  sys.exit(main())
