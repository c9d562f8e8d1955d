"""The local runner: Beam's in-process FnApiRunner, able to read Kafka with several worker processes.

With ``--direct_num_workers N`` (N > 1, or 0 for one per core) and ``--direct_running_mode multi_processing``,
the FnApiRunner hands each bundle's input elements (here: the Kafka partitions) to N SDK worker processes at
once, which is how a local job uses more than one core. Beam 2.77's ParallelBundleManager merges the workers'
answers but keeps only their metrics: the residuals a splittable DoFn returns when it checkpoints are dropped,
so every partition would stop being read after its first bundle. The runner here uses a bundle manager that
keeps them (it reaches into Beam's runner, so it lives in ``beam_pipeline.compat.beam``).
Bundle finalization (the reader's offset commits) is already done by each worker's own bundle, unchanged.
The worker processes run ``beam_pipeline.runners.local.worker`` (Beam's worker, ended without the interpreter's slow
finalization), without Beam's Google Cloud client libraries unless the job names a gs:// location.
"""

from beam_pipeline.compat.beam import FnApiRunnerWithBundleHooks, use_worker_module
from beam_pipeline.runners.google_cloud_imports import options_need_google_cloud
from beam_pipeline.runners.local.worker import WITHOUT_GOOGLE_CLOUD

WORKER_MODULE = 'beam_pipeline.runners.local.worker'


class LocalRunner(FnApiRunnerWithBundleHooks):
  """FnApiRunner whose parallel bundles keep the splittable reader's checkpoints, whose worker processes run
  WORKER_MODULE (without the Google Cloud libraries the job does not need), and that reports each bundle's
  response (its metrics) to ``on_bundle_done`` as the bundle completes, for a launcher that shows progress."""

  def run_via_runner_api(self, pipeline_proto, options):
    command = WORKER_MODULE
    if not options_need_google_cloud(options.get_all_options()):
      command += f' {WITHOUT_GOOGLE_CLOUD}'
    use_worker_module(pipeline_proto, command)
    return super().run_via_runner_api(pipeline_proto, options)
