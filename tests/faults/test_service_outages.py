"""Kafka and Cassandra going away under a streaming job: nothing is lost, and reconcile makes counters exact.

These stop and start the shared local services, so they restore them whatever happens.
"""

import os
import signal
import threading
import time

import pytest

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline

from beam_pipeline import metrics
from beam_pipeline.io.cassandra.connection import READ_PROFILE
from beam_pipeline.io.cassandra.offset_ledger import LEDGER_TABLE, uncertain_dates
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters, without_zeros
from beam_pipeline.testing.datasets import produce_dataset
from beam_pipeline.testing.jobs import (
    job_args, repair_uncertain, run_bounded, start_streaming_job, stop_streaming_job, wait_until_caught_up,
    wait_until_committed)
from beam_pipeline.testing.outages import CASSANDRA_OUTAGE_S, wait_for_session
from beam_pipeline.testing.topics import committed_offsets, end_offsets
from tests.kafka_clients import DEFAULT_CLIENT_THEN_THE_OTHER_IN_THE_SLOW_RUN


def _restart(service):
  service.process.stop()
  time.sleep(3)
  service.start()
  service.process.wait_until_ready(service.is_ready, 240)


@pytest.mark.parametrize('kafka_client', DEFAULT_CLIENT_THEN_THE_OTHER_IN_THE_SLOW_RUN)
def test_the_streaming_job_carries_on_through_a_kafka_broker_restart(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path, services_restored, kafka_client):
  log = tmp_path / 'job.log'
  group = f'{topic}-group'
  before = produce_dataset(bootstrap_servers, topic, count=1500, keys=50, seed=201)
  job = start_streaming_job(job_args(bootstrap_servers, topic, keyspace, cassandra_port,
                                     '--max_bundle_seconds', '1', '--kafka_client', kafka_client), log)
  try:
    wait_until_caught_up(job, cassandra_session, keyspace, expected_counters(before), bootstrap_servers, group,
                         topic, log)
    _restart(services_restored.kafka)
    after = produce_dataset(bootstrap_servers, topic, count=1000, keys=50, seed=202)
    wait_until_caught_up(job, cassandra_session, keyspace,
                         add_counters(expected_counters(before), expected_counters(after)),
                         bootstrap_servers, group, topic, log)
    assert job.poll() is None, 'the job should have carried on'
  finally:
    stop_streaming_job(job)


def test_a_cassandra_outage_fails_the_job_loudly_loses_nothing_and_reconcile_makes_it_exact(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path, services_restored):
  log = tmp_path / 'job.log'
  group = f'{topic}-group'
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_bundle_seconds', '1',
                  '--max_records_per_bundle', '500')
  first = produce_dataset(bootstrap_servers, topic, count=1000, keys=50, seed=211)
  job = start_streaming_job(args, log)
  try:
    wait_until_caught_up(job, cassandra_session, keyspace, expected_counters(first), bootstrap_servers, group,
                         topic, log)
    services_restored.cassandra.process.stop()
    during = produce_dataset(bootstrap_servers, topic, count=1000, keys=50, seed=212)
    time.sleep(CASSANDRA_OUTAGE_S)
    exit_code = job.wait(timeout=120)
  finally:
    if job.poll() is None:
      stop_streaming_job(job)
  output = log.read_text(errors='replace')
  assert exit_code != 0
  assert 'no Cassandra node answered' in output or 'counter writes failed' in output
  assert committed_offsets(bootstrap_servers, group, topic) != end_offsets(bootstrap_servers, topic)

  services_restored.cassandra.start()
  services_restored.cassandra.process.wait_until_ready(services_restored.cassandra.is_ready, 240)
  wait_for_session(cassandra_session)
  everything = add_counters(expected_counters(first), expected_counters(during))
  job = start_streaming_job(args, log)
  try:
    wait_until_committed(job, bootstrap_servers, group, topic, log)
  finally:
    stop_streaming_job(job)
  counted = read_counters(cassandra_session, keyspace)
  # Counted once: exact, or short only by writes the ledger marks uncertain (never resent), which reconcile repairs.
  if uncertain_dates(cassandra_session, keyspace, 'site_stats', READ_PROFILE):
    assert all(counted.get(key, (0, 0))[0] <= views and counted.get(key, (0, 0))[1] <= clicks
               for key, (views, clicks) in everything.items()), 'a message was counted twice'
  else:
    assert without_zeros(counted) == without_zeros(everything)

  run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port), '--sink_mode', 'reconcile',
              '--dates', '2017-02-01..2017-02-28')
  assert read_counters(cassandra_session, keyspace) == everything


def _wait_for_an_open_claim(session, keyspace: str, topic: str, job, log) -> None:
  """Until a writer holds a claim in the offset ledger: it is sending that bundle's counter writes."""
  deadline = time.monotonic() + 120
  while not any(row.claim for row in session.execute(
      f'SELECT claim FROM {keyspace}.{LEDGER_TABLE} WHERE counter_table = %s AND topic = %s AND partition IN '
      '(0, 1, 2, 3)', ('site_stats', topic))):
    assert time.monotonic() < deadline and job.poll() is None, log.read_text(errors='replace')[-3000:]
    time.sleep(0.01)


