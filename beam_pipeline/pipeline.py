"""The graph, wired in one place, and how a run is started:

    ReadFromKafka -> ParseJson -> Validate [-> KeepDates] -> CassandraCounterWrite | ReconcileCounters
                         \\            \\                            \\
                          +------------+----------------------------+--> WriteDeadLetters (Kafka, files),
                                                                         one branch per stage
    bounded catch-up only: Impulse -> CommitOffsets (side inputs: the planned reads and every writing stage)
"""

import logging
import os
import socket
import threading
import time
import uuid
from typing import List, Optional, Tuple

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TestOptions
from apache_beam.runners.runner import PipelineResult

from beam_pipeline import flink_runner, metrics
from beam_pipeline.cassandra_connection import CassandraConnection
from beam_pipeline.cassandra_write import CassandraCounterWrite
from beam_pipeline.dead_letters import WriteDeadLetters
from beam_pipeline.kafka_read import CommitPlannedOffsets, KafkaReadConfig, ReadFromKafka, plan_partition_reads
from beam_pipeline.dates import KeepDates
from beam_pipeline.options import (
    LOCAL_RUNNER_NAMES, SiteStatsOptions, cassandra_security, check_options, dead_letter_outputs, is_window_run,
    kafka_security, optional_time_ms, parse_partition_offsets, requested_dates, schema_replication)
from beam_pipeline.reconcile import ReconcileCounters
from beam_pipeline.parse import ParseJson
from beam_pipeline.preflight import preflight
from beam_pipeline.progress import ReadProgress, follow, messages_read_in
from beam_pipeline.validate import Validate

_LOGGER = logging.getLogger(__name__)

def build_graph(pipeline: beam.Pipeline, site: SiteStatsOptions) -> None:
  config = read_config(site)
  reader = ReadFromKafka(config)
  records = pipeline | 'ReadFromKafka' >> reader
  parsed = records | 'ParseJson' >> ParseJson()
  valid = parsed.parsed | 'Validate' >> Validate()
  increments, dates = valid.valid, requested_dates(site)
  if dates:
    increments = increments | 'KeepDates' >> KeepDates(dates)
  dead_letters = {'ParseJson': parsed.dead_letters, 'Validate': valid.dead_letters}
  finished = []  # the outputs of the stages that must be durable before a catch-up commits its offsets
  if site.sink_mode == 'reconcile':
    _ = increments | 'ReconcileCounters' >> ReconcileCounters(
        cassandra_connection(site), site.keyspace, site.table, dates, site.report_only, _lease_owner(),
        site.lease_ttl_s, allow_emptying=site.force_window)
  else:
    written = increments | 'CassandraCounterWrite' >> CassandraCounterWrite(
        cassandra_connection(site), site.keyspace, site.table, site.max_concurrent_writes,
        site.statements_per_batch)
    dead_letters['CassandraCounterWrite'] = written.dead_letters
    finished.append(written.written)
  topic, directory = dead_letter_outputs(site)
  if topic or directory:
    dead_letter_writer = WriteDeadLetters(site.bootstrap_servers, topic, directory, kafka_security(site))
    _ = dead_letters | 'WriteDeadLetters' >> dead_letter_writer
    finished += dead_letter_writer.finished
  if config.commits_at_end:
    _ = pipeline | 'CommitOffsets' >> CommitPlannedOffsets(config, reader.planned, finished)


def _lease_owner() -> str:
  return f'{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}'


def read_config(site: SiteStatsOptions) -> KafkaReadConfig:
  window = is_window_run(site)
  return KafkaReadConfig(
      bootstrap_servers=site.bootstrap_servers, topic=site.topic, consumer_group=site.consumer_group,
      start_offset=site.start_offset, start_time_ms=optional_time_ms(site.start_time, 'start_time'),
      stop_time_ms=optional_time_ms(site.stop_time, 'stop_time'), bounded=site.bounded,
      max_records_per_bundle=site.max_records_per_bundle, max_bundle_seconds=site.max_bundle_seconds,
      connect_timeout_s=site.kafka_connect_timeout_s, security=kafka_security(site),
      partition_headroom=site.partition_headroom, progress_interval_s=site.progress_interval_s,
      commit_offsets=not window, use_committed_offsets=not window,
      start_offsets=tuple(sorted(parse_partition_offsets(site.start_offsets, 'start_offsets').items())),
      stop_offsets=tuple(sorted(parse_partition_offsets(site.stop_offsets, 'stop_offsets').items())))


def cassandra_connection(site: SiteStatsOptions) -> CassandraConnection:
  return CassandraConnection(hosts=tuple(h.strip() for h in site.cassandra_hosts.split(',')),
                             port=site.cassandra_port, security=cassandra_security(site))


def local_runner(progress: Optional[ReadProgress] = None):
  from beam_pipeline.local_runner import LocalRunner
  if progress is None:
    return LocalRunner()
  return LocalRunner(on_bundle_done=lambda response: progress.add(messages_read_in(response)))


def choose_runner(options: PipelineOptions, progress: Optional[ReadProgress] = None):
  """The Python FnApiRunner for local runs; any other runner (Flink, Dataflow) exactly as asked.

  Beam's DirectRunner first tries to download the Prism runner, which fails offline; local jobs run on Beam's
  in-process Python runner on purpose (it runs splittable DoFns, checkpoints and bundle finalization), with
  worker processes when asked for (``--direct_num_workers 2 --direct_running_mode multi_processing``).
  """
  name = options.view_as(StandardOptions).runner
  if name in LOCAL_RUNNER_NAMES:
    return local_runner(progress)
  if flink_runner.is_flink_run(options):
    site = options.view_as(SiteStatsOptions)
    return flink_runner.flink_runner(options, site.bounded, site.topic)
  return None  # beam.Pipeline resolves --runner itself


def _check_and_plan(site: SiteStatsOptions, dry_run: bool, waits: bool) -> Optional[ReadProgress]:
  """The preflight, then the progress of a bounded run that is waited for (None when there is none to show)."""
  if site.skip_preflight or dry_run:
    _LOGGER.info('preflight skipped: the workers check the topics and the table when they start')
    return None
  for done in preflight(site, read_config(site), cassandra_connection(site), dead_letter_outputs(site)[0],
                        schema_replication(site)):
    _LOGGER.info('%s', done)
  if not (site.bounded and waits and site.progress_interval_s):
    return None
  try:
    planned = sum(read.stop_offset - read.start_offset for read in plan_partition_reads(read_config(site)))
  except Exception as error:  # pylint: disable=broad-except
    _LOGGER.warning('no progress shown: the read could not be planned here (%s)', error)
    return None
  return ReadProgress(planned, site.progress_interval_s)


def run(argv: Optional[List[str]] = None,
        wait: Optional[bool] = None) -> Tuple[PipelineResult, Optional[metrics.RunSummary]]:
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
  runner = choose_runner(options, progress)
  try:
    pipeline = beam.Pipeline(runner=runner, options=options)
    build_graph(pipeline, site)
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
    if progress is not None:
      progress.close()
  try:
    summary = metrics.summarize(result, time.monotonic() - started)
  except (NotImplementedError, AttributeError):
    summary = None  # e.g. a Dataflow dry run has no metrics
  return result, summary
