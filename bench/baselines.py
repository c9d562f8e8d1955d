"""The Python contenders of the benchmark, each run as its own process so that its CPU and memory are its own.

    python -m bench.baselines raw --topic T                       kafka-python fetch + decode, nothing else
    python -m bench.baselines naive --topic T --keyspace K        the old consumer loop: one UPDATE per message
    python -m bench.baselines pipeline --topic T --keyspace K     this pipeline, bounded, on the local runner

Each prints one JSON object: messages, cassandra_writes, elapsed_s.
"""

import argparse
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def _drain(bootstrap_servers: str, topic: str):
  """Yields every record in the topic now, partition by partition in poll order, then stops."""
  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                           max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024,
                           receive_message_max_bytes=64 * 1024 * 1024)
  partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
  consumer.assign(partitions)
  consumer.seek_to_beginning(*partitions)
  end = consumer.end_offsets(partitions)
  while any(consumer.position(tp) < end[tp] for tp in partitions):
    for records in consumer.poll(timeout_ms=500).values():
      yield from records
  consumer.close()


def raw(args) -> dict:
  messages = sum(1 for _ in _drain(args.bootstrap_servers, args.topic))
  return {'messages': messages, 'cassandra_writes': 0}


def naive(args) -> dict:
  """What the team had before: parse, validate with the same schema, one synchronous UPDATE per message."""
  import marshmallow
  from beam_pipeline.io.cassandra.connection import CassandraConnection
  from beam_pipeline.transforms.parse import parse_value
  from beam_pipeline.io.cassandra.schema import DEFAULT_TABLE, increment_cql
  from beam_pipeline.transforms.validate import SiteEventSchema
  schema = SiteEventSchema()
  cluster = CassandraConnection((args.cassandra_host,), args.cassandra_port).cluster()
  session = cluster.connect()
  update = session.prepare(increment_cql(args.keyspace, DEFAULT_TABLE))
  messages = writes = 0
  for record in _drain(args.bootstrap_servers, args.topic):
    messages += 1
    try:
      event = schema.load(parse_value(record.value))
    except (ValueError, marshmallow.ValidationError):
      continue
    session.execute(update, (event['views'], event['clicks'], event['date'], event['site_id']))
    writes += 1
  cluster.shutdown()
  return {'messages': messages, 'cassandra_writes': writes}


def pipeline(args) -> dict:
  from beam_pipeline.launch.run import run
  _, summary = run(['--bootstrap_servers', args.bootstrap_servers, '--topic', args.topic, '--keyspace',
                    args.keyspace, '--cassandra_hosts', args.cassandra_host, '--cassandra_port',
                    str(args.cassandra_port), '--consumer_group', f'bench-{args.keyspace}', '--bounded',
                    *args.job_options])
  return {'messages': summary.read, 'cassandra_writes': summary.cassandra_writes,
          'cassandra_requests': summary.cassandra_requests}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m bench.baselines', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('contender', choices=['raw', 'naive', 'pipeline'])
  parser.add_argument('--bootstrap_servers', default='127.0.0.1:9092')
  parser.add_argument('--topic', required=True)
  parser.add_argument('--keyspace')
  parser.add_argument('--cassandra_host', default='127.0.0.1')
  parser.add_argument('--cassandra_port', type=int, default=9042)
  args, args.job_options = parser.parse_known_args(argv)
  if args.job_options and args.contender != 'pipeline':
    parser.error(f'unrecognized arguments: {" ".join(args.job_options)}')
  import logging
  logging.basicConfig(level=logging.WARNING, force=True)
  started = time.monotonic()
  result = {'raw': raw, 'naive': naive, 'pipeline': pipeline}[args.contender](args)
  result['elapsed_s'] = time.monotonic() - started
  print(json.dumps(result))
  return 0


if __name__ == '__main__':
  sys.exit(main())
