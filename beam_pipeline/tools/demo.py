"""The newcomer's first run: a demo dataset through the bounded job, then the counters read back.

    python -m beam_pipeline.tools.demo [--count 100000] [--bad_ratio 0.01]     (what ./run_local.sh runs)

Recreates the demo topic and keyspace, produces the dataset, counts it on the local runner and shows the
top sites and whether Cassandra's totals equal the sums of the valid messages.
"""

import argparse
import collections
import logging
import sys

from beam_pipeline.tools import produce
from beam_pipeline.io.cassandra import schema
from beam_pipeline.io.cassandra.connection import build_cluster
from beam_pipeline.launch.run import run
from beam_pipeline.io.kafka.admin import delete_topics, ensure_topics


def _reset(args) -> None:
  from kafka import KafkaAdminClient
  from kafka.errors import KafkaError
  delete_topics(args.bootstrap_servers, [args.topic, f'{args.topic}-dlq'])
  admin = KafkaAdminClient(bootstrap_servers=args.bootstrap_servers.split(','))
  try:
    admin.delete_consumer_groups([args.consumer_group])
  except KafkaError:
    pass  # no such group yet
  finally:
    admin.close()
  ensure_topics(args.bootstrap_servers, [args.topic, f'{args.topic}-dlq'], args.partitions)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m beam_pipeline.tools.demo', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--bootstrap_servers', default='localhost:9092')
  parser.add_argument('--cassandra_hosts', default='127.0.0.1')
  parser.add_argument('--cassandra_port', type=int, default=9042)
  parser.add_argument('--topic', default='site-events-demo')
  parser.add_argument('--keyspace', default='site_stats_demo')
  parser.add_argument('--consumer_group', default='site-stats-demo')
  parser.add_argument('--partitions', type=int, default=4)
  parser.add_argument('--count', type=int, default=100000)
  parser.add_argument('--keys', type=int, default=10000)
  parser.add_argument('--bad_ratio', type=float, default=0.01)
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s', force=True)
  for noisy in ('kafka', 'cassandra', 'apache_beam'):
    logging.getLogger(noisy).setLevel(logging.WARNING)

  print(f'1. fresh topic {args.topic} ({args.partitions} partitions) and keyspace {args.keyspace}')
  _reset(args)
  cluster = build_cluster(args.cassandra_hosts.split(','), args.cassandra_port)
  session = cluster.connect()
  session.execute(f'DROP KEYSPACE IF EXISTS {schema.check_identifier(args.keyspace, "keyspace")}')
  schema.create_schema(session, args.keyspace)

  print(f'2. producing {args.count} messages over {args.keys} keys, {args.bad_ratio:.1%} malformed')
  expected = produce.produce(args.bootstrap_servers, args.topic,
                             produce.generate(args.count, args.keys, args.bad_ratio, seed=7))

  print('3. running the bounded job on the local runner')
  _, summary = run(['--bootstrap_servers', args.bootstrap_servers, '--topic', args.topic,
                    '--consumer_group', args.consumer_group, '--cassandra_hosts', args.cassandra_hosts,
                    '--cassandra_port', str(args.cassandra_port), '--keyspace', args.keyspace, '--bounded'])

  rows = list(session.execute(f'SELECT date, site_id, views, clicks FROM {args.keyspace}.site_stats'))
  cluster.shutdown()
  by_site = collections.defaultdict(lambda: [0, 0])
  for row in rows:
    by_site[row.site_id][0] += row.views
    by_site[row.site_id][1] += row.clicks
  print('4. top sites by views, read back from Cassandra')
  print(f'   {"site_id":>8} {"views":>8} {"clicks":>8}')
  for site_id, (views, clicks) in sorted(by_site.items(), key=lambda item: (-item[1][0], item[0]))[:10]:
    print(f'   {site_id:>8} {views:>8} {clicks:>8}')
  counted = {(row.date.date(), row.site_id): (row.views, row.clicks) for row in rows}
  exact = counted == {key: tuple(totals) for key, totals in expected.per_key.items()}
  print(f'summary: {summary.text()}')
  print(f'expected: {expected.valid} valid, {expected.messages - expected.valid} malformed; '
        f'counters equal the sums of the valid messages: {"yes" if exact else "NO"}')
  print(f'dead letters: topic {args.topic}-dlq')
  return 0 if exact and summary.read == summary.counted + summary.dead_lettered_total else 1


if __name__ == '__main__':
  sys.exit(main())
