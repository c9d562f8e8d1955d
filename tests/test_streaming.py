"""The streaming job as users run it: a process that reads while messages arrive, stopped and restarted."""

import threading
import time

import pytest

from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import produce_dataset
from beam_pipeline.testing.jobs import (
    job_args, rss_mb, start_streaming_job, stop_streaming_job, wait_until_caught_up)
from beam_pipeline.testing.topics import committed_offsets, read_dead_letters

# What the job's memory may grow by over the case below: the garbage of 20,000 requests is about 50 MB.
ONE_STATEMENT_REQUESTS_GROWTH_BOUND_MB = 100


def test_streaming_counts_while_producing_and_resumes_after_restart_without_double_counting(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path, kafka_client):
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_bundle_seconds', '1',
                  '--kafka_client', kafka_client)
  group = f'{topic}-group'
  log_path = tmp_path / 'job.log'
  first = produce_dataset(bootstrap_servers, topic, count=800, keys=40, seed=51)

  job = start_streaming_job(args, log_path)
  try:
    deadline = time.monotonic() + 60
    while not read_counters(cassandra_session, keyspace):  # more is produced once the job is counting
      assert time.monotonic() < deadline and job.poll() is None, log_path.read_text(errors='replace')[-3000:]
      time.sleep(0.2)
    while_running = produce_dataset(bootstrap_servers, topic, count=600, keys=40, seed=52)
    so_far = add_counters(expected_counters(first), expected_counters(while_running))
    wait_until_caught_up(job, cassandra_session, keyspace, so_far, bootstrap_servers, group, topic, log_path)
    # Refused messages are published while the job runs, not when it ends.
    want_dead = set(first.invalid_offsets) | set(while_running.invalid_offsets)
    deadline = time.monotonic() + 30
    while {(d['partition'], d['offset']) for d in read_dead_letters(bootstrap_servers, topic)} != want_dead:
      assert time.monotonic() < deadline, 'the running job did not publish its dead letters'
      time.sleep(1)
  finally:
    stop_streaming_job(job)

  while_stopped = produce_dataset(bootstrap_servers, topic, count=500, keys=40, seed=53)
  so_far = add_counters(so_far, expected_counters(while_stopped))

  job = start_streaming_job(args, log_path)
  try:
    wait_until_caught_up(job, cassandra_session, keyspace, so_far, bootstrap_servers, group, topic, log_path)
  finally:
    stop_streaming_job(job)
  # Stopped, it writes nothing more: anything counted twice shows now.
  assert read_counters(cassandra_session, keyspace) == so_far


def test_a_commit_from_an_older_bundle_finalized_after_a_newer_one_does_not_move_the_group_back(
    bootstrap_servers, topic, kafka_client):
  # Flink finalizes every bundle of a checkpoint at once, and the SDK worker runs the callbacks on concurrent
  # threads, each with its own reader instance: the older bundle's commit may come second.
  from kafka import TopicPartition
  from beam_pipeline.io.kafka.commit import FinalizedOffsetCommitter
  from beam_pipeline.io.kafka.config import KafkaReadConfig
  from beam_pipeline.io.kafka.fetch import open_fetcher
  produce_dataset(bootstrap_servers, topic, count=400, keys=10, seed=31)
  group, tp = f'{topic}-group', TopicPartition(topic, 0)
  config = KafkaReadConfig(bootstrap_servers=bootstrap_servers, topics=(topic,), consumer_group=group,
                           kafka_client=kafka_client)
  newer_bundles, older_bundles = open_fetcher(config, 'reader'), open_fetcher(config, 'reader')
  try:
    FinalizedOffsetCommitter(newer_bundles, threading.Lock(), config).commit(tp, 60)
    FinalizedOffsetCommitter(older_bundles, threading.Lock(), config).commit(tp, 40)
  finally:
    newer_bundles.close()
    older_bundles.close()
  assert committed_offsets(bootstrap_servers, group, topic)[0] == 60


def test_a_later_run_in_the_same_process_commits_from_where_the_group_was_reset_to(
    bootstrap_servers, topic, kafka_client):
  # Beam reuses worker processes across jobs: what one job committed must not hold back the next job's commits
  # after the group was moved back (a reset to re-read a range).
  from kafka import TopicPartition
  from beam_pipeline.io.kafka.commit import FinalizedOffsetCommitter
  from beam_pipeline.io.kafka.config import KafkaReadConfig
  from beam_pipeline.io.kafka.fetch import open_fetcher
  produce_dataset(bootstrap_servers, topic, count=400, keys=10, seed=37)
  group, tp = f'{topic}-group', TopicPartition(topic, 0)
  runs = [KafkaReadConfig(bootstrap_servers=bootstrap_servers, topics=(topic,), consumer_group=group,
                          kafka_client=kafka_client) for _ in range(2)]
  first_run, second_run = (open_fetcher(config, 'reader') for config in runs)
  try:
    FinalizedOffsetCommitter(first_run, threading.Lock(), runs[0]).commit(tp, 300)
    first_run.commit(tp, 0, 10)  # the group reset to the start
    committer = FinalizedOffsetCommitter(second_run, threading.Lock(), runs[1])
    committer.commit(tp, 100)
    assert committed_offsets(bootstrap_servers, group, topic)[0] == 100
    assert committer.committed_offset(tp) == 100
  finally:
    first_run.close()
    second_run.close()


@pytest.mark.slow
def test_a_job_that_sends_one_statement_per_request_keeps_its_memory_flat_and_counts_exactly(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  # Each request leaves garbage in reference cycles inside the Cassandra driver, and the reader makes collections
  # rare: a job sending many small requests grew by some 2.5 kB per request until a full collection came, which
  # may take a few hundred thousand requests (fewer do not tell the two apart).
  log, group = tmp_path / 'job.log', f'{topic}-group'
  first = produce_dataset(bootstrap_servers, topic, count=20000, keys=10000, bad_ratio=0, seed=231)
  job = start_streaming_job(job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--statements_per_batch', '1',
                                     '--max_records_per_bundle', '5000'), log)
  peak, sampling = [0.0], threading.Event()

  def sample():
    while not sampling.wait(0.5):
      peak[0] = max(peak[0], rss_mb(job.pid))

  try:
    wait_until_caught_up(job, cassandra_session, keyspace, expected_counters(first), bootstrap_servers, group, topic,
                         log)
    settled = rss_mb(job.pid)  # started, and through its first bundles of requests
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    more = produce_dataset(bootstrap_servers, topic, count=600000, keys=10000, bad_ratio=0, seed=232)
    wait_until_caught_up(job, cassandra_session, keyspace,
                         add_counters(expected_counters(first), expected_counters(more)), bootstrap_servers, group,
                         topic, log, timeout_s=600)
    sampling.set()
    sampler.join()
  finally:
    sampling.set()
    stop_streaming_job(job)
  # 600,000 messages over 10,000 keys in bundles of 5,000 are some 470,000 requests.
  assert peak[0] - settled < ONE_STATEMENT_REQUESTS_GROWTH_BOUND_MB, (settled, peak[0])
