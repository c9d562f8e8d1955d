"""How a run is started: the option checks, the preflight, the runner, the wait, the progress and the summary."""

import logging
import signal
import threading
import time
from typing import List, Optional, Tuple

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TestOptions
from apache_beam.runners.runner import PipelineResult

from beam_pipeline.errors import KafkaReadError
from beam_pipeline.io.kafka.membership import GroupMember
from beam_pipeline.io.kafka.planning import plan_partition_reads
from beam_pipeline.launch.preflight import preflight
from beam_pipeline.launch.prometheus_endpoint import PrometheusEndpoint
from beam_pipeline.launch.progress import ReadProgress, follow, messages_read_in
from beam_pipeline.launch.summary import RunSummary, summarize
from beam_pipeline.options import configs
from beam_pipeline.options.checks import check_options
from beam_pipeline.options.site_stats import SiteStatsOptions
from beam_pipeline.pipeline import build_graph
from beam_pipeline.processes.command import end_process
from beam_pipeline.runners.flink import runner as flink_runner
from beam_pipeline.runners.local.worker_pool import LOCAL_RUNNER_NAMES

_LOGGER = logging.getLogger(__name__)


def local_runner(progress: Optional[ReadProgress] = None, endpoint: Optional[PrometheusEndpoint] = None):
  """The local runner; each bundle's metrics, as it completes, feed the progress and the metrics endpoint."""
  from beam_pipeline.runners.local.runner import LocalRunner
  listeners = []
  if progress is not None:
    listeners.append(lambda response: progress.add(messages_read_in(response)))
  if endpoint is not None:
    listeners.append(endpoint.metrics.add_bundle)
  if not listeners:
    return LocalRunner()
  return LocalRunner(on_bundle_done=lambda response: [listener(response) for listener in listeners])


def choose_runner(options: PipelineOptions, progress: Optional[ReadProgress] = None,
                  endpoint: Optional[PrometheusEndpoint] = None):
  """The Python FnApiRunner for local runs; any other runner (Flink, Dataflow) exactly as asked.

  Beam's DirectRunner first tries to download the Prism runner, which fails offline; local jobs run on Beam's
  in-process Python runner on purpose (it runs splittable DoFns, checkpoints and bundle finalization), with
  worker processes when asked for (``--direct_num_workers 2 --direct_running_mode multi_processing``).
  """
  name = options.view_as(StandardOptions).runner
  if name in LOCAL_RUNNER_NAMES:
    return local_runner(progress, endpoint)
  if flink_runner.is_flink_run(options):
    site = options.view_as(SiteStatsOptions)
    return flink_runner.flink_runner(options, site.bounded, site.topic or site.topic_pattern)
  return None  # beam.Pipeline resolves --runner itself


def _check_and_plan(site: SiteStatsOptions, dry_run: bool, waits: bool) -> Optional[ReadProgress]:
  """The preflight, then the progress of a bounded run that is waited for (None when there is none to show)."""
  if site.skip_preflight or dry_run:
    _LOGGER.info('preflight skipped: the workers check the topics and the table when they start')
    return None
  read_config = configs.read_config(site)
  for done in preflight(site, read_config, configs.cassandra_connection(site), configs.dead_letter_outputs(site)[0],
                        configs.schema_replication(site)):
    _LOGGER.info('%s', done)
  if not (site.bounded and waits and site.progress_interval_s):
    return None
  try:
    planned = sum(read.stop_offset - read.start_offset for read in plan_partition_reads(read_config))
  except KafkaReadError:
    raise  # the reader's plan would stop the job with the same line (an offset outside the log): stop it now
  except Exception as error:  # pylint: disable=broad-except
    _LOGGER.warning('no progress shown: the read could not be planned here (%s)', error)
    return None
  return ReadProgress(planned, site.progress_interval_s)


