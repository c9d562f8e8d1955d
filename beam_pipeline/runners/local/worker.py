"""The worker processes of local multi-process runs: Beam's SDK worker, then an immediate exit.

Most are started ahead, as the command starts (``AWAIT_FLAGS``, worker_pool.py): forked from the launcher once it
has imported Python, Beam and the clients without the libraries of Beam's unused IOs, or started as interpreters
that import them. They wait for the flags the runner's request brings, as the workers of Flink's TaskManagers do
(runners/flink/worker.py); their log records go to the launcher, which logs each as its own (worker_logs.py). A job that names a gs:// location has its workers started by Beam's runner instead,
with those libraries and the runner's environment.

Once the runner is done, what is left of a worker is the interpreter's finalization of Beam's modules, which took
0.3 s per worker: the process leaves without it.
"""

import sys
from typing import List

from beam_pipeline.processes.command import end_process
from beam_pipeline.runners.flink.worker import AWAIT_FLAGS


def main(argv: List[str]) -> None:
  if argv == [AWAIT_FLAGS]:
    from beam_pipeline.runners.flink.worker import main as run_provisioned_worker
    run_provisioned_worker(argv)
  else:
    from apache_beam.runners.worker import sdk_worker_main
    sdk_worker_main.main([sys.argv[0], *argv])
  end_process(0)


if __name__ == '__main__':
  main(sys.argv[1:])
