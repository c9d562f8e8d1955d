"""--topic_pattern: every matching topic is read into the same counters; a streaming job also reads the matching
topics created while it runs, from their first offset; a bounded run that matches nothing is refused at launch."""

import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline import REPO_ROOT
from beam_pipeline.errors import OptionError
from beam_pipeline.io.kafka.admin import delete_topics, ensure_topics
from beam_pipeline.options.checks import check_options
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import TEST_PARTITIONS, produce_dataset, unique_name
from beam_pipeline.testing.jobs import (
    job_args, run_bounded, start_streaming_job, stop_streaming_job, wait_until_caught_up)
from beam_pipeline.testing.topics import committed_offsets, end_offsets, read_topic


@pytest.fixture
def prefix(request, bootstrap_servers):
  """A unique topic-name prefix; every topic named after it is deleted afterwards."""
  name = unique_name('p', request.node.name)
  created = []
  yield name, created
  delete_topics(bootstrap_servers, created)


def _topics(bootstrap_servers, prefix, *suffixes):
  name, created = prefix
  topics = [f'{name}_{suffix}' for suffix in suffixes]
  ensure_topics(bootstrap_servers, topics, TEST_PARTITIONS)
  created += topics
  return topics


def _args(bootstrap_servers, prefix, keyspace, cassandra_port, *extra):
  """Reads the topics ``<prefix>_<letters>``; dead letters go to ``<prefix>-dlq``, which the pattern misses."""
  name, created = prefix
  created.append(f'{name}-dlq')
  args = job_args(bootstrap_servers, 'unused', keyspace, cassandra_port, '--consumer_group', f'{name}-group',
                  '--dead_letter_topic', f'{name}-dlq', *extra)
  at = args.index('--topic')
  return args[:at] + ['--topic_pattern', f'{name}_[a-z]+'] + args[at + 2:]


def _assert_bounded_run_counts_every_matching_topic(bootstrap_servers, prefix, keyspace, cassandra_port,
                                                     cassandra_session, *extra):
  first, second, other = _topics(bootstrap_servers, prefix, 'eu', 'us', 'x1')
  in_first = produce_dataset(bootstrap_servers, first, count=800, keys=40, bad_ratio=0.05, seed=501)
  in_second = produce_dataset(bootstrap_servers, second, count=500, keys=40, bad_ratio=0.05, seed=502)
  produce_dataset(bootstrap_servers, other, count=300, keys=40, seed=503)  # x1 has a digit: not matched

  summary = run_bounded(*_args(bootstrap_servers, prefix, keyspace, cassandra_port, *extra))

  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(in_first),
                                                                    expected_counters(in_second))
  assert summary.read == in_first.messages + in_second.messages
  dead_letters = read_topic(bootstrap_servers, f'{prefix[0]}-dlq')
  assert len(dead_letters) == summary.dead_lettered_total == (in_first.messages - in_first.valid
                                                              + in_second.messages - in_second.valid)
  for name in (first, second):
    assert committed_offsets(bootstrap_servers, f'{prefix[0]}-group', name) == end_offsets(bootstrap_servers, name)


def test_a_bounded_run_counts_every_matching_topic_and_nothing_else(
    bootstrap_servers, prefix, keyspace, cassandra_port, cassandra_session, kafka_client):
  _assert_bounded_run_counts_every_matching_topic(bootstrap_servers, prefix, keyspace, cassandra_port,
                                                  cassandra_session, '--kafka_client', kafka_client)


def test_a_bounded_run_on_embedded_flink_counts_every_matching_topic_and_nothing_else(
    flink_job_server, bootstrap_servers, prefix, keyspace, cassandra_port, cassandra_session):
  _assert_bounded_run_counts_every_matching_topic(bootstrap_servers, prefix, keyspace, cassandra_port,
                                                  cassandra_session, '--runner', 'FlinkRunner')


def test_a_bounded_run_whose_pattern_matches_nothing_is_refused_at_launch_in_one_line(
    bootstrap_servers, prefix, keyspace, cassandra_port):
  result = subprocess.run([sys.executable, '-m', 'beam_pipeline', '--bounded',
                           *_args(bootstrap_servers, prefix, keyspace, cassandra_port)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"error: no topic on {bootstrap_servers} matches --topic_pattern '{prefix[0]}_[a-z]+': check the pattern (it "
      'must match whole names) and --bootstrap_servers, or create a matching topic']


def test_a_streaming_job_reads_a_matching_topic_created_while_it_runs_from_its_first_offset(
    bootstrap_servers, prefix, keyspace, cassandra_port, cassandra_session, tmp_path, kafka_client):
  log = tmp_path / 'job.log'
  group = f'{prefix[0]}-group'
  first, = _topics(bootstrap_servers, prefix, 'eu')
  before = produce_dataset(bootstrap_servers, first, count=600, keys=30, seed=511)
  job = start_streaming_job(_args(bootstrap_servers, prefix, keyspace, cassandra_port, '--max_bundle_seconds', '1',
                                  '--topic_discovery_interval_s', '2', '--kafka_client', kafka_client), log)
  try:
    wait_until_caught_up(job, cassandra_session, keyspace, expected_counters(before), bootstrap_servers, group,
                         first, log)
    second, = _topics(bootstrap_servers, prefix, 'us')
    created_later = produce_dataset(bootstrap_servers, second, count=400, keys=30, seed=512)
    more_in_first = produce_dataset(bootstrap_servers, first, count=200, keys=30, seed=513)

    # wait_until_caught_up also requires the group to have committed all of the new topic.
    want = add_counters(expected_counters(before), expected_counters(created_later),
                        expected_counters(more_in_first))
    wait_until_caught_up(job, cassandra_session, keyspace, want, bootstrap_servers, group, second, log)
  finally:
    stop_streaming_job(job)
  text = log.read_text()
  assert f"--topic_pattern '{prefix[0]}_[a-z]+' matches 1 topics" in text
  assert f"{second}: new topic matching '{prefix[0]}_[a-z]+', read from its first offset" in text


@pytest.mark.parametrize('args,message', [
    (['--topic', 'a', '--topic_pattern', 'a.*'], 'give --topic or --topic_pattern, not both'),
    (['--topic_pattern', 'a(', '--dead_letter_topic', 'dlq'], "--topic_pattern='a(' is not a regular expression"),
    (['--topic_pattern', 'site-.*'], '--topic_pattern needs --dead_letter_topic'),
    (['--topic_pattern', 'site-.*', '--dead_letter_topic', 'site-dlq'],
     'the dead-letter topic site-dlq is also a topic'),
    (['--topic_pattern', 'a.*', '--dead_letter_topic', 'dlq', '--topic_discovery_interval_s', '0'],
     '--topic_discovery_interval_s=0.0 must be positive'),
    (['--topic_pattern', 'a.*', '--dead_letter_topic', 'dlq', '--bounded', '--start_offsets', 'b:0=1'],
     "--start_offsets='b:0=1': topic 'b' is not one that --topic names (or --topic_pattern matches)"),
])
def test_bad_pattern_options_are_refused_naming_the_option(args, message):
  with pytest.raises(OptionError) as refused:
    check_options(PipelineOptions(['--keyspace', 'stats', *args]))
  assert str(refused.value).startswith(message)
