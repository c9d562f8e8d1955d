"""The local runner: Beam's in-process FnApiRunner, able to read Kafka with several worker processes.

With ``--direct_num_workers N`` (N > 1, or 0 for one per core) and ``--direct_running_mode multi_processing``,
the FnApiRunner hands each bundle's input elements (here: the Kafka partitions) to N SDK worker processes at
once, which is how a local job uses more than one core. Beam 2.77's ParallelBundleManager merges the workers'
answers but keeps only their metrics: the residuals a splittable DoFn returns when it checkpoints are dropped,
so every partition would stop being read after its first bundle. The runner here uses a bundle manager that
keeps them (it reaches into Beam's runner, so it lives in ``beam_pipeline.compat.beam``).
Bundle finalization (the reader's offset commits) is already done by each worker's own bundle, unchanged.
The worker processes come from worker_pool.py, started as the command started, without the libraries of Beam's
IOs the job does not use; a job that names a gs:// location has Beam's runner start them, with them all.
"""

from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2, endpoints_pb2

from beam_pipeline.compat.beam import FnApiRunnerWithBundleHooks, use_worker_module
from beam_pipeline.processes.log_levels import DEFAULT_LOG_LEVEL
from beam_pipeline.runners.unused_libraries import options_need_google_cloud
from beam_pipeline.runners.local.worker_pool import WORKER_MODULE, worker_pool


def _worker_process_environments(pipeline_proto) -> list:
  return [e for e in pipeline_proto.components.environments.values() if e.urn == python_urns.SUBPROCESS_SDK]


def _workers_from_pool(environments, address: str) -> None:
  """Makes these worker-process environments ask the pool at ``address`` for their workers."""
  for environment in environments:
    environment.urn = common_urns.environments.EXTERNAL.urn
    environment.payload = beam_runner_api_pb2.ExternalPayload(
        endpoint=endpoints_pb2.ApiServiceDescriptor(url=address)).SerializeToString()


class LocalRunner(FnApiRunnerWithBundleHooks):
  """FnApiRunner whose parallel bundles keep the splittable reader's checkpoints, whose worker processes come from
  a pool of workers started ahead (or, when the job needs Google Cloud, run WORKER_MODULE), and that
  reports each bundle's response (its metrics) to ``on_bundle_done`` as the bundle completes, for a launcher that
  shows progress."""

  def run_via_runner_api(self, pipeline_proto, options):
    if options_need_google_cloud(options.get_all_options()):
      use_worker_module(pipeline_proto, WORKER_MODULE)
      return super().run_via_runner_api(pipeline_proto, options)
    environments = _worker_process_environments(pipeline_proto)
    if not environments:
      return super().run_via_runner_api(pipeline_proto, options)  # one worker, in this process
    with worker_pool(options.get_all_options().get('log_level') or DEFAULT_LOG_LEVEL) as address:
      _workers_from_pool(environments, address)
      return super().run_via_runner_api(pipeline_proto, options)
