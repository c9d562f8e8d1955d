"""Running the job on Flink: ``--runner FlinkRunner [--flink_master [local] | HOST:PORT]``.

The job is submitted through Beam's portable runner to a Flink job server this project starts itself (see
``runners/flink/job_server.py``), so that nothing has to be downloaded at run time:

- ``--flink_master [local]`` (the default): embedded Flink, a mini cluster inside the job server, with a slot per
  core. The run is waited for, like a local run, and its Python code runs in worker processes of this command
  (``runners/flink/embedded_workers.py``; ``--environment_type LOOPBACK`` runs it in threads instead); stopping
  the command (Ctrl-C, SIGTERM) cancels the job.
- ``--flink_master HOST:PORT``: a Flink cluster's REST address. Its Python code runs in the SDK worker pool beside
  each TaskManager (``EXTERNAL``, ``--environment_config``, default ``localhost:FLINK_WORKER_POOL_PORT``). A bounded
  run is waited for; a streaming job returns once Flink reports it RUNNING and outlives the command.

Unless given, ``--parallelism`` is made explicit (the cluster's ``parallelism.default``, or embedded the number
of cores) so that the partitions are spread evenly over the parallel readers (``reader_placement``), and
``--sdk_worker_parallelism`` follows it: two Python processes per TaskManager per parallel reader. A bounded job
keeps its Python workers from one stage to the next (``--environment_cache_millis``).

Offsets are committed when Flink completes a checkpoint (bundle finalization), so a streaming job gets
``--checkpointing_interval`` (10 s) unless one is given.
"""

import logging
import os
import signal
import threading
import time
import uuid
from typing import List, Optional

from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions, GoogleCloudOptions, PipelineOptions, PortableOptions, StandardOptions)
from apache_beam.runners.portability.portable_runner import PortableRunner
from apache_beam.runners.runner import PipelineResult, PipelineState

from beam_pipeline.runners.flink.options import (
    NOTHING_TO_STAGE_FACTORY, RUNNER_ON_CLASSPATH_SETTING, FlinkJavaRunnerOptions, FlinkRestartOptions,
    FlinkStagingOptions)
from beam_pipeline import REPO_ROOT
from beam_pipeline.errors import OptionError
from beam_pipeline.processes.ports import port_from_environment
from beam_pipeline.runners.flink.embedded_workers import embedded_worker_pool_address
from beam_pipeline.runners.flink.job_server import EMBEDDED_MASTER, FlinkJobServer, embedded_rest_addresses
from beam_pipeline.runners.flink.key_groups import FlinkKeyedReaders
from beam_pipeline.runners.flink.rest import cancel_flink_job, rest_get

_LOGGER = logging.getLogger(__name__)

FLINK_RUNNER_NAMES = ('FlinkRunner',)
# Streaming commits offsets when a checkpoint completes: this bounds how far the group's offsets lag behind.
DEFAULT_CHECKPOINTING_INTERVAL_MS = 10000
_RUNNING_TIMEOUT_S = 180
# How far apart Flink restarts a failed streaming job whose Python code runs in the submitting process, and how
# often.
RETRY_DELAY_MS = 10000
LOOPBACK_EXECUTION_RETRIES = 6
# Python SDK workers per parallel reader (see flink_runner).
_WORKERS_PER_READER = 2
# How long a bounded job's Python workers outlive a stage, for the next to reuse: Flink runs a batch job's
# stages (planning, reading, the final commit) one after another, and each would otherwise start its own.
BOUNDED_ENVIRONMENT_CACHE_MS = 10000
_FINAL_STATES = (PipelineState.DONE, PipelineState.FAILED, PipelineState.CANCELLED, PipelineState.STOPPED)


class FlinkSubmitError(RuntimeError):
  """A Flink job did not reach RUNNING."""


def is_flink_run(options: PipelineOptions) -> bool:
  return options.view_as(StandardOptions).runner in FLINK_RUNNER_NAMES


