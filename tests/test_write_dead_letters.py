"""Dead letters published to Kafka, through each client the job reads with (``--kafka_client``): whole, with their
reasons, under their keys; cut to fit the dead-letter topic; and a bundle whose dead letters the topic does not
acknowledge fails, so that nothing moves past them and the next run publishes them."""

import base64
import glob
import hashlib
import json
import random
import time

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.partitioner import DefaultPartitioner

from beam_pipeline.io.dead_letter_record import RECORD_OVERHEAD_BYTES, to_document
from beam_pipeline.io.dead_letters import WriteDeadLetters
from beam_pipeline.launch.run import local_runner
from beam_pipeline.records import DeadLetter, KafkaRecord
from beam_pipeline.testing.datasets import TEST_PARTITIONS, produce_dataset
from beam_pipeline.testing.jobs import job_args, run_bounded
from beam_pipeline.testing.topics import committed_offsets, read_dead_letters, read_topic
from beam_pipeline.tools import produce
from beam_pipeline.tools.produce import INVALID_KINDS

TIMESTAMP_MS = 1486166400000
OVERSIZED = random.Random(43).randbytes(300_000)
# Far below Kafka's default, so that one bundle's dead letters need several batches, each within the limit.
SMALL_TOPIC_LIMIT = 64 * 1024


def _set_topic_configs(bootstrap_servers: str, topic: str, **configs: str) -> None:
  """Sets the topic's configs (each name with dots as underscores) and waits until the brokers report them."""
  wanted = {name.replace('_', '.'): value for name, value in configs.items()}
  admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(','))
  try:
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=wanted)])
    deadline = time.monotonic() + 30
    while True:
      responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
      current = {entry['config_names']: entry['config_value'] for response in responses
                 for resource in response.to_object()['resources'] for entry in resource['config_entries']}
      if all(current.get(name) == value for name, value in wanted.items()):
        return
      assert time.monotonic() < deadline, f'{topic} does not report {wanted} after 30 s: {current}'
      time.sleep(0.2)
  finally:
    admin.close()


def _publish(bootstrap_servers: str, topic: str, letters, kafka_client: str) -> None:
  p = TestPipeline(runner=local_runner())
  _ = (p | beam.Create(letters, reshuffle=False)
       | WriteDeadLetters(bootstrap_servers, topic, kafka_client=kafka_client))
  p.run().wait_until_finish()


def test_the_dead_letters_of_a_run_reach_the_topic_whole_with_their_reasons_on_their_keys_partitions(
    bootstrap_servers, topic, keyspace, cassandra_port, tmp_path, kafka_client):
  expected = produce_dataset(bootstrap_servers, topic, count=2000, keys=100, bad_ratio=0.1, seed=41)

  summary = run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--kafka_client', kafka_client,
                                  '--dead_letter_path', str(tmp_path)))

  records = read_topic(bootstrap_servers, f'{topic}-dlq')
  published = {(letter['partition'], letter['offset']): (record, letter)
               for record, letter in ((record, json.loads(record.value)) for record in records)}
  assert len(records) == len(published) and set(published) == set(expected.invalid_offsets)
  in_files = {(letter['partition'], letter['offset']): letter
              for name in glob.glob(str(tmp_path / 'dead-letters-*.jsonl'))
              for letter in map(json.loads, open(name, encoding='utf-8'))}
  partitions = list(range(TEST_PARTITIONS))
  for position, kind in expected.invalid_offsets.items():
    record, letter = published[position]
    assert letter['stage'] == INVALID_KINDS[kind][0] and letter['reason'] and letter['topic'] == topic, letter
    assert letter == in_files[position]  # the files hold every record whole
    # Keyed by the original key, on the partition Java's producer (and kafka-python's) gives that key.
    assert record.key == letter['key'].encode('utf-8')
    assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
  assert summary.dead_letters_published == summary.dead_lettered_total == len(expected.invalid_offsets)


def test_a_dead_letter_larger_than_its_topic_takes_is_cut_to_fit_and_the_others_are_published_whole(
    bootstrap_servers, topic, kafka_client):
  _set_topic_configs(bootstrap_servers, f'{topic}-dlq', max_message_bytes=str(SMALL_TOPIC_LIMIT))
  oversized = DeadLetter('parse', 'value is not UTF-8 text', KafkaRecord(b'big', OVERSIZED, topic, 0, 40, TIMESTAMP_MS))
  # Together far more than the topic takes in one batch; each one alone fits.
  whole = [DeadLetter('validate', f'site_id: not an integer ({i})',
                      KafkaRecord(b'k%d' % i, b'{"site_id": "%s"}' % (b'x' * 20_000), topic, 1, i, TIMESTAMP_MS))
           for i in range(40)]

  _publish(bootstrap_servers, f'{topic}-dlq', [oversized] + whole, kafka_client)

  records = read_topic(bootstrap_servers, f'{topic}-dlq')
  assert all(len(record.value) + len(record.key) <= SMALL_TOPIC_LIMIT - RECORD_OVERHEAD_BYTES for record in records)
  by_offset = {(letter['partition'], letter['offset']): letter
               for letter in (json.loads(record.value) for record in records)}
  assert len(records) == len(by_offset) == 41
  cut = by_offset[(0, 40)]
  assert cut['payload_truncated'] is True and cut['payload_length'] == len(OVERSIZED)
  assert cut['payload_sha256'] == hashlib.sha256(OVERSIZED).hexdigest()
  prefix = base64.b64decode(cut['payload'])
  assert OVERSIZED.startswith(prefix) and len(prefix) > SMALL_TOPIC_LIMIT // 2  # most of the room holds payload
  assert (cut['stage'], cut['reason'], cut['key']) == ('parse', 'value is not UTF-8 text', 'big')
  assert all(by_offset[(1, letter.source.offset)] == to_document(letter) for letter in whole)


def _unkeyed_where_invalid(messages):
  """The invalid messages without their keys: their dead letters have none either, which a compacted topic
  refuses (a message without a value needs its key, so there are none of those)."""
  for message in messages:
    if message.invalid_kind == 'null_value':
      continue
    yield message._replace(key=None) if message.invalid_kind else message


def test_dead_letters_the_topic_refuses_fail_the_run_and_the_next_run_publishes_them(
    bootstrap_servers, topic, keyspace, cassandra_port, kafka_client):
  messages = _unkeyed_where_invalid(produce.generate(1000, keys=50, bad_ratio=0.05, seed=47))
  expected = produce.produce(bootstrap_servers, topic, messages)
  _set_topic_configs(bootstrap_servers, f'{topic}-dlq', cleanup_policy='compact')
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--kafka_client', kafka_client)

  with pytest.raises(Exception, match=rf"\d+ dead letters were not acknowledged by '{topic}-dlq' \(first: "):
    run_bounded(*args)

  # Nothing moved past them: no offset committed, no dead letter on the topic.
  assert set(committed_offsets(bootstrap_servers, f'{topic}-group', topic).values()) == {None}
  assert read_dead_letters(bootstrap_servers, topic) == []
  _set_topic_configs(bootstrap_servers, f'{topic}-dlq', cleanup_policy='delete')
  rerun = run_bounded(*args)
  published = read_dead_letters(bootstrap_servers, topic)
  assert sorted((letter['partition'], letter['offset']) for letter in published) == sorted(expected.invalid_offsets)
  assert rerun.dead_letters_published == len(expected.invalid_offsets)
