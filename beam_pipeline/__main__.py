"""Runs the counter job: ``python -m beam_pipeline --topic T --keyspace K [--bounded] [options]``.

Locally (default runner) it runs on Beam's in-process Python runner; pass ``--runner FlinkRunner`` or
``--runner DataflowRunner`` with their options to run the same graph there. ``--help`` lists every option.
"""

import argparse
import logging
import sys

from beam_pipeline.options import OptionError, SiteStatsOptions, unknown_options


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
  # force: importing Beam may already have configured the root logger with a bare format.
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s', force=True)
  logging.getLogger('kafka').setLevel(logging.WARNING)
  logging.getLogger('cassandra').setLevel(logging.WARNING)
  unknown = unknown_options(argv)
  if unknown:
    print(f'error: unknown option(s) {", ".join(unknown)}; see python -m beam_pipeline --help', file=sys.stderr)
    return 2
  from beam_pipeline.pipeline import run
  try:
    _, summary = run(argv)
  except OptionError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  if summary is not None:
    print(f'summary: {summary.text()}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