def flink_master(options: PipelineOptions) -> str:
  master = options.view_as(FlinkRunnerOptions).flink_master
  return EMBEDDED_MASTER if master in (None, '', '[auto]') else master


def is_embedded(options: PipelineOptions) -> bool:
  return flink_master(options) == EMBEDDED_MASTER


def flink_rest_addresses(options: PipelineOptions) -> List[str]:
  """Where Flink's REST API for this job is: the cluster's, or the embedded mini clusters' port range."""
  master = flink_master(options)
  if master == EMBEDDED_MASTER:
    return embedded_rest_addresses()
  return [master.split('://', 1)[-1].rstrip('/')]


def flink_runner(options: PipelineOptions, bounded: bool, topic: str) -> PortableRunner:
  """Readies ``options`` for a portable submission to Flink (job server, environment, checkpointing) and returns
  the runner to submit with."""
  portable = options.view_as(PortableOptions)
  master = flink_master(options)
  cluster_settings = None  # embedded Flink has no cluster to ask
  if master != EMBEDDED_MASTER:
    cluster_settings = _cluster_settings(flink_rest_addresses(options)[0])
    _stage_nothing_where_the_cluster_has_the_runner(options, cluster_settings)
  server = None  # the job server this command uses, when it is the project's own
  if not portable.job_endpoint:
    server = FlinkJobServer(REPO_ROOT, master)
    _LOGGER.info('%s', server.ensure_running())
    portable.job_endpoint = server.endpoint
  parallelism = _settle_parallelism(options, cluster_settings)
  workers_in_this_command = portable.environment_type == 'LOOPBACK'
  if not portable.environment_type:
    if master == EMBEDDED_MASTER:
      # Processes, so that the job's Python code uses every core; they end with this command.
      portable.environment_type = 'EXTERNAL'
      portable.environment_config = embedded_worker_pool_address()
      workers_in_this_command = True
    else:
      # The Python code runs beside the TaskManagers, bounded or streaming: a cluster need not reach this machine,
      # and a streaming job outlives this command.
      portable.environment_type = 'EXTERNAL'
      portable.environment_config = portable.environment_config or (
          f'localhost:{port_from_environment("FLINK_WORKER_POOL_PORT", 50000)}')
  if (portable.environment_type == 'EXTERNAL'
      and 'sdk_worker_parallelism' not in options.get_all_options(drop_default=True)):
    # Beam's default is one SDK worker per TaskManager for the whole job: one Python process (one core) however
    # many slots run it. Beam pins each stage instance to a worker in turn as the tasks open, and each reader
    # opens right after the instance that splits its reads: with one worker per reader, every reader of a bounded
    # run landed on the same worker; with two, each has its own. (LOOPBACK workers are threads of this process,
    # sharing one interpreter: more gain nothing.)
    portable.sdk_worker_parallelism = _WORKERS_PER_READER * parallelism
  if bounded and 'environment_cache_millis' not in options.get_all_options(drop_default=True):
    portable.environment_cache_millis = BOUNDED_ENVIRONMENT_CACHE_MS
  job = options.view_as(GoogleCloudOptions)
  # Flink shows (and the job is cancelled by) this name.
  job.job_name = job.job_name or f'site-stats-{topic.lower()}-{uuid.uuid4().hex[:8]}'
  java = options.view_as(FlinkJavaRunnerOptions)
  if not bounded and java.checkpointing_interval is None:
    java.checkpointing_interval = DEFAULT_CHECKPOINTING_INTERVAL_MS
    _LOGGER.info('streaming on Flink: checkpointing every %d ms (offsets are committed when a checkpoint '
                 'completes); --checkpointing_interval sets another interval', DEFAULT_CHECKPOINTING_INTERVAL_MS)
  if not bounded and java.finish_bundle_before_checkpointing is None:
    # Otherwise output of a bundle in flight at a checkpoint is held in the checkpoint until that operator's next
    # bundle, and the stage that plans the partition reads (fed by one impulse) has no next bundle: the reads
    # would never start.
    java.finish_bundle_before_checkpointing = True
  if not bounded and java.number_of_execution_retries is None:
    # A streaming job whose sink or source went away restarts from its last checkpoint until it is back. (Bounded
    # jobs get no restarts from Flink, unless the cluster names a restart strategy: a restarted batch region would
    # count again what it had written.)
    if workers_in_this_command:
      # Its Python code runs in this command's threads or processes: a job that outlives the command (killed, not
      # stopped) could only fail and restart, so it gives up after a minute.
      java.number_of_execution_retries = LOOPBACK_EXECUTION_RETRIES
      java.execution_retry_delay = java.execution_retry_delay or RETRY_DELAY_MS
    elif java.flink_conf_dir is None and server is not None:
      java.flink_conf_dir = str(_restart_strategy_conf(server, options.view_as(FlinkRestartOptions)))
    else:
      _LOGGER.info('streaming on Flink: the restart strategy is the cluster\'s (--flink_conf_dir or a job server '
                   'of your own: --flink_restart_* do not apply)')
  options.view_as(FlinkRunnerOptions).flink_master = master
  # The job server is already Flink's: the portable runner only talks to it.
  options.view_as(StandardOptions).runner = 'PortableRunner'
  _LOGGER.info('submitting %s to the Flink job server at %s (Flink master %s, environment %s)',
               job.job_name, portable.job_endpoint, master, portable.environment_type)
  return PortableRunner()


