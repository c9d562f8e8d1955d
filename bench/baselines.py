"""The Python contenders of the benchmark, each run as its own process so that its CPU and memory are its own.

    python -m bench.baselines raw --topic T                       kafka-python fetch + decode, nothing else
    python -m bench.baselines raw_confluent --topic T             the same through librdkafka (confluent-kafka)
    python -m bench.baselines naive --topic T --keyspace K        the old consumer loop: one UPDATE per message
    python -m bench.baselines pipeline --topic T --keyspace K     this pipeline, bounded, on the local runner
    python -m bench.baselines streaming --topic T --keyspace K --runner FlinkRunner --flink_master H:P
                                                                  a streaming job, from its submission until
                                                                  its group has committed the whole topic
    python -m bench.baselines flink_java --topic T --keyspace K --jar J --flink_master H:P --parallelism N
        --job_name NAME                                           the Java Flink job (bench/flink_java) on the
                                                                  session cluster, until it has finished

Each prints one JSON object: messages, cassandra_writes, elapsed_s.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from beam_pipeline.processes.command import begin_job_process, end_process


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


def raw_confluent(args) -> dict:
  """librdkafka's fetch and decode, and the Python objects of each message's columns, as the reader takes them."""
  from confluent_kafka import Consumer, TopicPartition as Partition
  consumer = Consumer({'bootstrap.servers': args.bootstrap_servers, 'group.id': 'bench-raw',
                       'enable.auto.commit': False, 'isolation.level': 'read_uncommitted',
                       'max.partition.fetch.bytes': 4 * 1024 * 1024, 'fetch.max.bytes': 32 * 1024 * 1024,
                       'fetch.queue.backoff.ms': 10})
  partitions = consumer.list_topics(args.topic, timeout=10).topics[args.topic].partitions
  remaining = {p: consumer.get_watermark_offsets(Partition(args.topic, p), timeout=10)[1] for p in partitions}
  consumer.assign([Partition(args.topic, p, 0) for p in partitions])
  messages = 0
  while any(end > 0 for end in remaining.values()):
    batch = [m for m in consumer.consume(num_messages=100000, timeout=0.5) if m.error() is None]
    for message in batch:
      if message.offset() + 1 >= remaining[message.partition()]:
        remaining[message.partition()] = 0
    messages += len([(m.offset(), m.timestamp(), m.key(), m.value()) for m in batch])
  consumer.close()
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
  argv = ['--bootstrap_servers', args.bootstrap_servers, '--topic', args.topic, '--keyspace', args.keyspace,
          '--cassandra_hosts', args.cassandra_host, '--cassandra_port', str(args.cassandra_port),
          '--consumer_group', f'bench-{args.keyspace}', '--bounded', *args.job_options]
  begin_job_process(argv)  # as `python -m beam_pipeline` does, before Beam is first imported
  from beam_pipeline.launch.run import run
  _, summary = run(argv)
  return {'messages': summary.read, 'cassandra_writes': summary.cassandra_writes,
          'cassandra_requests': summary.cassandra_requests}


def streaming(args) -> dict:
  """Submits a streaming job that returns once submitted (a Flink cluster's, named by --job_name), waits until its
  consumer group has committed every partition's end, then cancels it."""
  from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions
  from beam_pipeline.launch.run import run
  from beam_pipeline.runners.flink.rest import cancel_flink_job
  from beam_pipeline.runners.flink.runner import flink_rest_addresses
  from beam_pipeline.testing.topics import TopicOffsets
  group = f'bench-{args.keyspace}'
  argv = ['--bootstrap_servers', args.bootstrap_servers, '--topic', args.topic, '--keyspace', args.keyspace,
          '--cassandra_hosts', args.cassandra_host, '--cassandra_port', str(args.cassandra_port),
          '--consumer_group', group, *args.job_options]
  started = time.monotonic()
  run(argv, wait=False)
  submitted_s = time.monotonic() - started
  with TopicOffsets(args.bootstrap_servers, args.topic, group) as offsets:
    while not offsets.all_committed():
      time.sleep(0.2)
    messages = sum(offsets.end().values())
  caught_up_ms = int(time.time() * 1000)
  options = PipelineOptions(argv)
  cancel_flink_job(flink_rest_addresses(options), options.view_as(GoogleCloudOptions).job_name)
  return {'messages': messages, 'submitted_s': submitted_s, 'caught_up_ms': caught_up_ms}


def copies(args) -> dict:
  """Runs ``--copies`` copies of the streaming job (the job's options follow) in one consumer group, as users
  scale it out; SIGTERM stops them all."""
  job = [sys.executable, '-m', 'beam_pipeline', '--topic', args.topic, '--bootstrap_servers', args.bootstrap_servers,
         '--keyspace', args.keyspace, '--cassandra_hosts', args.cassandra_host, '--cassandra_port',
         str(args.cassandra_port), *args.job_options]
  jobs = [subprocess.Popen(job) for _ in range(args.copies)]
  signal.signal(signal.SIGTERM, lambda *unused: [job.send_signal(signal.SIGTERM) for job in jobs])
  return {'copies': args.copies, 'returncodes': [job.wait() for job in jobs]}


# The session cluster serves no /jars endpoints (they need flink-runtime-web, which its classpath lacks), so the
# jar goes the way `flink run` sends it: Flink's client runs the job's main, builds the job graph and posts it with
# the jar to POST /jobs.
_FLINK_CLIENT = 'org.apache.flink.client.cli.CliFrontend'
_SUBMITTED = re.compile(r'Job has been submitted with JobID ([0-9a-f]{32})')
_JOB_ENDED = ('FINISHED', 'FAILED', 'CANCELED')


def flink_java(args) -> dict:
  """Submits the Java job (bench/flink_java, options after the Kafka and Cassandra ones) to the session cluster,
  detached, waits until it has ended, and reports its figures from the job's accumulators."""
  from beam_pipeline import REPO_ROOT
  from beam_pipeline.processes import jvm
  from beam_pipeline.runners.flink.jvm import SUPPORTED_JAVA
  from beam_pipeline.runners.flink.rest import rest_get
  parser = argparse.ArgumentParser(prog='python -m bench.baselines flink_java')
  parser.add_argument('--jar', required=True)
  parser.add_argument('--flink_master', required=True, help='host:port of the session cluster\'s REST API')
  parser.add_argument('--parallelism', type=int, required=True)
  parser.add_argument('--job_name', required=True)
  job = parser.parse_args(args.job_options)
  host, port = job.flink_master.rsplit(':', 1)
  program = ['--bootstrap_servers', args.bootstrap_servers, '--topic', args.topic,
             '--consumer_group', f'bench-{args.keyspace}', '--keyspace', args.keyspace,
             '--cassandra_host', args.cassandra_host, '--cassandra_port', str(args.cassandra_port),
             '--parallelism', str(job.parallelism), '--job_name', job.job_name]
  with tempfile.TemporaryDirectory(prefix='flink-client-') as conf_dir:
    # The client's configuration: only where the cluster is (the cluster's own would start its metric reporter).
    (Path(conf_dir) / 'flink-conf.yaml').write_text(f'rest.address: {host}\nrest.port: {port}\n')
    java = jvm.find_java(SUPPORTED_JAVA, "Flink 1.19's client")
    flink_classpath = jvm.classpath(REPO_ROOT / '.local' / 'jars' / 'flink')  # the cluster's own jars
    client = subprocess.run([java, '-cp', flink_classpath, _FLINK_CLIENT, 'run', '--detached', job.jar, *program],
                            env={**os.environ, 'FLINK_CONF_DIR': conf_dir}, capture_output=True, text=True)
  submitted = _SUBMITTED.search(client.stdout)
  if client.returncode != 0 or submitted is None:
    raise RuntimeError(f'the Flink client did not submit {job.jar} (exit {client.returncode}): '
                       f'{(client.stdout + client.stderr)[-3000:]}')
  job_id = submitted.group(1)
  while (state := rest_get(job.flink_master, f'/jobs/{job_id}')['state']) not in _JOB_ENDED:
    time.sleep(0.2)
  if state != 'FINISHED':
    root = rest_get(job.flink_master, f'/jobs/{job_id}/exceptions').get('root-exception') or ''
    raise RuntimeError(f'the Flink job {job.job_name} ({job_id}) ended {state}: {root[:3000]}')
  totals = {a['name']: int(a['value'])
            for a in rest_get(job.flink_master, f'/jobs/{job_id}/accumulators')['user-task-accumulators']}
  # One UPDATE per request: the job sends no batches.
  return {'messages': totals['messages_read'], 'invalid': totals['messages_invalid'],
          'cassandra_writes': totals['cassandra_writes'], 'cassandra_requests': totals['cassandra_writes'],
          'job_id': job_id}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m bench.baselines', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('contender',
                      choices=['raw', 'raw_confluent', 'naive', 'pipeline', 'streaming', 'copies', 'flink_java'])
  parser.add_argument('--copies', type=int, default=2)
  parser.add_argument('--bootstrap_servers', default='127.0.0.1:9092')
  parser.add_argument('--topic', required=True)
  parser.add_argument('--keyspace')
  parser.add_argument('--cassandra_host', default='127.0.0.1')
  parser.add_argument('--cassandra_port', type=int, default=9042)
  args, args.job_options = parser.parse_known_args(argv)
  if args.job_options and args.contender not in ('pipeline', 'streaming', 'copies', 'flink_java'):
    parser.error(f'unrecognized arguments: {" ".join(args.job_options)}')
  import logging
  logging.basicConfig(level=logging.WARNING, force=True)
  started = time.monotonic()
  result = {'raw': raw, 'raw_confluent': raw_confluent, 'naive': naive, 'pipeline': pipeline,
            'streaming': streaming, 'copies': copies, 'flink_java': flink_java}[args.contender](args)
  result['elapsed_s'] = time.monotonic() - started
  print(json.dumps(result))
  return 0


if __name__ == '__main__':
  # Ended as `python -m beam_pipeline` ends, so that every contender's process is timed alike.
  end_process(main())
