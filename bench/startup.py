"""The fixed costs of a local run: importing Beam, and an SDK worker process's start up to its first bundle, each
with all of Beam's optional libraries (as a job that runs on Dataflow or names a gs:// location has them) and
without those of the IOs the job does not use (every other job's processes, see
beam_pipeline/runners/unused_libraries.py).

    .venv/bin/python -m bench.startup [--repeat 5] [--workers 2]

Needs no service. Prints the median of ``--repeat`` fresh interpreters for the import, and for the workers the
median over ``--repeat`` runs of a tiny pipeline on the local runner with ``--workers`` worker processes: each
worker's time from its process start to its first element, and how far apart the workers started.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_IMPORT_PROBE = '''
import sys, time
if sys.argv[1] == 'without':
  from beam_pipeline.runners.unused_libraries import hide_unused_libraries
  hide_unused_libraries()
started = time.perf_counter()
import apache_beam
print(time.perf_counter() - started, len(sys.modules))
'''

# Any gs:// value makes the job's workers keep the libraries; this one is never written to.
_WITH_GOOGLE_CLOUD = ('--temp_location', 'gs://startup-bench-unused/tmp')


def _process_age_s() -> float:
  """Seconds since this process started, both ends measured from boot (/proc gives its start in clock ticks)."""
  started_ticks = int(Path('/proc/self/stat').read_text().rsplit(')', 1)[1].split()[19])
  return time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf('SC_CLK_TCK')


def import_time(libraries: str) -> tuple:
  """Seconds to ``import apache_beam`` in a fresh interpreter, and the number of modules loaded then."""
  out = subprocess.run([sys.executable, '-c', _IMPORT_PROBE, libraries], check=True, capture_output=True,
                       text=True).stdout.split()
  return float(out[0]), int(out[1])


def _record_first_element(directory: str):
  import apache_beam as beam

  class RecordFirstElement(beam.DoFn):
    """Writes, once per worker process, when the process started and when its first element arrived."""

    def __init__(self, into: str):
      self._into = into

    def process(self, element):
      path = Path(self._into) / f'{os.getpid()}.json'
      if not path.exists():
        from beam_pipeline.runners.unused_libraries import is_unused_package_module
        loaded = [name for name, module in list(sys.modules.items())
                  if getattr(module, '__file__', None) and is_unused_package_module(name)]
        age = _process_age_s()
        path.write_text(json.dumps({'started': time.clock_gettime(time.CLOCK_BOOTTIME) - age, 'age': age,
                                    'unused_library_modules': len(loaded)}))

  return RecordFirstElement(directory)


def worker_start(workers: int, keep_google_cloud: bool) -> dict:
  """One tiny run on the local runner with worker processes: per worker, seconds from its start to its first
  element; the spread of their starts; the run's wall time."""
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  from beam_pipeline.runners.local.runner import LocalRunner
  options = PipelineOptions(['--direct_num_workers', str(workers), '--direct_running_mode', 'multi_processing',
                             *(_WITH_GOOGLE_CLOUD if keep_google_cloud else ())])
  with tempfile.TemporaryDirectory() as directory:
    started = time.time()
    with beam.Pipeline(runner=LocalRunner(), options=options) as pipeline:
      _ = (pipeline | beam.Create(range(16 * workers)) | beam.Reshuffle()
           | beam.ParDo(_record_first_element(directory)))
    wall = time.time() - started
    reports = [json.loads(path.read_text()) for path in Path(directory).glob('*.json')]
  starts = [report['started'] for report in reports]
  return {'to_first_element_s': [r['age'] for r in reports],
          'start_spread_s': max(starts) - min(starts) if starts else float('nan'), 'run_s': wall,
          'processes': len(reports), 'unused_library_modules': max(r['unused_library_modules'] for r in reports)}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m bench.startup', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--repeat', type=int, default=5)
  parser.add_argument('--workers', type=int, default=2)
  args = parser.parse_args(argv)
  import logging
  logging.getLogger().setLevel(logging.ERROR)

  print(f'{"":38} {"with all":>18} {"without":>10} {"ratio":>6}')
  imports = {kind: [import_time(kind) for _ in range(args.repeat)] for kind in ('with', 'without')}
  seconds = {kind: statistics.median(t for t, _ in runs) for kind, runs in imports.items()}
  modules = {kind: runs[0][1] for kind, runs in imports.items()}
  print(f'{"import apache_beam (s, median)":38} {seconds["with"]:18.3f} {seconds["without"]:10.3f} '
        f'{seconds["without"] / seconds["with"]:6.2f}')
  print(f'{"modules loaded by it":38} {modules["with"]:18d} {modules["without"]:10d} '
        f'{modules["without"] / modules["with"]:6.2f}')

  runs = {keep: [worker_start(args.workers, keep) for _ in range(args.repeat)] for keep in (True, False)}
  rows = [('worker start to first element (s)', lambda r: statistics.median(r['to_first_element_s'])),
          ('workers\' start spread (s)', lambda r: r['start_spread_s']),
          (f'tiny run on {args.workers} workers (s)', lambda r: r['run_s'])]
  for label, value in rows:
    with_, without = (statistics.median(value(r) for r in runs[keep]) for keep in (True, False))
    ratio = f'{without / with_:6.2f}' if with_ >= 0.05 else f'{"-":>6}'
    print(f'{label + ", median":38} {with_:18.3f} {without:10.3f} {ratio}')
  modules_in_a_worker = {keep: max(r['unused_library_modules'] for r in runs[keep]) for keep in (True, False)}
  print(f'{"modules of unused libraries in a worker":38} {modules_in_a_worker[True]:18d} '
        f'{modules_in_a_worker[False]:10d}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