def _restart_strategy_conf(server: FlinkJobServer, restarts: FlinkRestartOptions):
  """A Flink configuration directory naming the failure-rate restart strategy, for the job server to give the job
  (--flink_conf_dir: the job's own configuration, read on the job server's host, which is this one)."""
  limits = (restarts.flink_restart_max_failures, restarts.flink_restart_failure_interval_s,
            restarts.flink_restart_delay_s)  # checked with the other options (options/checks.py)
  conf_dir = server.base / 'job-conf' / 'failure-rate-{}-in-{}s-after-{}s'.format(*limits)
  conf_dir.mkdir(parents=True, exist_ok=True)
  (conf_dir / 'flink-conf.yaml').write_text(
      'restart-strategy.type: failure-rate\n'
      f'restart-strategy.failure-rate.max-failures-per-interval: {limits[0]}\n'
      f'restart-strategy.failure-rate.failure-rate-interval: {limits[1]} s\n'
      f'restart-strategy.failure-rate.delay: {limits[2]} s\n')
  _LOGGER.info('streaming on Flink: the job ends FAILED after more than %d failures within %d s, restarted %d s '
               'after each (--flink_restart_max_failures, --flink_restart_failure_interval_s, '
               '--flink_restart_delay_s)', *limits)
  return conf_dir


def _settle_parallelism(options: PipelineOptions, cluster_settings: Optional[dict]) -> int:
  """The job's parallelism, made explicit when not given so that the reads are planned for exactly that many
  readers: a cluster's ``parallelism.default``; embedded, a slot per core (what Flink's mini cluster gives)."""
  flink = options.view_as(FlinkRunnerOptions)
  if not flink.parallelism or flink.parallelism <= 0:
    if cluster_settings is not None:
      flink.parallelism = _cluster_default_parallelism(cluster_settings)
      where = "the cluster's parallelism.default"
    else:
      flink.parallelism = os.cpu_count() or 1
      where = 'a slot per core'
    _LOGGER.info('running with --parallelism %d (%s); --parallelism sets another', flink.parallelism, where)
  return flink.parallelism


def reader_placement(options: PipelineOptions, bounded: bool) -> Optional[FlinkKeyedReaders]:
  """How a job readied by ``flink_runner`` places the Kafka reads on its parallel readers, for the read to spread
  the partitions evenly: a streaming job's by a hash of each (``key_groups.py``); None when there is only one
  reader, or in batch mode, where the runner deals them out in turn."""
  flink = options.view_as(FlinkRunnerOptions)
  if bounded or not flink.parallelism or flink.parallelism <= 1:
    return None
  return FlinkKeyedReaders(flink.parallelism, max(flink.max_parallelism or 0, 0))


