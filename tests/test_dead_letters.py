"""The dead-letter record: everything needed to find, understand and replay a refused message."""

import base64
import json

from beam_pipeline.io.dead_letters import to_document, to_json
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
