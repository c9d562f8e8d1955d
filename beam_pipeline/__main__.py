"""Runs the counter job: ``python -m beam_pipeline --topic T --keyspace K [--bounded] [options]``.

Locally (default runner) it runs on Beam's in-process Python runner; pass ``--runner FlinkRunner`` or
``--runner DataflowRunner`` with their options to run the same graph there. ``--help`` lists every option.
"""

import argparse
import logging
import sys
import traceback

from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline import failures
from beam_pipeline.options import SiteStatsOptions, unknown_options


_LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'


def _help_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='python -m beam_pipeline', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='Beam\'s own options (--runner, --streaming, --flink_master, --project, ...) are accepted too.')
  SiteStatsOptions._add_argparse_args(parser)  # pylint: disable=protected-access
  return parser


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if '-h' in argv or '--help' in argv:
    _help_parser().print_help()
    return 0
  unknown = unknown_options(argv)
  if unknown:
    print(f'error: unknown option(s) {", ".join(unknown)}; see python -m beam_pipeline --help', file=sys.stderr)
    return 2
  site = PipelineOptions(argv).view_as(SiteStatsOptions)
  verbose = site.verbose or site.log_level == 'DEBUG'
  # force: importing Beam may already have configured the root logger with a bare format.
  logging.basicConfig(level=site.log_level, format=_LOG_FORMAT, force=True)
  if not verbose:
    logging.getLogger().handlers[0].setFormatter(failures.TracebackFreeFormatter(_LOG_FORMAT))
  logging.getLogger('kafka').setLevel(logging.WARNING)
  logging.getLogger('cassandra').setLevel(logging.WARNING)
  from beam_pipeline.pipeline import run
  try:
    _, summary = run(argv)
  except Exception as error:  # pylint: disable=broad-except
    line, exit_code = failures.describe(error)
    if verbose:
      traceback.print_exc()
    print(line, file=sys.stderr)
    return exit_code
  if summary is not None:
    print(f'summary: {summary.text()}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
