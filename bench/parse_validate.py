"""ParseJson and Validate alone: messages per second of the two stages on valid events, compared with the stages
of another git revision.

    .venv/bin/python -m bench.parse_validate [--messages 200000] [--batch 100000] [--repeat 5] [--baseline REVISION]

Needs no service. The events are those the benchmark produces (beam_pipeline.tools.produce, all valid), in
batches of ``--batch`` messages, as the reader emits them. Each stage's DoFn is called as a runner calls it
(setup, start_bundle, process, finish_bundle), without a runner around it. The baseline's parse.py and
validate.py are read from git (``git show <revision>:<path>``) and loaded under other module names, so both
versions run in this one process on the same batches. Prints one line per contender (the best of ``--repeat``
rounds) and checks that both count the same events.
"""

import argparse
import gc
import subprocess
import sys
import time
import types
from typing import List

from beam_pipeline import REPO_ROOT
from beam_pipeline.records import IncrementBatch, RecordBatch
from beam_pipeline.tools.produce import generate
from beam_pipeline.transforms import parse, validate

_STAGE_FILES = ('beam_pipeline/transforms/parse.py', 'beam_pipeline/transforms/validate.py')


def _stages_at(revision: str) -> tuple:
  """The (parse, validate) modules of ``revision``, loaded from git under names of their own."""
  loaded = []
  for path in _STAGE_FILES:
    source = subprocess.run(['git', 'show', f'{revision}:{path}'], cwd=REPO_ROOT, check=True, capture_output=True,
                            text=True).stdout
    name = f'bench_baseline_{path.rsplit("/", 1)[1][:-3]}'
    module = types.ModuleType(name)
    module.__file__ = f'{revision}:{path}'
    sys.modules[name] = module
    exec(compile(source, module.__file__, 'exec'), module.__dict__)  # pylint: disable=exec-used
    loaded.append(module)
  return tuple(loaded)


def _batches(messages: int, batch_size: int) -> List[RecordBatch]:
  values = [message.value for message in generate(messages, bad_ratio=0.0)]
  return [RecordBatch('events', 0, list(range(start, start + len(chunk))), [0] * len(chunk), [None] * len(chunk),
                      chunk)
          for start, chunk in ((start, values[start:start + batch_size]) for start in range(0, messages, batch_size))]


def _run(fn, elements) -> list:
  fn.start_bundle()
  outputs = [output for element in elements for output in fn.process(element)]
  fn.finish_bundle()
  return outputs


def _time_stages(parse_module, validate_module, batches, repeat: int) -> dict:
  parse_fn, validate_fn = parse_module.ParseJsonFn(), validate_module.ValidateFn()
  for fn in (parse_fn, validate_fn):
    fn.setup()
  best = None
  for _ in range(repeat):
    gc.collect()
    started = time.perf_counter()
    parsed = _run(parse_fn, batches)
    parsed_at = time.perf_counter()
    valid = _run(validate_fn, parsed)
    done = time.perf_counter()
    if best is None or done - started < best['total_s']:
      best = {'parse_s': parsed_at - started, 'validate_s': done - parsed_at, 'total_s': done - started}
  if any(type(batch) is not IncrementBatch for batch in valid):
    raise AssertionError('a valid event was dead-lettered')
  best['counted'] = (sum(len(batch) for batch in valid), sum(sum(batch.views) for batch in valid),
                     sum(sum(batch.clicks) for batch in valid), sum(sum(batch.site_ids) for batch in valid))
  return best


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m bench.parse_validate', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--messages', type=int, default=200000)
  parser.add_argument('--batch', type=int, default=100000, help='messages per batch (the reader\'s default bundle)')
  parser.add_argument('--repeat', type=int, default=5)
  # The last revision before the compiled fast path (json and a hand-written reading of the schema).
  parser.add_argument('--baseline', default='ccd7024~1', help='the git revision whose stages to compare with')
  args = parser.parse_args(argv)

  batches = _batches(args.messages, args.batch)
  contenders = {f'{args.baseline} (git)': _stages_at(args.baseline), 'this tree': (parse, validate)}
  results = {name: _time_stages(*stages, batches, args.repeat) for name, stages in contenders.items()}
  print(f'{args.messages:,} valid messages in batches of {args.batch:,}, best of {args.repeat}')
  print(f'{"":16} {"msgs/s":>12} {"parse s":>9} {"validate s":>11}')
  for name, result in results.items():
    print(f'{name:16} {args.messages / result["total_s"]:12,.0f} {result["parse_s"]:9.3f} '
          f'{result["validate_s"]:11.3f}')
  baseline, current = results.values()
  print(f'speed-up: {baseline["total_s"] / current["total_s"]:.2f}x')
  if baseline['counted'] != current['counted']:
    print(f'the two count different events: {baseline["counted"]} != {current["counted"]}')
    return 1
  return 0


if __name__ == '__main__':
  sys.exit(main())
