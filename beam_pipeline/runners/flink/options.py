"""The Flink runner's own options, declared so that the job accepts them and hands them to Flink.

Beam's Python SDK declares only a few of the Flink runner's options (``--flink_master``, ``--parallelism``, ...);
the others (``--checkpointing_interval``, ``--state_backend``, ...) live in the Java runner's
``FlinkPipelineOptions``, and the job server announces them only once a job is being submitted. Declaring them
here lets ``python -m beam_pipeline`` accept them up front (it refuses flags no options class declares), and
lets the job set them itself (checkpointing on by default for streaming). The list is that of the pinned Beam
Java runner (``services/flink/pom.xml``); a test compares it with what the running job server announces.
"""

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline.switches import add_switch

# name -> type, as FlinkPipelineOptions of Beam Java 2.62.0 declares them (less those Python already declares).
FLINK_JAVA_OPTIONS = {
    'allow_non_restored_state': bool,
    'attached_mode': bool,
    'auto_balance_write_files_sharding_enabled': bool,
    'auto_watermark_interval': int,
    'checkpoint_timeout_millis': int,
    'checkpointing_interval': int,
    'checkpointing_mode': str,
    'disable_metrics': bool,
    'enable_stable_input_drain': bool,
    'execution_mode_for_batch': str,
    'execution_retry_delay': int,
    'externalized_checkpoints_enabled': bool,
    'fail_on_checkpointing_errors': bool,
    'faster_copy': bool,
    'file_input_split_max_size_m_b': int,
    'finish_bundle_before_checkpointing': bool,
    'flink_conf_dir': str,
    'force_unaligned_checkpoint_enabled': bool,
    'job_check_interval_in_secs': int,
    'latency_tracking_interval': int,
    'max_bundle_size': int,
    'max_bundle_time_mills': int,
    'min_pause_between_checkpoints': int,
    'num_concurrent_checkpoints': int,
    'number_of_execution_retries': int,
    'object_reuse': bool,
    'operator_chaining': bool,
    're_iterable_group_by_key_result': bool,
    'report_checkpoint_duration': str,
    'retain_externalized_checkpoints_on_cancellation': bool,
    'savepoint_path': str,
    'shutdown_sources_after_idle_ms': int,
    'state_backend': str,
    'state_backend_factory': str,
    'state_backend_storage_path': str,
    'unaligned_checkpoint_enabled': bool,
    'use_data_stream_for_batch': bool,
    # Portable options the Java side declares and Python does not.
    'default_environment_config': str,
    'default_environment_type': str,
    'enable_heap_dumps': bool,
    'environment_expiration_millis': int,
    'load_balance_bundles': bool,
}


# A cluster whose JobManager and TaskManagers run from the job server's own jars says so with this setting in its
# Flink configuration (the project's session cluster does); its jobs then stage no jars.
RUNNER_ON_CLASSPATH_SETTING = 'site-stats.runner-on-classpath'
# The Java class (services/flink/src) that finds nothing to stage.
NOTHING_TO_STAGE_FACTORY = 'sitestats.flink.NothingToStageDetectorFactory'


class FlinkStagingOptions(PipelineOptions):
  """Which files Beam's job server uploads with each job to a cluster: by default its whole classpath (on the
  local session cluster 165 jars, 154 MB, 13-15 s per job). The Flink runner sets it for a cluster that declares
  RUNNER_ON_CLASSPATH_SETTING."""

  @classmethod
  def _add_argparse_args(cls, parser):
    parser.add_argument(
        '--pipeline_resources_detector_factory_class', default=None,
        help='Java class of the factory that finds the files the job server stages with a job (Beam\'s '
             f'PipelineResourcesOptions); {NOTHING_TO_STAGE_FACTORY} stages none, for a cluster that runs from '
             'the job server\'s jars.')


class FlinkJavaRunnerOptions(PipelineOptions):
  """Options of Beam's Java Flink runner; unset ones are left to the runner's defaults."""

  @classmethod
  def _add_argparse_args(cls, parser):
    group = parser.add_argument_group('Flink runner (Beam Java FlinkPipelineOptions)')
    for name, kind in FLINK_JAVA_OPTIONS.items():
      flag = f'--{name}'
      try:
        if kind is bool:
          add_switch(group, flag, None, help='Flink runner option (FlinkPipelineOptions)')
        else:
          group.add_argument(flag, type=kind, default=None, help='Flink runner option (FlinkPipelineOptions)')
      except argparse.ArgumentError:
        pass  # a later Beam declares it in Python too: theirs serves


# What a streaming job on a Flink cluster is restarted with unless given: Flink's failure-rate strategy, so that an
# outage of a minute or two is ridden out, and a job that fails the same way again and again ends FAILED, with the
# reason in Flink's REST API and web UI, instead of restarting for ever while looking RUNNING.
DEFAULT_RESTART_MAX_FAILURES = 10
DEFAULT_RESTART_FAILURE_INTERVAL_S = 600
DEFAULT_RESTART_DELAY_S = 10


class FlinkRestartOptions(PipelineOptions):
  """How Flink restarts a failed streaming job on a cluster (its failure-rate restart strategy)."""

  @classmethod
  def _add_argparse_args(cls, parser):
    group = parser.add_argument_group('Flink restarts (streaming on a cluster)')
    group.add_argument(
        '--flink_restart_max_failures', type=int, default=DEFAULT_RESTART_MAX_FAILURES,
        help='A streaming job on a Flink cluster that fails more often than this within '
             '--flink_restart_failure_interval_s ends FAILED instead of restarting (default '
             f'{DEFAULT_RESTART_MAX_FAILURES}). --number_of_execution_retries replaces this with a fixed count.')
    group.add_argument(
        '--flink_restart_failure_interval_s', type=int, default=DEFAULT_RESTART_FAILURE_INTERVAL_S,
        help=f'The window of --flink_restart_max_failures, in seconds (default {DEFAULT_RESTART_FAILURE_INTERVAL_S}).')
    group.add_argument(
        '--flink_restart_delay_s', type=int, default=DEFAULT_RESTART_DELAY_S,
        help=f'Seconds between a failure and the restart (default {DEFAULT_RESTART_DELAY_S}).')
