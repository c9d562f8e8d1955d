"""Several topics read into the same counters: exact counts, one dead-letter topic whose letters keep their source
topic, offsets committed per topic and partition, windows by offsets that name the topic, and the launch checks."""

import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipeline import REPO_ROOT
from beam_pipeline.errors import OptionError
from beam_pipeline.options.checks import check_options
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import fresh_topic, produce_dataset
from beam_pipeline.testing.jobs import job_args, run_bounded
from beam_pipeline.testing.topics import committed_offsets, end_offsets, read_dead_letters

BASE = ['--keyspace', 'stats']


def _args(bootstrap_servers, topics, keyspace, cassandra_port, *extra):
  """The job's arguments for reading ``topics`` with the group ``<first topic>-group``."""
  return job_args(bootstrap_servers, ','.join(topics), keyspace, cassandra_port, '--consumer_group',
                  f'{topics[0]}-group', *extra)


@pytest.fixture
def other_topic(request, bootstrap_servers) -> str:
  with fresh_topic(bootstrap_servers, f'{request.node.name}_other') as name:
    yield name


def _assert_two_topics_counted(summary, first, second, bootstrap_servers, topic, other_topic, keyspace,
                               cassandra_session):
  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(first),
                                                                    expected_counters(second))
  assert (summary.read, summary.counted) == (first.messages + second.messages, first.valid + second.valid)
  for name in (topic, other_topic):
    assert committed_offsets(bootstrap_servers, f'{topic}-group', name) == end_offsets(bootstrap_servers, name)


def test_two_topics_are_counted_exactly_into_one_table_and_committed_per_topic(
    bootstrap_servers, topic, other_topic, keyspace, cassandra_port, cassandra_session):
  first = produce_dataset(bootstrap_servers, topic, count=1500, keys=80, bad_ratio=0.05, seed=401)
  second = produce_dataset(bootstrap_servers, other_topic, count=1000, keys=80, bad_ratio=0.05, seed=402)

  summary = run_bounded(*_args(bootstrap_servers, (topic, other_topic), keyspace, cassandra_port))

  _assert_two_topics_counted(summary, first, second, bootstrap_servers, topic, other_topic, keyspace,
                             cassandra_session)
  # One dead-letter topic, after the first topic; each letter names the topic its message came from.
  sources = [letter['topic'] for letter in read_dead_letters(bootstrap_servers, topic)]
  assert sorted(sources) == sorted([topic] * (first.messages - first.valid) +
                                   [other_topic] * (second.messages - second.valid))
  assert read_dead_letters(bootstrap_servers, other_topic) == []


def test_a_window_backfill_by_offsets_over_two_topics_reads_from_the_offsets_named_per_topic(
    bootstrap_servers, topic, other_topic, keyspace, cassandra_port, cassandra_session):
  produce_dataset(bootstrap_servers, topic, count=600, keys=40, bad_ratio=0, seed=411)
  produce_dataset(bootstrap_servers, other_topic, count=400, keys=40, bad_ratio=0, seed=412)
  held = {name: end_offsets(bootstrap_servers, name) for name in (topic, other_topic)}
  later_first = produce_dataset(bootstrap_servers, topic, count=300, keys=40, bad_ratio=0, seed=413)
  later_second = produce_dataset(bootstrap_servers, other_topic, count=200, keys=40, bad_ratio=0, seed=414)
  start_offsets = ','.join(f'{name}:{partition}={offset}' for name, offsets in held.items()
                           for partition, offset in offsets.items())

  window = run_bounded(*_args(bootstrap_servers, (topic, other_topic), keyspace, cassandra_port,
                             '--start_offsets', start_offsets))

  assert window.read == later_first.messages + later_second.messages
  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(later_first),
                                                                    expected_counters(later_second))
  for name in (topic, other_topic):  # a window leaves the group alone
    assert set(committed_offsets(bootstrap_servers, f'{topic}-group', name).values()) == {None}


def test_a_missing_topic_among_several_is_refused_at_launch_in_one_line_naming_it(
    bootstrap_servers, topic, keyspace, cassandra_port):
  result = subprocess.run(
      [sys.executable, '-m', 'beam_pipeline', '--bounded',
       *_args(bootstrap_servers, (topic, 'no_such_topic_here'), keyspace, cassandra_port)],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
      f"error: topic 'no_such_topic_here' does not exist on {bootstrap_servers}: check --topic (and "
      '--bootstrap_servers), or create the topic']


@pytest.mark.parametrize('args,message', [
    (['--topic', 'a,b,a'], "--topic='a,b,a' names a topic twice"),
    (['--topic', 'a,,b'], "--topic='a,,b': '' is not a Kafka topic name"),
    (['--topic', 'a,b', '--dead_letter_topic', 'b'], 'the dead-letter topic b is also a topic the job reads'),
    (['--topic', 'a,a-dlq'], 'the dead-letter topic a-dlq is also a topic the job reads'),
    (['--topic', 'a,b', '--bounded', '--start_offsets', '0=10'],
     "--start_offsets='0=10': name each partition's topic"),
    (['--topic', 'a,b', '--bounded', '--stop_offsets', 'c:0=10'], "--stop_offsets='c:0=10': topic 'c' is not one that --topic names"),
])
def test_bad_topic_lists_and_offsets_are_refused_naming_the_option(args, message):
  with pytest.raises(OptionError) as refused:
    check_options(PipelineOptions([*BASE, *args]))
  assert str(refused.value).startswith(message)


def test_two_topics_on_embedded_flink_are_counted_exactly_and_committed_per_topic(
    flink_job_server, bootstrap_servers, topic, other_topic, keyspace, cassandra_port, cassandra_session):
  first = produce_dataset(bootstrap_servers, topic, count=1000, keys=60, bad_ratio=0.05, seed=421)
  second = produce_dataset(bootstrap_servers, other_topic, count=800, keys=60, bad_ratio=0.05, seed=422)

  summary = run_bounded(*_args(bootstrap_servers, (topic, other_topic), keyspace, cassandra_port,
                              '--runner', 'FlinkRunner'))

  _assert_two_topics_counted(summary, first, second, bootstrap_servers, topic, other_topic, keyspace,
                             cassandra_session)


def test_two_topics_on_the_flink_session_cluster_are_counted_exactly_and_committed_per_topic(
    flink_cluster, bootstrap_servers, topic, other_topic, keyspace, cassandra_port, cassandra_session):
  first = produce_dataset(bootstrap_servers, topic, count=1000, keys=60, bad_ratio=0.05, seed=431)
  second = produce_dataset(bootstrap_servers, other_topic, count=800, keys=60, bad_ratio=0.05, seed=432)

  finished = subprocess.run([str(REPO_ROOT / 'run_flink.sh'), *_args(bootstrap_servers, (topic, other_topic),
                                                                      keyspace, cassandra_port),
                             '--bounded', '--job_name', topic], capture_output=True, text=True, timeout=300)

  assert finished.returncode == 0, finished.stderr[-3000:]
  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(first),
                                                                    expected_counters(second))
  for name in (topic, other_topic):
    assert committed_offsets(bootstrap_servers, f'{topic}-group', name) == end_offsets(bootstrap_servers, name)
