"""Runs the counter job: ``python -m beam_pipeline --topic T --keyspace K [--bounded] [options]``.

Locally (default runner) it runs on Beam's in-process Python runner; pass ``--runner FlinkRunner`` or
``--runner DataflowRunner`` with their options to run the same graph there. ``--help`` lists every option.

Run as a command, it leaves Beam's Google Cloud client libraries out unless the job runs on Dataflow or names a
gs:// location (beam_pipeline.runners.google_cloud_imports), so it imports Beam only once that is decided. A local
run's worker processes are started first of all, to import while this one does (runners/local/worker_pool.py).
"""

import argparse
import logging
import os
import sys

from beam_pipeline.runners.google_cloud_imports import leave_out_unless_arguments_need_it
from beam_pipeline.runners.local.worker_pool import start_ahead


def _help_parser() -> argparse.ArgumentParser:
  from beam_pipeline.compat.beam import add_declared_arguments
  from beam_pipeline.options.site_stats import SiteStatsOptions
  parser = argparse.ArgumentParser(
      prog='python -m beam_pipeline', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='Beam\'s own options (--runner, --streaming, --flink_master, --project, ...) are accepted too.')
  add_declared_arguments(SiteStatsOptions, parser)
  return parser


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if '-h' in argv or '--help' in argv:
    _help_parser().print_help()
    return 0
  from apache_beam.options.pipeline_options import PipelineOptions
  from beam_pipeline.launch import failures
  from beam_pipeline.options.known_flags import unknown_options
  from beam_pipeline.options.site_stats import SiteStatsOptions
  unknown = unknown_options(argv)
  if unknown:
    print(f'error: unknown option(s) {", ".join(unknown)}; see python -m beam_pipeline --help', file=sys.stderr)
    return 2
  verbose = failures.configure_logging(PipelineOptions(argv).view_as(SiteStatsOptions))
  from beam_pipeline.launch.run import run
  try:
    _, summary = run(argv)
  except Exception as error:  # pylint: disable=broad-except
    return failures.report(error, verbose)[1]
  if summary is not None:
    print(f'summary: {summary.text()}')
  return 0


def end_process(exit_code: int) -> None:
  """Ends the command without the interpreter's finalization of Beam's and the clients' modules (0.2-0.3 s): the
  run is over, its outputs durable and its offsets committed; only the logs and the console are left to flush.
  Worker processes it started end with it (they watch their parent)."""
  logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(exit_code)  # pylint: disable=protected-access


if __name__ == '__main__':
  leave_out_unless_arguments_need_it(sys.argv[1:])
  start_ahead(sys.argv[1:])
  end_process(main())
