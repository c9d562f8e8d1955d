"""How a failed launch or run is told to its user: one line saying what to fix, and an exit code.

2: an option or the resource it names is wrong (OptionError, a preflight's BadSetting); 1: a service could not be
reached, or the job failed while running. A worker's error reaches the launcher inside the runner's own
exception, usually as the text of a remote traceback, so the project's errors are also recognised by name in
that text; their messages already say what to fix.
"""

import logging
import re
import sys
import traceback
from typing import Tuple

from beam_pipeline.errors import STAGE_ERRORS, OptionError, PreflightError
from beam_pipeline.processes.log_levels import quiet_drivers

_STAGE_ERROR_LINE = re.compile(r'\b(?:%s): (.+)' % '|'.join(error.__name__ for error in STAGE_ERRORS))


def describe(error: BaseException) -> Tuple[str, int]:
  """(one line for stderr, exit code) for an error that ended a launch or a run."""
  if isinstance(error, OptionError):
    return f'error: {error}', 2
  if isinstance(error, PreflightError):
    return f'error: {error}', error.exit_code
  found = _STAGE_ERROR_LINE.findall(str(error))
  if isinstance(error, STAGE_ERRORS):
    return f'error: {error}', 1
  if found:
    return f'error: {found[-1].strip()}', 1
  first_line = (str(error).strip().splitlines() or [''])[0]
  return (f'error: the job failed: {type(error).__name__}: {first_line[:300]} '
          '(add --verbose for the traceback)'), 1


class TracebackFreeFormatter(logging.Formatter):
  """Log lines without tracebacks, for launchers not asked to be verbose: Beam and the drivers log a failure's
  traceback (their own, or a worker's inside the message) before the launcher prints its one-line error."""

  def formatException(self, ei):  # pylint: disable=invalid-name
    return ''

  def format(self, record):
    return super().format(record).split('\nTraceback (most recent call last)', 1)[0].rstrip()


_LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'


def configure_logging(site) -> bool:
  """The launcher's logging as ``--log_level`` and ``--verbose`` ask (on stderr); returns whether failures are
  told with their traceback."""
  verbose = bool(site.verbose) or site.log_level == 'DEBUG'
  # force: importing Beam may already have configured the root logger with a bare format.
  logging.basicConfig(level=site.log_level, format=_LOG_FORMAT, stream=sys.stderr, force=True)
  if not verbose:
    logging.getLogger().handlers[0].setFormatter(TracebackFreeFormatter(_LOG_FORMAT))
  # The local runner's start of its servers and workers is chatter too.
  quiet_drivers(site.log_level, also=('apache_beam.runners.portability.fn_api_runner',))
  return verbose


def report(error: BaseException, verbose: bool) -> Tuple[str, int]:
  """Prints the error's one line on stderr (after its traceback when ``verbose``); returns the line without its
  ``error: `` prefix, and the exit code."""
  line, exit_code = describe(error)
  if verbose:
    traceback.print_exception(error)
  print(line, file=sys.stderr)
  return line[len('error: '):], exit_code
