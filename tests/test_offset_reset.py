"""A group's committed offset outside the partition's log (the topic was recreated, or retention removed messages the
job had not read): the job stops with one line unless --offset_reset says where to start, and the messages removed
before they were read are counted as lost."""

import re
import subprocess
import sys
import time

from kafka import KafkaAdminClient, TopicPartition

from beam_pipeline import REPO_ROOT
from beam_pipeline.io.kafka.admin import delete_topics, ensure_topics
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import TEST_PARTITIONS, produce_dataset
from beam_pipeline.testing.jobs import job_args, run_bounded
from beam_pipeline.testing.topics import commit_offsets, committed_offsets, end_offsets

_OUTSIDE = re.compile(r'topic (\S+) partition (\d+): the committed offset (\d+) is outside the log, which holds '
                      r'offsets \[(\d+), (\d+)\)')


def _launch_refused(*args: str) -> re.Match:
  """Launches the bounded job, which must stop with one error line and no traceback; that line's match."""
  result = subprocess.run([sys.executable, '-m', 'beam_pipeline', '--bounded', *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=180)
  assert result.returncode == 1, result.stderr
  assert 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: ') and '--offset_reset earliest' in last and 'kafka-consumer-groups.sh' in last, last
  found = _OUTSIDE.search(last)
  assert found, last
  return found


def _recreate(bootstrap_servers: str, topic: str) -> None:
  """Deletes the topic and creates it again, empty, once the deletion is done (a create before fails)."""
  delete_topics(bootstrap_servers, [topic])
  admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
  try:
    deadline = time.monotonic() + 60
    while topic in admin.list_topics():
      assert time.monotonic() < deadline, f'{topic} still listed 60s after its deletion'
      time.sleep(0.2)
  finally:
    admin.close()
  ensure_topics(bootstrap_servers, [topic], TEST_PARTITIONS)
  deadline = time.monotonic() + 60
  while end_offsets(bootstrap_servers, topic) != {p: 0 for p in range(TEST_PARTITIONS)}:
    assert time.monotonic() < deadline, f'recreated {topic} not empty and whole after 60s'
    time.sleep(0.2)


def test_a_recreated_topic_stops_the_run_with_one_line_until_offset_reset_earliest_reads_it_from_its_start(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  # The offset ledger (--counting once) still holds offsets 0..N of the old topic as counted: it would skip the
  # recreated topic's messages at the same offsets. Without it, the counters show exactly what this run read.
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--counting', 'at_least_once')
  group = f'{topic}-group'
  first = produce_dataset(bootstrap_servers, topic, count=400, keys=20, bad_ratio=0.1, seed=1)
  run_bounded(*args)
  old_ends = committed_offsets(bootstrap_servers, group, topic)
  _recreate(bootstrap_servers, topic)
  # Kafka drops a deleted topic's group offsets; a job still running across the recreation commits its old ones
  # again, as this does.
  commit_offsets(bootstrap_servers, group, topic, old_ends)
  second = produce_dataset(bootstrap_servers, topic, count=40, keys=20, bad_ratio=0.1, seed=2)
  new_ends = end_offsets(bootstrap_servers, topic)
  assert all(new_ends[p] < old_ends[p] for p in new_ends), (new_ends, old_ends)

  # Planned by the launcher (to show progress), then by the reader only: the same line either way.
  for extra in ((), ('--progress_interval_s', '0')):
    found = _launch_refused(*args, *extra)
    partition = int(found.group(2))
    assert found.group(1) == topic
    assert (int(found.group(3)), int(found.group(4)), int(found.group(5))) == (old_ends[partition], 0,
                                                                               new_ends[partition])
  assert read_counters(cassandra_session, keyspace) == expected_counters(first)

  summary = run_bounded(*args, '--offset_reset', 'earliest')

  assert summary.counted == second.valid and summary.lost == 0
  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(first),
                                                                    expected_counters(second))
  assert committed_offsets(bootstrap_servers, group, topic) == new_ends


def test_messages_retention_removed_before_they_were_read_stop_the_run_or_are_counted_lost(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)
  group = f'{topic}-group'
  first = produce_dataset(bootstrap_servers, topic, count=300, keys=20, bad_ratio=0.1, seed=1)
  run_bounded(*args)
  committed = committed_offsets(bootstrap_servers, group, topic)
  unread = produce_dataset(bootstrap_servers, topic, count=200, keys=20, bad_ratio=0.1, seed=2)
  removed_to = end_offsets(bootstrap_servers, topic)
  # What retention does to the oldest segments, on demand: every unread message is removed.
  admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
  try:
    admin.delete_records({TopicPartition(topic, p): offset for p, offset in removed_to.items()})
  finally:
    admin.close()
  third = produce_dataset(bootstrap_servers, topic, count=100, keys=20, bad_ratio=0.1, seed=3)
  ends = end_offsets(bootstrap_servers, topic)

  found = _launch_refused(*args)
  partition = int(found.group(2))
  assert (int(found.group(3)), int(found.group(4)), int(found.group(5))) == (committed[partition],
                                                                             removed_to[partition], ends[partition])
  assert read_counters(cassandra_session, keyspace) == expected_counters(first)

  summary = run_bounded(*args, '--offset_reset', 'earliest')

  assert summary.lost == unread.messages == sum(removed_to[p] - committed[p] for p in committed)
  assert f'lost (removed from Kafka before they were read) {unread.messages}' in summary.text()
  assert summary.counted == third.valid
  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(first), expected_counters(third))
  assert committed_offsets(bootstrap_servers, group, topic) == ends


def test_a_recreated_topic_is_refused_before_the_offset_ledger_skips_its_new_messages_and_the_line_says_how(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  # Counting once, the ledger holds offsets 0..N of the old topic as counted: --offset_reset earliest alone would
  # read the recreated topic from 0 and skip its messages as counted.
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)
  first = produce_dataset(bootstrap_servers, topic, count=400, keys=20, bad_ratio=0.1, seed=3)
  run_bounded(*args)
  _recreate(bootstrap_servers, topic)
  second = produce_dataset(bootstrap_servers, topic, count=40, keys=20, bad_ratio=0.1, seed=4)

  result = subprocess.run([sys.executable, '-m', 'beam_pipeline', '--bounded', *args, '--offset_reset', 'earliest'],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2 and len(lines) == 1, result.stderr
  assert 'was deleted and created again' in lines[0], lines[0]
  assert read_counters(cassandra_session, keyspace) == expected_counters(first)

  # What the line says to do, done: the new topic is counted from its start.
  forget = re.search(r'\((DELETE FROM .*\))\) and run again', lines[0]).group(1)
  cassandra_session.execute(forget)
  summary = run_bounded(*args, '--offset_reset', 'earliest')
  assert summary.counted == second.valid
  assert read_counters(cassandra_session, keyspace) == add_counters(expected_counters(first),
                                                                    expected_counters(second))
