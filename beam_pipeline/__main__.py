"""Runs the counter job: ``python -m beam_pipeline --topic T --keyspace K [--bounded] [options]``.

Locally (default runner) it runs on Beam's in-process Python runner; pass ``--runner FlinkRunner`` or
``--runner DataflowRunner`` with their options to run the same graph there. ``--help`` lists every option.

Run as a command, it leaves out the libraries of Beam's IOs the job does not use, unless it runs on Dataflow or
names a gs:// location (beam_pipeline.runners.unused_libraries), so it imports Beam only once that is decided. A local
run's worker processes are started first of all, forked once this process has imported what they run
(runners/local/worker_pool.py), and the command ends without the interpreter's finalization (processes/command.py).
"""

import argparse
import sys

from beam_pipeline.processes.command import begin_job_process, end_process


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


if __name__ == '__main__':
  begin_job_process(sys.argv[1:])
  end_process(main())
