"""Kafka and Cassandra going away under a streaming job: nothing is lost, and reconcile makes counters exact.

These stop and start the shared local services, so they restore them whatever happens.
"""

import time

from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import produce_dataset
from beam_pipeline.testing.jobs import (
    job_args, run_bounded, start_streaming_job, stop_streaming_job, wait_until_caught_up, wait_until_committed)
from beam_pipeline.testing.outages import CASSANDRA_OUTAGE_S, wait_for_session
from beam_pipeline.testing.topics import committed_offsets, end_offsets


def _restart(service):
  service.process.stop()
  time.sleep(3)
  service.start()
  service.process.wait_until_ready(service.is_ready, 240)


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
  assert all(counted.get(key, (0, 0))[0] >= views and counted.get(key, (0, 0))[1] >= clicks
             for key, (views, clicks) in everything.items()), 'a message was lost'

  run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port), '--sink_mode', 'reconcile',
              '--dates', '2017-02-01..2017-02-28')
  assert read_counters(cassandra_session, keyspace) == everything
