"""Apache Beam's private names that the job relies on, each with the reason no public API does the job.

Checked against the Beam version that setup.py pins; tests/test_compat.py fails when Beam changes any of them.
"""

import itertools
from typing import Callable, Optional

from apache_beam.metrics import monitoring_infos
from apache_beam.options import pipeline_options
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.utils import thread_pool_executor

from beam_pipeline.compat import require_version

BEAM_VERSION = require_version('apache-beam', ('2.77.',))

# The module the FnApiRunner runs, as ``python -m``, in each worker process of a multi_processing run.
BEAM_WORKER_MODULE = 'apache_beam.runners.worker.sdk_worker_main'


def declared_option_strings() -> set:
  """Every flag spelling that Beam's own parser accepts, built as Beam builds it (every direct PipelineOptions
  subclass, once): Beam has no public list of its flags, and drops unknown ones with only a warning."""
  parser = pipeline_options._BeamArgumentParser(allow_abbrev=False)  # pylint: disable=protected-access
  for cls in {str(cls): cls for cls in pipeline_options.PipelineOptions.__subclasses__()}.values():
    cls._add_argparse_args(parser)  # pylint: disable=protected-access
  actions = parser._actions  # pylint: disable=protected-access
  return {spelling for action in actions for spelling in action.option_strings}


def add_declared_arguments(options_class, parser) -> None:
  """Declares ``options_class``'s flags on an argparse parser, for a ``--help`` that lists only the job's own."""
  options_class._add_argparse_args(parser)  # pylint: disable=protected-access


def fresh_metrics(result):
  """The job's metrics as of now: Beam's portable result (Flink) caches its first answer in ``_metrics`` and
  has no public way to ask again, so the cache is dropped first."""
  if hasattr(result, '_metrics'):
    result._metrics = None  # pylint: disable=protected-access
  return result.metrics()


def use_worker_module(pipeline_proto, module: str) -> None:
  """Makes the pipeline's subprocess environments run ``python -m <module>`` instead of Beam's worker module.

  The FnApiRunner writes the worker command of a multi_processing run itself, and no option names it; the
  command is the environment's payload, as bytes, so the module is replaced there."""
  for environment in pipeline_proto.components.environments.values():
    if environment.urn == python_urns.SUBPROCESS_SDK:
      environment.payload = environment.payload.replace(
          f'-m {BEAM_WORKER_MODULE}'.encode(), f'-m {module}'.encode())


class ResidualKeepingParallelBundleManager(fn_runner.ParallelBundleManager):
  """Runs one part of the bundle's input on each worker; the merged answer carries every part's residuals.

  Beam's ParallelBundleManager keeps only the parts' metrics. Each part runs on a BundleManager built as Beam's
  own builds it, from settings that Beam keeps in private attributes only."""

  def process_bundle(self, inputs, expected_outputs, fired_timers, expected_output_timers, dry_run=False):
    workers = self.bundle_context_manager.num_workers
    parts = [{} for _ in range(workers)]
    for name, buffer in inputs.items():
      for index, part in enumerate(buffer.partition(workers)):
        parts[index][name] = part
    # As in Beam's manager, fired timers all go to the first worker.
    timers = [fired_timers] + [{}] * (workers - 1)

    def run_part(part_and_timers):
      part, part_timers = part_and_timers
      manager = fn_runner.BundleManager(
          self.bundle_context_manager, self._progress_frequency,  # pylint: disable=protected-access
          cache_token_generator=self._cache_token_generator)  # pylint: disable=protected-access
      return manager.process_bundle(part, expected_outputs, part_timers, expected_output_timers, dry_run)

    with thread_pool_executor.shared_unbounded_instance() as executor:
      answers = list(executor.map(run_part, zip(parts, timers)))
    responses = [response.process_bundle for response, _ in answers]
    merged = beam_fn_api_pb2.InstructionResponse(
        process_bundle=beam_fn_api_pb2.ProcessBundleResponse(
            monitoring_infos=monitoring_infos.consolidate(
                itertools.chain.from_iterable(r.monitoring_infos for r in responses)),
            residual_roots=[root for r in responses for root in r.residual_roots]))
    return merged, [split for _, splits in answers for split in splits]


class FnApiRunnerWithBundleHooks(fn_runner.FnApiRunner):
  """Beam's FnApiRunner, with two things it has no public hook for: ``on_bundle_done`` gets each bundle's
  response as the bundle completes (Beam reports metrics only once the job ends), and parallel bundles run on
  ResidualKeepingParallelBundleManager (the runner chooses its bundle manager in a private method)."""

  def __init__(self, on_bundle_done: Optional[Callable[[beam_fn_api_pb2.InstructionResponse], None]] = None):
    super().__init__()
    self._on_bundle_done = on_bundle_done

  def _run_bundle(self, *args, **kwargs):
    outcome = super()._run_bundle(*args, **kwargs)
    if self._on_bundle_done is not None:
      self._on_bundle_done(outcome[0])
    return outcome

  def _get_bundle_manager(self, bundle_context_manager):
    manager = super()._get_bundle_manager(bundle_context_manager)
    if type(manager) is fn_runner.ParallelBundleManager:  # pylint: disable=unidiomatic-typecheck
      tokens = manager._cache_token_generator  # pylint: disable=protected-access
      frequency = self._progress_frequency  # pylint: disable=protected-access
      return ResidualKeepingParallelBundleManager(bundle_context_manager, frequency, cache_token_generator=tokens)
    return manager