def _cluster_settings(rest_address: str) -> dict:
  """The cluster's Flink configuration; fails in seconds, naming the address, when no Flink cluster answers at
  --flink_master."""
  try:
    config = rest_get(rest_address, '/jobmanager/config')
  except (OSError, ValueError) as error:
    raise OptionError(
        f'--flink_master {rest_address}: no Flink REST API answered there ({error}); start the local session '
        'cluster with ./run_local.sh flink-up, or name a running cluster\'s JobManager REST address') from None
  return {entry['key']: entry['value'] for entry in config}


def _stage_nothing_where_the_cluster_has_the_runner(options: PipelineOptions, cluster_settings: dict) -> None:
  """A cluster that runs from the job server's own jars needs none of them uploaded with the job."""
  staging = options.view_as(FlinkStagingOptions)
  if staging.pipeline_resources_detector_factory_class:
    return
  if cluster_settings.get(RUNNER_ON_CLASSPATH_SETTING) == 'true':
    staging.pipeline_resources_detector_factory_class = NOTHING_TO_STAGE_FACTORY


def _cluster_default_parallelism(cluster_settings: dict) -> int:
  try:
    return max(int(cluster_settings.get('parallelism.default', 1)), 1)
  except ValueError:
    return 1


def wait_until_running(result: PipelineResult, options: PipelineOptions,
                       timeout_s: float = _RUNNING_TIMEOUT_S) -> None:
  """Returns once Flink runs the job; raises FlinkSubmitError if it ends or does not start in time."""
  deadline = time.monotonic() + timeout_s
  state = result.state
  while state != PipelineState.RUNNING:
    if state in _FINAL_STATES:
      raise FlinkSubmitError(f'the Flink job ended as {state} before it ran')
    if time.monotonic() > deadline:
      raise FlinkSubmitError(f'the Flink job was still {state} after {timeout_s:.0f}s')
    time.sleep(0.5)
    state = result.state
  # The job server says RUNNING before Flink lists the job: a cancel sent in between would find nothing to cancel.
  name = options.view_as(GoogleCloudOptions).job_name
  while not _listed_by_flink(flink_rest_addresses(options), name):
    if time.monotonic() > deadline:
      raise FlinkSubmitError(f'Flink did not list the job {name} within {timeout_s:.0f}s')
    time.sleep(0.5)
  _LOGGER.info('the Flink job %s is RUNNING; it runs until cancelled in Flink (web UI at http://%s, or its REST '
               'API: PATCH /jobs/<id>?mode=cancel)', name, flink_rest_addresses(options)[0])


def _listed_by_flink(rest_addresses: List[str], job_name: str) -> bool:
  for address in rest_addresses:
    try:
      if any(job['name'] == job_name and job['state'] == 'RUNNING'
             for job in rest_get(address, '/jobs/overview')['jobs']):
        return True
    except (OSError, ValueError, KeyError):
      continue
  return False


def wait_or_cancel(result: PipelineResult, options: PipelineOptions) -> None:
  """Waits for the job; if this command is stopped (Ctrl-C, SIGTERM) first, cancels it and returns, so that a job
  whose Python code runs in this process does not go on restarting without it."""
  previous = None
  if threading.current_thread() is threading.main_thread():
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
  try:
    result.wait_until_finish()
  except KeyboardInterrupt:
    name = options.view_as(GoogleCloudOptions).job_name
    _LOGGER.info('stopped: cancelling the Flink job %s', name)
    result.cancel()  # the job service stops following the job; Flink itself is told through its REST API
    cancelled = cancel_flink_job(flink_rest_addresses(options), name)
    _LOGGER.info('the Flink job %s is cancelled (%s)', name, ', '.join(cancelled) or 'it had ended')
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)