class _CommitWhileTheBrokerIsFrozen(beam.DoFn):
  """Commits, freezes the broker (SIGSTOP), commits again, and lets the broker go on: the committer as a streaming
  reader's finalization uses it, inside a pipeline so that its metrics are the job's."""

  def __init__(self, config, kafka_pid: int):
    self._config, self._kafka_pid = config, kafka_pid

  def process(self, unused_element):
    from kafka import TopicPartition
    from beam_pipeline.io.kafka.commit import FinalizedOffsetCommitter
    from beam_pipeline.io.kafka.fetch import open_fetcher
    fetcher = open_fetcher(self._config, 'reader')
    try:
      committer = FinalizedOffsetCommitter(fetcher, threading.Lock(), self._config)
      tp = TopicPartition(self._config.topics[0], 0)
      committer.commit(tp, 10)  # the group's coordinator is known from here on
      os.kill(self._kafka_pid, signal.SIGSTOP)
      try:
        committer.commit(tp, 20)
      finally:
        os.kill(self._kafka_pid, signal.SIGCONT)
    finally:
      fetcher.close()
    yield 'given up'


def test_an_offset_commit_gives_up_while_the_broker_does_not_answer_is_counted_and_the_next_one_lands(
    bootstrap_servers, topic, services_restored, kafka_client):
  # kafka-python's commit retries for as long as the group's coordinator does not answer: without a deadline a
  # frozen broker stalled the reader (it holds the reader's client) for good.
  from apache_beam.metrics.metric import MetricsFilter
  from kafka import TopicPartition
  from beam_pipeline.io.kafka.commit import FinalizedOffsetCommitter
  from beam_pipeline.io.kafka.config import KafkaReadConfig
  from beam_pipeline.io.kafka.fetch import open_fetcher
  produce_dataset(bootstrap_servers, topic, count=200, keys=10, seed=221)
  group = f'{topic}-group'
  config = KafkaReadConfig(bootstrap_servers=bootstrap_servers, topics=(topic,), consumer_group=group,
                           kafka_client=kafka_client)
  outcome = {}

  def run():
    pipeline = TestPipeline()
    _ = pipeline | beam.Create([None]) | beam.ParDo(
        _CommitWhileTheBrokerIsFrozen(config, services_restored.kafka.process.pid()))
    outcome['result'] = pipeline.run()
    outcome['result'].wait_until_finish()

  frozen = threading.Thread(target=run, daemon=True)
  frozen.start()
  frozen.join(timeout=90)
  assert not frozen.is_alive(), 'the commit did not give up while the broker was frozen'
  failed = outcome['result'].metrics().query(MetricsFilter().with_name(metrics.OFFSET_COMMITS_FAILED))['counters']
  assert [counter.committed for counter in failed] == [1]

  time.sleep(3)  # the request the frozen broker held may still land when it resumes: before the next one
  fetcher = open_fetcher(config, 'reader')
  try:
    FinalizedOffsetCommitter(fetcher, threading.Lock(), config).commit(TopicPartition(topic, 0), 30)
  finally:
    fetcher.close()
  assert committed_offsets(bootstrap_servers, group, topic)[0] == 30


def test_a_group_members_commit_gives_up_while_the_broker_does_not_answer(
    bootstrap_servers, topic, services_restored, kafka_client):
  # A copy in a consumer group commits through its member; librdkafka's synchronous commit has no deadline of its
  # own, and a frozen broker held the member thread (and with it every rebalance) for as long as it was frozen.
  from beam_pipeline.io.kafka.config import KafkaReadConfig
  from beam_pipeline.io.kafka.group_protocol import join_group
  config = KafkaReadConfig(bootstrap_servers=bootstrap_servers, topics=(topic,), consumer_group=f'{topic}-group',
                           kafka_client=kafka_client)
  assigned, outcome = set(), {}
  member = join_group(config, on_revoked=lambda partitions: None, on_assigned=assigned.update)

  def commit_while_frozen():
    try:
      member.commit({(topic, 0): 20}, 3)
    except Exception as error:  # pylint: disable=broad-except
      outcome['error'] = error

  try:
    deadline = time.monotonic() + 60
    while not assigned:
      assert time.monotonic() < deadline, 'the member was given no partition'
      member.poll(0.5)
    member.commit({(topic, 0): 10}, 10)  # the group's coordinator is known from here on
    frozen = threading.Thread(target=commit_while_frozen, daemon=True)
    kafka_pid = services_restored.kafka.process.pid()
    os.kill(kafka_pid, signal.SIGSTOP)
    try:
      frozen.start()
      frozen.join(timeout=60)
    finally:
      os.kill(kafka_pid, signal.SIGCONT)
    assert not frozen.is_alive(), 'the commit did not give up while the broker was frozen'
    assert 'error' in outcome, 'a commit the frozen broker could not answer was taken as done'
    time.sleep(3)  # the request the frozen broker held may still land when it resumes: before the next one
    member.commit({(topic, 0): 30}, 10)
  finally:
    member.close()
  assert committed_offsets(bootstrap_servers, f'{topic}-group', topic)[0] == 30


