"""Scheduled backfills: ``./run_backfill.sh --dates yesterday --mode reconcile --topic T --keyspace K``.

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

from beam_pipeline import failures
from beam_pipeline.dates import day_start_ms, parse_dates
from beam_pipeline.options import OptionError, unknown_options


def window_for(dates, lateness_s: int, now_ms: int):
  """(start_ms, stop_ms) of the Kafka window holding the messages of ``dates``."""
  start_ms = day_start_ms(dates[0])
  stop_ms = min(day_start_ms(dates[-1] + datetime.timedelta(days=1)) + lateness_s * 1000, now_ms)
  return start_ms, stop_ms


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='./run_backfill.sh', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--dates', required=True, help='yesterday, today, YYYY-MM-DD, YYYY-MM-DD..YYYY-MM-DD')
  parser.add_argument('--mode', choices=('increment', 'reconcile'), default='increment',
                      help='increment: add the window\'s messages; reconcile: make the dates\' counters exact')
  parser.add_argument('--lateness_s', type=int, default=3600,
                      help='how long after a date ends its messages may still arrive (default 3600)')
  args, job_args = parser.parse_known_args(argv)
  logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                      format='%(asctime)s %(levelname)s %(name)s: %(message)s')
  for noisy in ('kafka', 'cassandra'):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  started = time.time()
  result = {'mode': args.mode, 'dates': args.dates}
  try:
    unknown = unknown_options(job_args)
    if unknown:
      raise OptionError(f'unknown option(s) {", ".join(unknown)}; see ./run_backfill.sh --help and '
                        'python -m beam_pipeline --help')
    dates = parse_dates(args.dates)
    start_ms, stop_ms = window_for(dates, args.lateness_s, int(time.time() * 1000))
    result.update(first_date=dates[0].isoformat(), last_date=dates[-1].isoformat(),
                  window_start_ms=start_ms, window_stop_ms=stop_ms)
    from beam_pipeline.pipeline import run
    _, summary = run([*job_args, '--bounded', '--sink_mode', args.mode,
                      '--dates', ','.join(d.isoformat() for d in dates),
                      '--start_time', str(start_ms), '--stop_time', str(stop_ms)])
  except ValueError as error:
    if not isinstance(error, OptionError):
      error = OptionError(str(error))  # a bad --dates
    line, exit_code = failures.describe(error)
    print(json.dumps({**result, 'status': 'failed', 'error': line[len('error: '):]}, sort_keys=True))
    return exit_code
  except Exception as error:  # pylint: disable=broad-except
    logging.getLogger(__name__).debug('backfill failed', exc_info=True)
    line, exit_code = failures.describe(error)
    logging.getLogger(__name__).error('%s', line)
    print(json.dumps({**result, 'status': 'failed', 'error': line[len('error: '):]}, sort_keys=True))
    return exit_code
  result.update(summary.as_dict() if summary else {})
  result.update(status='ok', elapsed_s=round(time.time() - started, 1))
  print(json.dumps(result, sort_keys=True, default=str))
  return 0


if __name__ == '__main__':
  sys.exit(main())
