"""Deterministic synthetic load: valid events and every kind of invalid message, with the expected totals.

    python -m beam_pipeline.tools.produce --bootstrap_servers 127.0.0.1:9092 --topic T --count 100000 \\
        [--keys 10000] [--bad_ratio 0.01] [--seed 7] [--partitions 4] [--totals_file totals.json] [--rate N] \\
        [--compression_type lz4] [--kafka_security_protocol SASL_SSL --kafka_sasl_mechanism ... (as the job's)]

Prints one JSON object: how many messages, how many valid, how many invalid per stage, and the sums of views
and clicks that the counters must reach. The same arguments always produce the same messages.
"""

import argparse
import collections
import dataclasses
import datetime
import json
import logging
import random
import sys
import time
from typing import Dict, Iterator, NamedTuple, Optional, Tuple

from beam_pipeline.io.security import KafkaSecurity, add_kafka_security_arguments, kafka_security_from

_LOGGER = logging.getLogger(__name__)

# kafka-python's producer codecs: the ones a topic's readers must be able to decompress.
COMPRESSION_TYPES = ('none', 'gzip', 'snappy', 'lz4', 'zstd')

BASE_DATE = datetime.date(2017, 2, 1)
DAYS = 28

# Each invalid kind, the stage that must refuse it, and how to build it from a random generator.
INVALID_KINDS = {
    'not_utf8': ('parse', lambda r: b'\xff\xfe{"date": "2017-02-04"}'),
    'truncated_json': ('parse', lambda r: b'{"date": "2017-02-04", "site_id": 1'),
    'json_array': ('parse', lambda r: b'[{"date": "2017-02-04", "site_id": 1}]'),
    'json_string': ('parse', lambda r: b'"2017-02-04"'),
    'empty_value': ('parse', lambda r: b''),
    'null_value': ('parse', lambda r: None),
    'nan_number': ('parse', lambda r: b'{"date": "2017-02-04", "site_id": 1, "views": NaN}'),
    'missing_date': ('validate', lambda r: b'{"site_id": 1, "views": 1}'),
    'missing_site_id': ('validate', lambda r: b'{"date": "2017-02-04", "views": 1}'),
    'impossible_date': ('validate', lambda r: b'{"date": "2017-02-30", "site_id": 1}'),
    'unpadded_date': ('validate', lambda r: b'{"date": "2017-2-4", "site_id": 1}'),
    'datetime_not_date': ('validate', lambda r: b'{"date": "2017-02-04T00:00", "site_id": 1}'),
    'numeric_date': ('validate', lambda r: b'{"date": 20170204, "site_id": 1}'),
    'site_id_string': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": "3491"}'),
    'site_id_negative': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": -1}'),
    'site_id_too_big': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": 2147483648}'),
    'views_float': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": 1, "views": 1.5}'),
    'views_exponent': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": 1, "views": 1e3}'),
    'views_null': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": 1, "views": null}'),
    'views_bool': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": 1, "views": true}'),
    'views_string': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": 1, "views": "10"}'),
    'clicks_negative': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": 1, "clicks": -3}'),
    'views_too_big': ('validate', lambda r: b'{"date": "2017-02-04", "site_id": 1, "views": 9223372036854775808}'),
}


class SyntheticMessage(NamedTuple):
  key: bytes
  value: Optional[bytes]
  invalid_kind: Optional[str]  # None for a valid event
  increment: Optional[Tuple[datetime.date, int, int, int]]  # (date, site_id, views, clicks) when valid


