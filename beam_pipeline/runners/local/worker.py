"""The worker processes of local multi-process runs: Beam's own SDK worker, then an immediate exit.

Started with WITHOUT_GOOGLE_CLOUD, which the runner adds when the job names no gs:// location
(beam_pipeline.runners.google_cloud_imports), the worker leaves Beam's Google Cloud client libraries out before it
imports Beam: it imports only what its stages use, and starts sooner. (Beam's runner gives its local workers none of the
job's options, so the runner decides.)

When the runner is done it stops its workers one after another, each in the time its process takes to end. By
then Beam's worker has torn down every DoFn and closed its log channel; what is left is the interpreter's
finalization of Beam's modules, which took 0.3 s per worker, so the process leaves without it.
"""

import os
import sys

from beam_pipeline.runners.google_cloud_imports import hide_google_cloud_libraries

WITHOUT_GOOGLE_CLOUD = '--without_google_cloud'


def main() -> None:
  if WITHOUT_GOOGLE_CLOUD in sys.argv[1:]:
    hide_google_cloud_libraries()
  from apache_beam.runners.worker import sdk_worker_main
  sdk_worker_main.main(sys.argv)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(0)  # pylint: disable=protected-access


if __name__ == '__main__':
  main()
