"""Hostile input through the whole job: random bytes, broken and mutated JSON, huge values, deep nesting and
1 MB messages. Nothing crashes, nothing is lost: each message is counted or dead-lettered with a reason."""

import json
import random

import marshmallow
import pytest
from kafka import KafkaProducer

from beam_pipeline.transforms.parse import parse_value
from beam_pipeline.transforms.validate import SiteEventSchema
from beam_pipeline.testing.counters import read_counters
from beam_pipeline.testing.datasets import allow_messages_up_to
from beam_pipeline.testing.jobs import job_args, run_bounded
from beam_pipeline.testing.topics import read_dead_letters

VALID = b'{"date": "2017-02-04", "site_id": 12, "views": 3, "clicks": 1}'


def _hostile_messages(count: int, seed: int):
  rng = random.Random(seed)
  makers = [
      lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64))),      # random bytes
      lambda: VALID[:rng.randrange(len(VALID))],                                     # truncated
      lambda: _mutate(VALID, rng),                                                   # mutated (may stay valid)
      lambda: b'{"date": "2017-02-04", "site_id": 1, "views": ' + b'9' * rng.randrange(19, 6000) + b'}',
      lambda: b'[' * rng.randrange(1000, 50000) + b']' * rng.randrange(0, 10),     # deep nesting
      lambda: b'{"a":' * 5000 + b'1' + b'}' * 5000,
      lambda: b'"' + b'x' * 100 + b'"',
      lambda: json.dumps({'date': '2017-02-04', 'site_id': rng.randrange(-5, 5),
                          'views': rng.choice([1, -1, 1.0, None, '1', True, 2**63])}).encode(),
  ]
  for i in range(count):
    yield makers[i % len(makers)]()
  for _ in range(3):  # 1 MB messages
    yield b'{"date": "2017-02-04", "site_id": 5, "blob": "' + b'z' * (1024 * 1024) + b'"}'
    yield bytes(rng.randrange(256) for _ in range(1024 * 1024))


def _mutate(value: bytes, rng: random.Random) -> bytes:
  data = bytearray(value)
  for _ in range(rng.randrange(1, 4)):
    data[rng.randrange(len(data))] = rng.randrange(256)
  return bytes(data)


def _contract(value: bytes):
  """What the written rules say of a message: its (date, site_id, views, clicks), or None if refused."""
  try:
    event = SiteEventSchema().load(parse_value(value))
  except (ValueError, marshmallow.ValidationError):
    return None
  return event['date'], event['site_id'], event['views'], event['clicks']


# Every kind of hostile message is in both sizes; the full size runs with ./run_tests.sh --slow.
@pytest.mark.parametrize('count', [10000, pytest.param(100000, marks=pytest.mark.slow)], ids=lambda n: f'{n}')
def test_hostile_messages_are_counted_or_dead_lettered_exactly_once(bootstrap_servers, topic, keyspace,
                                                                   cassandra_port, cassandra_session, count):
  allow_messages_up_to(bootstrap_servers, topic, 8 * 1024 * 1024)  # the source takes 1 MB messages
  messages = list(_hostile_messages(count, seed=101))
  producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks='all', max_request_size=8 * 1024 * 1024,
                           linger_ms=20)
  for value in messages:
    producer.send(topic, value=value)
  producer.flush()
  producer.close()
  expected = {}
  valid = 0
  for value in messages:
    event = _contract(value)
    if event is not None:
      valid += 1
      views, clicks = expected.get(event[:2], (0, 0))
      expected[event[:2]] = (views + event[2], clicks + event[3])

  summary = run_bounded(*job_args(bootstrap_servers, topic, keyspace, cassandra_port))

  dead_letters = read_dead_letters(bootstrap_servers, topic)
  assert summary.read == len(messages)
  assert summary.counted == valid
  assert len(dead_letters) == summary.dead_lettered_total == len(messages) - valid
  assert summary.read == summary.counted + summary.dead_lettered_total
  assert all(d['reason'] and d['stage'] in ('parse', 'validate') for d in dead_letters)
  assert len({(d['partition'], d['offset']) for d in dead_letters}) == len(dead_letters)
  # The random megabytes are refused, and published cut short to fit the dead-letter topic (Kafka's default
  # limit); the 1 MB JSON objects are valid events (unknown fields are ignored).
  cut = [d for d in dead_letters if d.get('payload_truncated')]
  assert [d['payload_length'] for d in cut] == [1024 * 1024] * 3
  assert read_counters(cassandra_session, keyspace) == expected