@dataclasses.dataclass
class ExpectedTotals:
  messages: int = 0
  valid: int = 0
  invalid_by_stage: Dict[str, int] = dataclasses.field(default_factory=lambda: collections.Counter())
  invalid_by_kind: Dict[str, int] = dataclasses.field(default_factory=lambda: collections.Counter())
  views: int = 0
  clicks: int = 0
  per_key: Dict[Tuple[datetime.date, int], list] = dataclasses.field(default_factory=dict)
  # (partition, offset) -> invalid kind, filled in as the broker acknowledges each invalid message
  invalid_offsets: Dict[Tuple[int, int], str] = dataclasses.field(default_factory=dict)

  def add(self, message: SyntheticMessage) -> None:
    self.messages += 1
    if message.increment is None:
      self.invalid_by_stage[INVALID_KINDS[message.invalid_kind][0]] += 1
      self.invalid_by_kind[message.invalid_kind] += 1
      return
    day, site_id, views, clicks = message.increment
    self.valid += 1
    self.views += views
    self.clicks += clicks
    totals = self.per_key.setdefault((day, site_id), [0, 0])
    totals[0] += views
    totals[1] += clicks

  def summary(self) -> dict:
    return {
        'messages': self.messages, 'valid': self.valid, 'invalid': self.messages - self.valid,
        'invalid_by_stage': dict(sorted(self.invalid_by_stage.items())),
        'invalid_by_kind': dict(sorted(self.invalid_by_kind.items())),
        'views': self.views, 'clicks': self.clicks, 'keys': len(self.per_key)}


def key_for(index: int) -> Tuple[datetime.date, int]:
  """The index-th distinct (date, site_id): dates cycle through February 2017, site ids grow."""
  return BASE_DATE + datetime.timedelta(days=index % DAYS), 1000 + index // DAYS


def generate(count: int, keys: int = 10000, bad_ratio: float = 0.01, seed: int = 7) -> Iterator[SyntheticMessage]:
  if count < 0 or keys < 1 or not 0 <= bad_ratio <= 1:
    raise ValueError('count >= 0, keys >= 1 and 0 <= bad_ratio <= 1 are required')
  rng = random.Random(seed)
  kinds = sorted(INVALID_KINDS)
  # Every kind shows up once before any repeats, so small datasets still cover them all.
  next_kind = 0
  for _ in range(count):
    if rng.random() < bad_ratio:
      kind = kinds[next_kind % len(kinds)]
      next_kind += 1
      yield SyntheticMessage(str(rng.randrange(keys)).encode(), INVALID_KINDS[kind][1](rng), kind, None)
      continue
    day, site_id = key_for(rng.randrange(keys))
    views = rng.randrange(0, 100)
    clicks = rng.randrange(0, views + 1)
    shape = rng.randrange(10)
    if shape == 0:  # absent counts mean zero
      value = f'{{"site_id": {site_id}, "date": "{day.isoformat()}"}}'
      views = clicks = 0
    elif shape == 1:  # unknown fields are ignored
      value = (f'{{"date": "{day.isoformat()}", "site_id": {site_id}, "views": {views}, "clicks": {clicks}, '
               f'"referrer": "https://example.org/{rng.randrange(1000)}", "tags": [1, 2]}}')
    else:
      value = f'{{"date": "{day.isoformat()}", "site_id": {site_id}, "views": {views}, "clicks": {clicks}}}'
    yield SyntheticMessage(str(site_id).encode(), value.encode(), None, (day, site_id, views, clicks))


