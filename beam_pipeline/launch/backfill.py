"""Scheduled backfills: ``./run_backfill.sh --dates yesterday --mode reconcile --topic T --keyspace K``, and
repairs: ``./run_backfill.sh --dates uncertain --mode reconcile ...`` reconciles the dates the offset ledger marks
uncertain (none: nothing runs) and clears their marks.

Turns event dates into a Kafka time window (from the first date's start to the last date's end plus
``--lateness_s``, and never past now), runs the bounded job in that window, and prints exactly one JSON line on
stdout: ``{"status": "ok", ...figures}`` with exit code 0, or ``{"status": "failed", "error": ...}`` with a
non-zero exit code. Logs go to stderr. Any other option is passed to the job (``python -m beam_pipeline --help``).
"""

import argparse
import datetime
import json
import logging
import sys
import time
from typing import List

from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.launch import failures
from beam_pipeline.transforms.dates import day_start_ms, parse_dates
from beam_pipeline.errors import OptionError
from beam_pipeline.options.known_flags import unknown_options
from beam_pipeline.options.site_stats import SiteStatsOptions

# --dates uncertain: the dates the offset ledger marks uncertain (io/cassandra/offset_ledger.py).
UNCERTAIN = 'uncertain'


def window_for(dates, lateness_s: int, now_ms: int):
  """(start_ms, stop_ms) of the Kafka window holding the messages of ``dates``."""
  start_ms = day_start_ms(dates[0])
  stop_ms = min(day_start_ms(dates[-1] + datetime.timedelta(days=1)) + lateness_s * 1000, now_ms)
  return start_ms, stop_ms


def _requested_dates(args, job_args) -> List[datetime.date]:
  """The dates --dates names; for ``uncertain``, those the offset ledger of the job's table marks (maybe none)."""
  if args.dates != UNCERTAIN:
    try:
      return parse_dates(args.dates)
    except ValueError as error:
      raise OptionError(f'--dates: {error}') from None
  if args.mode != 'reconcile':
    raise OptionError(f'--dates {UNCERTAIN} needs --mode reconcile: adding the messages of uncertain offsets again '
                      'could count them twice')
  from beam_pipeline.io.cassandra.connection import READ_PROFILE
  from beam_pipeline.io.cassandra.offset_ledger import uncertain_dates
  from beam_pipeline.options import configs
  site = PipelineOptions(job_args).view_as(SiteStatsOptions)
  if not site.keyspace:
    raise OptionError('--keyspace is required')
  cluster = configs.cassandra_connection(site).cluster()
  try:
    dates = uncertain_dates(cluster.connect(), site.keyspace.lower(), site.table.lower(), READ_PROFILE)
  finally:
    cluster.shutdown()
  logging.getLogger(__name__).info('uncertain dates in the offset ledger of %s.%s: %s', site.keyspace, site.table,
                                   ', '.join(d.isoformat() for d in dates) or 'none')
  return dates


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='./run_backfill.sh', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--dates', required=True,
                      help='yesterday, today, YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD; with --mode reconcile also '
                           f'{UNCERTAIN}: the dates the offset ledger marks uncertain')
  parser.add_argument('--mode', choices=('increment', 'reconcile'), default='increment',
                      help='increment: add the window\'s messages; reconcile: make the dates\' counters exact')
  parser.add_argument('--lateness_s', type=int, default=3600,
                      help='how long after a date ends its messages may still arrive (default 3600)')
  args, job_args = parser.parse_known_args(argv)
  verbose = failures.configure_logging(PipelineOptions(job_args).view_as(SiteStatsOptions))
  started = time.time()
  result = {'mode': args.mode, 'dates': args.dates}
  try:
    unknown = unknown_options(job_args)
    if unknown:
      raise OptionError(f'unknown option(s) {", ".join(unknown)}; see ./run_backfill.sh --help and '
                        'python -m beam_pipeline --help')
    dates = _requested_dates(args, job_args)
    if not dates:
      print(json.dumps({**result, 'status': 'ok', 'dates_reconciled': []}, sort_keys=True))
      return 0
    start_ms, stop_ms = window_for(dates, args.lateness_s, int(time.time() * 1000))
    result.update(first_date=dates[0].isoformat(), last_date=dates[-1].isoformat(),
                  window_start_ms=start_ms, window_stop_ms=stop_ms)
    from beam_pipeline.launch.run import run
    _, summary = run([*job_args, '--bounded', '--sink_mode', args.mode,
                      '--dates', ','.join(d.isoformat() for d in dates),
                      '--start_time', str(start_ms), '--stop_time', str(stop_ms)])
  except Exception as error:  # pylint: disable=broad-except
    message, exit_code = failures.report(error, verbose)
    print(json.dumps({**result, 'status': 'failed', 'error': message}, sort_keys=True))
    return exit_code
  result.update(summary.as_dict() if summary else {})
  result.update(status='ok', elapsed_s=round(time.time() - started, 1))
  print(json.dumps(result, sort_keys=True, default=str))
  return 0


if __name__ == '__main__':
  sys.exit(main())
