"""Creates the keyspace, the counter table the pipeline writes to, reconcile's lease table and the offset ledger,
if missing.

    python -m beam_pipeline.tools.create_schema --cassandra_hosts 127.0.0.1 --cassandra_port 9042 \\
        --keyspace site_stats_ks [--table site_stats] [--replication '{"class": "SimpleStrategy", "replication_factor": 1}']
"""

import argparse
import json
import logging
import sys

from beam_pipeline.io.cassandra.connection import DEFAULT_PORT, build_cluster
from beam_pipeline.io.cassandra.schema import SCHEMA_COMMAND, DEFAULT_TABLE, check_identifier, create_schema, replication_cql
from beam_pipeline.io.security import add_cassandra_security_arguments, cassandra_security_from

def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog=SCHEMA_COMMAND, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--cassandra_hosts', default='127.0.0.1', help='comma-separated contact points')
  parser.add_argument('--cassandra_port', type=int, default=DEFAULT_PORT)
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
