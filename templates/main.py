"""Flex template entry point: builds the job from the template's parameters and submits it without waiting."""

import logging
import sys

from beam_pipeline import failures
from beam_pipeline.pipeline import run

if __name__ == '__main__':
  logging.getLogger().setLevel(logging.INFO)
  try:
    run(wait=False)
  except Exception as error:  # pylint: disable=broad-except
    logging.getLogger(__name__).debug('launch failed', exc_info=True)
    line, exit_code = failures.describe(error)
    print(line, file=sys.stderr)
    sys.exit(exit_code)