def produce(bootstrap_servers: str, topic: str, messages: Iterator[SyntheticMessage],
            security: KafkaSecurity = KafkaSecurity(), messages_per_s: Optional[float] = None,
            partition: Optional[int] = None, compression_type: str = 'none') -> ExpectedTotals:
  """Sends every message (acks=all) and returns what the counters must add up to.

  Messages go to the partition their key hashes to, or all to ``partition`` when given; batches are compressed
  with ``compression_type`` (one of COMPRESSION_TYPES).

  With ``messages_per_s`` the messages are paced to that steady rate (a load generator); without, as fast as
  the producer goes.
  """
  from kafka import KafkaProducer
  producer = KafkaProducer(bootstrap_servers=bootstrap_servers.split(','), acks='all', linger_ms=20,
                           batch_size=512 * 1024,
                           # kafka-python says "no compression" with None, Kafka's own clients with 'none'.
                           compression_type=None if compression_type == 'none' else compression_type,
                           max_request_size=16 * 1024 * 1024, **security.client_config())
  expected = ExpectedTotals()
  failures = []
  started = time.monotonic()
  try:
    for message in messages:
      if messages_per_s and expected.messages % 1000 == 0:
        ahead_s = expected.messages / messages_per_s - (time.monotonic() - started)
        if ahead_s > 0:
          time.sleep(ahead_s)
      expected.add(message)
      future = producer.send(topic, key=message.key, value=message.value, partition=partition).add_errback(
          failures.append)
      if message.invalid_kind is not None:
        future.add_callback(_remember_invalid, expected.invalid_offsets, message.invalid_kind)
    producer.flush()
  finally:
    producer.close()
  if failures:
    raise RuntimeError(f'{len(failures)} messages were not acknowledged by {topic!r}: {failures[0]!r}')
  return expected


def _remember_invalid(invalid_offsets, kind, metadata):
  invalid_offsets[(metadata.partition, metadata.offset)] = kind


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='python -m beam_pipeline.tools.produce', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--bootstrap_servers', default='localhost:9092')
  parser.add_argument('--topic', required=True)
  parser.add_argument('--count', type=int, required=True, help='how many messages')
  parser.add_argument('--keys', type=int, default=10000, help='distinct (date, site_id) keys')
  parser.add_argument('--bad_ratio', type=float, default=0.01, help='share of invalid messages, 0..1')
  parser.add_argument('--seed', type=int, default=7)
  parser.add_argument('--partitions', type=int, default=None,
                      help='create the topic and its -dlq topic with this many partitions if missing')
  parser.add_argument('--totals_file', help='also write the expected per-key totals here as JSON')
  parser.add_argument('--rate', type=float, help='send at this steady rate (messages per second) instead of '
                                                  'as fast as possible')
  parser.add_argument('--compression_type', default='none', choices=COMPRESSION_TYPES,
                      help='compress the record batches with this codec')
  add_kafka_security_arguments(parser.add_argument_group('Kafka security (as the job\'s)'))
  args = parser.parse_args(argv)
  if args.count < 0 or args.keys < 1 or not 0 <= args.bad_ratio <= 1 or (args.rate is not None and args.rate <= 0):
    parser.error('--count must be >= 0, --keys >= 1, --bad_ratio between 0 and 1 and --rate positive')
  try:
    security = kafka_security_from(args)
    security.check()
    security.client_config()  # reads the password: one that cannot be read is refused here, as a setting
  except ValueError as error:
    parser.error(str(error))
  logging.basicConfig(level=logging.INFO, format='%(message)s')
  logging.getLogger('kafka').setLevel(logging.WARNING)
  if args.partitions:
    from beam_pipeline.io.kafka.admin import ensure_topics
    ensure_topics(args.bootstrap_servers, [args.topic, f'{args.topic}-dlq'], args.partitions, security=security)
  started = time.monotonic()
  expected = produce(args.bootstrap_servers, args.topic, generate(args.count, args.keys, args.bad_ratio, args.seed),
                     security, messages_per_s=args.rate, compression_type=args.compression_type)
  elapsed = time.monotonic() - started
  _LOGGER.info('produced %d messages to %s in %.1fs (%.0f msgs/s)', expected.messages, args.topic, elapsed,
               expected.messages / elapsed if elapsed else 0)
  if args.totals_file:
    with open(args.totals_file, 'w') as out:
      json.dump([{'date': d.isoformat(), 'site_id': s, 'views': v, 'clicks': c}
                 for (d, s), (v, c) in sorted(expected.per_key.items())], out)
  print(json.dumps(expected.summary(), sort_keys=True))
  return 0


if __name__ == '__main__':
  sys.exit(main())
