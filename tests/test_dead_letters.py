"""The dead-letter record: everything needed to find, understand and replay a refused message."""

import base64
import hashlib
import json
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from beam_pipeline.io.dead_letters import WriteDeadLetters
from beam_pipeline.io.dead_letter_record import DeadLetterTooLarge, fitted_json, to_document, to_json
from beam_pipeline.records import DeadLetter, KafkaRecord


def test_a_text_payload_stays_text_with_its_origin():
  letter = DeadLetter('validate', 'site_id: Missing data for required field.',
                      KafkaRecord(b'42', b'{"date": "2017-02-04"}', 'events', 3, 1234, 1486166400000))

  assert json.loads(to_json(letter)) == {
      'stage': 'validate', 'reason': 'site_id: Missing data for required field.',
      'payload': '{"date": "2017-02-04"}', 'key': '42', 'topic': 'events', 'partition': 3, 'offset': 1234,
      'timestamp': 1486166400000}


def test_bytes_that_are_not_utf8_are_kept_as_base64():
  raw = b'\xff\x00\xfe'
  document = to_document(DeadLetter('parse', 'value is not UTF-8 text', KafkaRecord(raw, raw, 'events', 0, 1, 2)))

  assert document['payload_encoding'] == 'base64' and base64.b64decode(document['payload']) == raw
  assert document['key_encoding'] == 'base64' and base64.b64decode(document['key']) == raw


def test_a_tombstone_has_a_null_payload():
  document = to_document(DeadLetter('parse', 'message has no value', KafkaRecord(None, None, 'events', 0, 1, 2)))

  assert document['payload'] is None and 'payload_encoding' not in document


def _cut_document(value: bytes, max_bytes: int, key: bytes = b'k', reason: str = 'not JSON') -> dict:
  encoded = fitted_json(DeadLetter('parse', reason, KafkaRecord(key, value, 'events', 2, 77, 5)), max_bytes)
  assert len(encoded) <= max_bytes
  return json.loads(encoded)


def test_a_record_that_fits_is_not_cut():
  letter = DeadLetter('parse', 'not JSON', KafkaRecord(b'k', b'x' * 1000, 'events', 0, 1, 2))

  assert fitted_json(letter, 2000) == to_json(letter).encode('utf-8')


def test_a_binary_payload_too_large_is_cut_with_its_length_hash_and_origin():
  raw = random.Random(3).randbytes(300_000)

  document = _cut_document(raw, 100_000)

  prefix = base64.b64decode(document['payload'])
  assert document['payload_truncated'] is True and document['payload_encoding'] == 'base64'
  assert document['payload_length'] == len(raw)
  assert document['payload_sha256'] == hashlib.sha256(raw).hexdigest()
  assert raw.startswith(prefix) and len(prefix) > 70_000  # most of the room holds payload
  assert (document['topic'], document['partition'], document['offset']) == ('events', 2, 77)
  assert 'key_truncated' not in document and document['reason'] == 'not JSON'


@pytest.mark.parametrize('text', ['"' * 200_000, '\x01' * 200_000, 'é' * 200_000, 'ab"\\\n' * 40_000],
                         ids=['quotes', 'control characters', 'two-byte characters', 'mixed escapes'])
def test_a_text_payload_is_cut_to_a_text_prefix_whatever_its_json_escaping_costs(text):
  raw = text.encode('utf-8')

  document = _cut_document(raw, 50_000)

  assert 'payload_encoding' not in document and document['payload_truncated'] is True
  assert raw.startswith(document['payload'].encode('utf-8')) and document['payload']
  assert document['payload_length'] == len(raw) and document['payload_sha256'] == hashlib.sha256(raw).hexdigest()


def test_a_large_key_is_cut_after_the_payload():
  document = _cut_document(b'p' * 10_000, 5_000, key=b'q' * 20_000)

  assert document['payload'] == '' and document['payload_truncated'] is True
  assert document['key_truncated'] is True and document['key_length'] == 20_000 and document['key']


def test_a_limit_too_small_for_the_origin_alone_is_refused():
  with pytest.raises(DeadLetterTooLarge, match='events.2. at offset 77'):
    _cut_document(b'p' * 1000, 100)


def test_a_bundle_of_dead_letters_written_again_leaves_one_whole_file(tmp_path):
  letters = [DeadLetter('parse', 'not JSON', KafkaRecord(b'k', b'x%d' % i, 'events', i % 2, i, 1486166400000 + i))
             for i in range(5)]

  for _ in range(2):  # a bundle retried with the same messages
    with TestPipeline() as p:
      _ = p | beam.Create(letters, reshuffle=False) | WriteDeadLetters('unused:9092', None, str(tmp_path))

  files = list(tmp_path.iterdir())  # no temporary file left either
  assert len(files) == 1 and files[0].name.startswith('dead-letters-20170204T000000Z-')
  assert sorted(files[0].read_text().splitlines()) == sorted(to_json(letter) for letter in letters)


@pytest.mark.parametrize('arguments, message', [
    (dict(topic=None), 'needs a topic, a directory or both'),
    (dict(topic='events-dlq', kafka_client='librdkafka'), "one of kafka-python, confluent, not 'librdkafka'"),
], ids=['nowhere to write', 'unknown client'])
def test_bad_arguments_are_refused_when_the_transform_is_built(arguments, message):
  with pytest.raises(ValueError, match=message):
    WriteDeadLetters('localhost:9092', **arguments)
