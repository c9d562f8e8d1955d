"""The worker processes of local multi-process runs: Beam's own SDK worker, then an immediate exit.

When the runner is done it stops its workers one after another, each in the time its process takes to end. By
then Beam's worker has torn down every DoFn and closed its log channel; what is left is the interpreter's
finalization of Beam's modules, which took 0.3 s per worker, so the process leaves without it.
"""

import os
import sys

from apache_beam.runners.worker import sdk_worker_main


def main() -> None:
  sdk_worker_main.main(sys.argv)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(0)  # pylint: disable=protected-access


if __name__ == '__main__':
  main()
