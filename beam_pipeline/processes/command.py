"""How a process that runs a job begins and ends: the command, its local worker processes, the benchmark's runs.

It begins, before Beam is first imported, by leaving out the libraries of Beam's IOs the job does not use
(runners/unused_libraries.py), then starts the local worker processes it will ask for (runners/local/worker_pool.py):
for those it imports Beam, the clients and the job's modules, and forks them. It ends without the interpreter's
finalization of Beam's and the clients' modules (0.2-0.3 s): by then its outputs are durable and its offsets
committed, and only the logs and the console are left to flush; worker processes it started end with it (they watch
their parent).
"""

import logging
import os
import sys
from typing import List

# The job's graph and stages: the launcher builds the graph from them, and the workers forked from it run them.
JOB_MODULES = ('beam_pipeline.pipeline',)


def begin_job_process(argv: List[str]) -> None:
  """For a process about to run a job with these arguments, before it imports Beam."""
  # pylint: disable=import-outside-toplevel
  from beam_pipeline.runners.unused_libraries import leave_out_unless_arguments_need_them
  from beam_pipeline.runners.local.worker_pool import start_ahead
  leave_out_unless_arguments_need_them(argv)
  start_ahead(argv, JOB_MODULES)


def end_process(exit_code: int) -> None:
  logging.shutdown()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(exit_code)  # pylint: disable=protected-access
