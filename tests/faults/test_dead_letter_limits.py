"""A dead letter larger than its topic takes: a 900 kB message that is not UTF-8 among valid events, a dead-letter
topic at Kafka's default max.message.bytes (base64 makes the record 1.2 MB). The job publishes it cut short, with
the original's length and SHA-256, moves past it and counts the rest exactly once, on the local runner and on the
Flink session cluster."""

import base64
import hashlib
import random
import subprocess

from kafka import KafkaConsumer, TopicPartition

from beam_pipeline import REPO_ROOT
from beam_pipeline.runners.flink.rest import cancel_flink_job
from beam_pipeline.io.kafka.admin import KAFKA_DEFAULT_MAX_MESSAGE_BYTES, topic_max_message_bytes
from beam_pipeline.testing.counters import expected_counters, read_counters
from beam_pipeline.testing.jobs import job_args, run_bounded, wait_until_exact_and_committed
from beam_pipeline.testing.topics import read_dead_letters
from beam_pipeline.tools import produce

OVERSIZED = random.Random(29).randbytes(900_000)


def _produce_with_one_oversized_message(bootstrap_servers: str, topic: str) -> produce.ExpectedTotals:
  """2,000 valid events with the oversized one in the middle, all on partition 0 (one bundle holds both)."""
  valid = list(produce.generate(2000, keys=40, bad_ratio=0, seed=31))
  oversized = produce.SyntheticMessage(b'big', OVERSIZED, 'not_utf8', None)
  messages = valid[:1000] + [oversized] + valid[1000:]
  return produce.produce(bootstrap_servers, topic, iter(messages), partition=0)


def _message_at(bootstrap_servers: str, topic: str, partition: int, offset: int) -> bytes:
  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
  try:
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    consumer.seek(tp, offset)
    records = consumer.poll(timeout_ms=10_000, max_records=1)[tp]
    return records[0].value
  finally:
    consumer.close()


def _assert_cut_short_and_traceable(bootstrap_servers: str, topic: str) -> None:
  [letter] = read_dead_letters(bootstrap_servers, topic)
  assert letter['stage'] == 'parse' and letter['payload_truncated'] is True
  assert letter['payload_length'] == len(OVERSIZED)
  assert letter['payload_sha256'] == hashlib.sha256(OVERSIZED).hexdigest()
  assert OVERSIZED.startswith(base64.b64decode(letter['payload']))
  # Where the whole message is: the source topic, partition and offset hold exactly it.
  original = _message_at(bootstrap_servers, letter['topic'], letter['partition'], letter['offset'])
  assert hashlib.sha256(original).hexdigest() == letter['payload_sha256']


def test_a_dead_letter_too_large_for_its_topic_is_published_cut_short_and_the_run_counts_the_rest_once(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  # As on a user's cluster: the dead-letter topic takes what Kafka takes by default.
  assert topic_max_message_bytes(bootstrap_servers, f'{topic}-dlq') == KAFKA_DEFAULT_MAX_MESSAGE_BYTES
  expected = _produce_with_one_oversized_message(bootstrap_servers, topic)
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)

  summary = run_bounded(*args)
  rerun = run_bounded(*args)

  assert (summary.read, summary.counted, summary.dead_lettered_total) == (2001, 2000, 1)
  assert rerun.read == 0
  assert read_counters(cassandra_session, keyspace) == expected_counters(expected)
  _assert_cut_short_and_traceable(bootstrap_servers, topic)


def test_a_streaming_job_on_the_session_cluster_moves_past_a_dead_letter_too_large_for_its_topic(
    flink_cluster, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session):
  assert topic_max_message_bytes(bootstrap_servers, f'{topic}-dlq') == KAFKA_DEFAULT_MAX_MESSAGE_BYTES
  expected = _produce_with_one_oversized_message(bootstrap_servers, topic)
  rest = flink_cluster.job_manager.address

  submitted = subprocess.run(
      [str(REPO_ROOT / 'run_flink.sh'), *job_args(bootstrap_servers, topic, keyspace, cassandra_port),
       '--job_name', topic, '--checkpointing_interval', '2000'],
      capture_output=True, text=True, timeout=300)

  try:
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert wait_until_exact_and_committed(cassandra_session, keyspace, expected_counters(expected), bootstrap_servers,
                                          f'{topic}-group', topic, 180), \
        'the job did not move past the oversized message in 180 s'
  finally:
    cancel_flink_job([rest], topic)
  _assert_cut_short_and_traceable(bootstrap_servers, topic)
