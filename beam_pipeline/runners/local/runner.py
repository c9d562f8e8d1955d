"""The local runner: Beam's in-process FnApiRunner, able to read Kafka with several worker processes.

With ``--direct_num_workers N`` (N > 1, or 0 for one per core) and ``--direct_running_mode multi_processing``,
the FnApiRunner hands each bundle's input elements (here: the Kafka partitions) to N SDK worker processes at
once, which is how a local job uses more than one core. Beam 2.77's ParallelBundleManager merges the workers'
answers but keeps only their metrics: the residuals a splittable DoFn returns when it checkpoints are dropped,
so every partition would stop being read after its first bundle. The bundle manager here keeps them.
Bundle finalization (the reader's offset commits) is already done by each worker's own bundle, unchanged.
The worker processes run ``beam_pipeline.runners.local.worker`` (Beam's worker, ended without the interpreter's slow
finalization).
"""

import itertools
from typing import Callable, Optional

from apache_beam.metrics import monitoring_infos
from apache_beam.portability import python_urns
from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.utils import thread_pool_executor


class _ResidualKeepingParallelBundleManager(fn_runner.ParallelBundleManager):
  """Runs one part of the bundle's input on each worker; the merged answer carries every part's residuals."""

  def process_bundle(self, inputs, expected_outputs, fired_timers, expected_output_timers, dry_run=False):
    workers = self._num_workers
    parts = [{} for _ in range(workers)]
    for name, buffer in inputs.items():
      for index, part in enumerate(buffer.partition(workers)):
        parts[index][name] = part
    # As in Beam's manager, fired timers all go to the first worker.
    timers = [fired_timers] + [{}] * (workers - 1)

    def run_part(part_and_timers):
      part, part_timers = part_and_timers
      manager = fn_runner.BundleManager(
          self.bundle_context_manager, self._progress_frequency, cache_token_generator=self._cache_token_generator)
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


WORKER_MODULE = 'beam_pipeline.runners.local.worker'
_BEAM_WORKER_MODULE = 'apache_beam.runners.worker.sdk_worker_main'


class LocalRunner(fn_runner.FnApiRunner):
  """FnApiRunner whose parallel bundles keep the splittable reader's checkpoints, and that reports each bundle's
  response (its metrics) as the bundle completes, for a launcher that shows progress."""

  def __init__(self, on_bundle_done: Optional[Callable[[beam_fn_api_pb2.InstructionResponse], None]] = None):
    super().__init__()
    self._on_bundle_done = on_bundle_done

  def _run_bundle(self, *args, **kwargs):
    outcome = super()._run_bundle(*args, **kwargs)
    if self._on_bundle_done is not None:
      self._on_bundle_done(outcome[0])
    return outcome

  def run_via_runner_api(self, pipeline_proto, options):
    for environment in pipeline_proto.components.environments.values():
      if environment.urn == python_urns.SUBPROCESS_SDK:
        environment.payload = environment.payload.replace(
            f'-m {_BEAM_WORKER_MODULE}'.encode(), f'-m {WORKER_MODULE}'.encode())
    return super().run_via_runner_api(pipeline_proto, options)

  def _get_bundle_manager(self, bundle_context_manager):
    manager = super()._get_bundle_manager(bundle_context_manager)
    if type(manager) is fn_runner.ParallelBundleManager:  # pylint: disable=unidiomatic-typecheck
      tokens = manager._cache_token_generator  # pylint: disable=protected-access
      return _ResidualKeepingParallelBundleManager(
          bundle_context_manager, self._progress_frequency, cache_token_generator=tokens)
    return manager