def _metrics_endpoint(port: Optional[int], runs_locally: bool) -> Optional[PrometheusEndpoint]:
  if not port:
    return None
  if not runs_locally:
    _LOGGER.warning('--metrics_port %d ignored: only the local runner serves metrics itself; Flink serves them on '
                    'its Prometheus reporter, Dataflow in Cloud Monitoring (docs/metrics.md)', port)
    return None
  endpoint = PrometheusEndpoint(port)
  _LOGGER.info('metrics for Prometheus at http://localhost:%d/metrics', port)
  return endpoint


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _join_group(site: SiteStatsOptions, endpoint: Optional[PrometheusEndpoint]) -> Optional[GroupMember]:
  """A streaming run on the local runner joins its consumer group, so that copies of it share the partitions
  (membership.py). SIGTERM or SIGINT then lets the partitions go, committed, leaves the group and ends the run."""
  read_config = configs.read_config(site)
  if read_config.bounded or not (read_config.commit_offsets and read_config.consumer_group):
    return None
  member = GroupMember(read_config, on_rebalanced=endpoint.metrics.rebalanced if endpoint else lambda took_s: None)
  member.start()
  if threading.current_thread() is threading.main_thread():
    def leave_and_exit():
      member.close(readers_running=True)
      _LOGGER.info('stopped')
      # Nothing is left to flush: every read the copy let go is written and committed, and the rest of the run
      # (its worker processes too) ends with the process, as after SIGKILL.
      end_process(0)

    def on_stop(number, unused_frame):
      _LOGGER.info('%s: letting this copy\'s partitions go to the rest of group %r', signal.Signals(number).name,
                   read_config.consumer_group)
      # Not in the handler: the readers this waits for may run on this very thread.
      threading.Thread(target=leave_and_exit, name='leave-group', daemon=True).start()
    for number in _STOP_SIGNALS:
      signal.signal(number, on_stop)
  return member


def run(argv: Optional[List[str]] = None,
        wait: Optional[bool] = None) -> Tuple[PipelineResult, Optional[RunSummary]]:
  """Checks what the job needs (see preflight), builds the job and starts it.

  ``wait`` defaults to waiting for local runs and for bounded runs anywhere; a streaming job on a remote runner
  (and a Flex template launch, which passes ``wait=False``) returns once submitted. The summary is returned when
  the run was waited for and its runner reports metrics.
  """
  options = PipelineOptions(argv)
  for note in check_options(options):
    _LOGGER.info('%s', note)
  site = options.view_as(SiteStatsOptions)
  progress = _check_and_plan(site, dry_run=bool(options.view_as(TestOptions).dry_run), waits=wait is not False)
  runs_locally = options.view_as(StandardOptions).runner in LOCAL_RUNNER_NAMES
  on_flink = flink_runner.is_flink_run(options)
  runs_here = runs_locally or (on_flink and flink_runner.is_embedded(options))
  endpoint = _metrics_endpoint(site.metrics_port, runs_locally)
  runner = choose_runner(options, progress, endpoint)
  member, stop_handlers = None, {number: signal.getsignal(number) for number in _STOP_SIGNALS}
  try:
    if runs_locally and not options.view_as(TestOptions).dry_run:
      member = _join_group(site, endpoint)
    pipeline = beam.Pipeline(runner=runner, options=options)
    placement = flink_runner.reader_placement(options, site.bounded) if on_flink else None
    build_graph(pipeline, site, member and member.address, placement)
    started = time.monotonic()
    result = pipeline.run()
    if wait is None:
      wait = runs_here or site.bounded
    if not wait:
      if on_flink:
        flink_runner.wait_until_running(result, options)
      return result, None
    if progress is not None and not runs_locally:
      # The local runner reports each bundle itself; a remote job's metrics are polled beside the wait.
      threading.Thread(target=follow, args=(result, progress, site.progress_interval_s), daemon=True).start()
    if on_flink:
      flink_runner.wait_or_cancel(result, options)
    else:
      result.wait_until_finish()
  finally:
    if member is not None:
      member.close()
      if threading.current_thread() is threading.main_thread():
        for number, handler in stop_handlers.items():
          signal.signal(number, handler)
    if progress is not None:
      progress.close()
    if endpoint is not None:
      endpoint.close()
  try:
    summary = summarize(result, time.monotonic() - started)
  except (NotImplementedError, AttributeError):
    summary = None  # e.g. a Dataflow dry run has no metrics
  return result, summary
