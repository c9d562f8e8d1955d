"""A topic that gains partitions while the streaming job runs: the new partitions are read, from their start."""

import time

import pytest

from kafka import KafkaAdminClient
from kafka.admin import NewPartitions

from beam_pipeline.tools import produce
from beam_pipeline.testing.counters import add_counters, expected_counters
from beam_pipeline.testing.datasets import produce_dataset, TEST_PARTITIONS
from beam_pipeline.testing.jobs import job_args, start_streaming_job, stop_streaming_job, wait_until_caught_up
from tests.kafka_clients import DEFAULT_CLIENT_THEN_THE_OTHER_IN_THE_SLOW_RUN

GROWN_PARTITIONS = TEST_PARTITIONS + 2


@pytest.mark.parametrize('kafka_client', DEFAULT_CLIENT_THEN_THE_OTHER_IN_THE_SLOW_RUN)
def test_partitions_added_while_streaming_are_read_without_a_restart(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path, kafka_client):
  log = tmp_path / 'job.log'
  group = f'{topic}-group'
  before = produce_dataset(bootstrap_servers, topic, count=600, keys=30, seed=301)
  job = start_streaming_job(job_args(bootstrap_servers, topic, keyspace, cassandra_port,
                                     '--max_bundle_seconds', '1', '--partition_headroom', '2',
                                     '--kafka_client', kafka_client), log)
  try:
    wait_until_caught_up(job, cassandra_session, keyspace, expected_counters(before), bootstrap_servers, group,
                         topic, log)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
      admin.create_partitions({topic: NewPartitions(total_count=GROWN_PARTITIONS)})
    finally:
      admin.close()
    time.sleep(1)  # the producer below must see the new partitions in its metadata
    new_partitions = range(TEST_PARTITIONS, GROWN_PARTITIONS)
    in_new = add_counters(*(
        expected_counters(produce.produce(bootstrap_servers, topic, produce.generate(150, keys=20, bad_ratio=0.0,
                                                                                      seed=310 + partition),
                                          partition=partition))
        for partition in new_partitions))
    in_old = produce_dataset(bootstrap_servers, topic, count=300, keys=30, seed=302)

    # wait_until_caught_up also requires the group to have committed every partition, the new ones included.
    want = add_counters(expected_counters(before), in_new, expected_counters(in_old))
    wait_until_caught_up(job, cassandra_session, keyspace, want, bootstrap_servers, group, topic, log)
  finally:
    stop_streaming_job(job)
  assert 'partition 4 exists' in log.read_text() and 'partition 5 exists' in log.read_text()