def test_a_librdkafka_reader_whose_partition_gets_no_answer_reads_on_through_a_new_consumer_from_where_it_was(
    bootstrap_servers, topic, services_restored, monkeypatch, caplog):
  # After a broker restart librdkafka has left one assigned partition unfetched until its consumer was recreated.
  # A frozen broker gives a partition no answer the same way; the reader then swaps its consumer, and must go on
  # from its own positions: nothing skipped, nothing read twice.
  from kafka import TopicPartition
  from beam_pipeline.io.kafka import fetch_librdkafka
  from beam_pipeline.io.kafka.config import KafkaReadConfig
  from beam_pipeline.io.kafka.fetch import open_fetcher
  monkeypatch.setattr(fetch_librdkafka, 'UNANSWERED_REOPEN_S', 3.0)
  produce_dataset(bootstrap_servers, topic, count=400, keys=10, seed=223)
  ends = end_offsets(bootstrap_servers, topic)
  config = KafkaReadConfig(bootstrap_servers=bootstrap_servers, topics=(topic,),
                           consumer_group=f'{topic}-group', kafka_client='confluent')
  first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
  read = {first: [], second: []}
  fetcher = open_fetcher(config, 'reader')
  try:
    fetcher.assign({first: 0})
    while not read[first]:
      for tp, batch in fetcher.fetch(ends[0] // 2, 1.0).items():
        read[tp] += batch.offsets
    kafka_pid = services_restored.kafka.process.pid()
    os.kill(kafka_pid, signal.SIGSTOP)
    try:
      fetcher.assign({second: 0, first: read[first][-1] + 1})
      frozen_until = time.monotonic() + 2 * fetch_librdkafka.UNANSWERED_REOPEN_S
      while time.monotonic() < frozen_until:
        assert not fetcher.fetch(1000, 0.5)
    finally:
      os.kill(kafka_pid, signal.SIGCONT)
    deadline = time.monotonic() + 60
    while len(read[first]) < ends[0] or len(read[second]) < ends[1]:
      assert time.monotonic() < deadline, {tp: len(offsets) for tp, offsets in read.items()}
      for tp, batch in fetcher.fetch(1000, 0.5).items():
        read[tp] += batch.offsets
  finally:
    fetcher.close()
  assert 'reading through a new librdkafka consumer' in caplog.text
  assert read == {first: list(range(ends[0])), second: list(range(ends[1]))}


def test_writes_whose_outcome_is_unknown_are_left_uncertain_never_resent_and_the_uncertain_repair_makes_it_exact(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path, services_restored):
  expected = produce_dataset(bootstrap_servers, topic, count=40000, keys=20000, bad_ratio=0, seed=213)
  # Slow writes (one UPDATE per request, few in flight) keep a bundle's claim open for seconds; a short request
  # timeout gives the writes up while Cassandra is frozen.
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_records_per_bundle', '10000',
                  '--statements_per_batch', '1', '--max_concurrent_writes', '4', '--cassandra_request_timeout_s', '2')
  log = tmp_path / 'job.log'
  job = start_streaming_job([*args, '--bounded'], log)
  cassandra = services_restored.cassandra.process.pid()
  try:
    _wait_for_an_open_claim(cassandra_session, keyspace, topic, job, log)
    os.kill(cassandra, signal.SIGSTOP)  # frozen, not gone: the writes in flight may still land when it resumes
    time.sleep(3)
  finally:
    os.kill(cassandra, signal.SIGCONT)
  job.wait(timeout=300)
  if job.returncode != 0:  # the mark came too late as well: the next run finds the claim open
    run_bounded(*args)
  wait_for_session(cassandra_session)

  output = log.read_text(errors='replace')
  assert 'have an unknown outcome' in output or job.returncode != 0, output[-3000:]
  uncertain = uncertain_dates(cassandra_session, keyspace, 'site_stats', READ_PROFILE)
  assert uncertain
  counted, exact = read_counters(cassandra_session, keyspace), expected_counters(expected)
  assert all(counted.get(key, (0, 0))[0] <= views and counted.get(key, (0, 0))[1] <= clicks
             for key, (views, clicks) in exact.items()), 'an uncertain write was sent again'

  repair = repair_uncertain(*job_args(bootstrap_servers, topic, keyspace, cassandra_port))
  print(f'unknown outcomes: the first run {"carried on" if job.returncode == 0 else "failed"}; '
        f'{sum(v for v, _ in exact.values()) - sum(v for v, _ in counted.values())} views missing before the repair, '
        f'{repair["reconcile"]["views_corrected"]:+d} views corrected over {len(uncertain)} uncertain dates')

  assert repair['status'] == 'ok' and repair['reconcile']['keys_checked'] > 0
  assert without_zeros(read_counters(cassandra_session, keyspace)) == without_zeros(exact)
