"""Increments the counter write refuses reach the dead-letter topic, and the run's summary counts what was published.

Every increment that passes the data contract fits the counter table (and Cassandra wraps a counter that passes
its 64-bit range instead of refusing the write), so the job's own graph never has the write refuse anything. This
run reads, parses, writes and publishes dead letters with the job's own stages on the real Kafka and Cassandra,
with a conversion to increments that keeps the contract's checks out, so values past the table's columns reach
the write.
"""

import datetime
import json
import time

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from kafka import KafkaProducer

from beam_pipeline.io.cassandra.connection import CassandraConnection
from beam_pipeline.io.cassandra.counter_write import CassandraCounterWrite
from beam_pipeline.io.dead_letters import WriteDeadLetters
from beam_pipeline.io.kafka.config import KafkaReadConfig
from beam_pipeline.io.kafka.read import ReadFromKafka
from beam_pipeline.launch.run import local_runner
from beam_pipeline.launch.summary import summarize
from beam_pipeline.records import IncrementBatch, ParsedBatch
from beam_pipeline.testing.counters import read_counters
from beam_pipeline.testing.topics import read_dead_letters
from beam_pipeline.transforms.parse import ParseJson
from beam_pipeline.transforms.validate import MAX_SITE_ID

DAY = datetime.date(2017, 2, 4)


def _increments_without_contract(parsed: ParsedBatch) -> IncrementBatch:
  documents = parsed.documents
  return IncrementBatch(parsed.records, parsed.positions, [datetime.date.fromisoformat(d['date']) for d in documents],
                        [d['site_id'] for d in documents], [d['views'] for d in documents],
                        [d['clicks'] for d in documents])


def _produce(bootstrap_servers: str, topic: str, documents) -> None:
  producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks='all')
  for document in documents:
    producer.send(topic, json.dumps(document).encode('utf-8'), partition=0)
  producer.flush()
  producer.close()


def test_refused_increments_are_published_to_the_dead_letter_topic(bootstrap_servers, topic, cassandra_port,
                                                                      cassandra_session, keyspace):
  past_int_column = MAX_SITE_ID + 1
  documents = [{'date': DAY.isoformat(), 'site_id': site_id, 'views': views, 'clicks': 1}
               for site_id, views in [(1, 3), (past_int_column, 5), (2, 4), (1, 2), (past_int_column, 7)]]
  _produce(bootstrap_servers, topic, documents)

  p = TestPipeline(runner=local_runner())
  read = p | 'ReadFromKafka' >> ReadFromKafka(KafkaReadConfig(bootstrap_servers, topic, None, bounded=True))
  parsed = read.records | 'ParseJson' >> ParseJson()
  increments = parsed.parsed | 'ToIncrements' >> beam.Map(_increments_without_contract)
  written = increments | 'CassandraCounterWrite' >> CassandraCounterWrite(
      CassandraConnection(('127.0.0.1',), cassandra_port), keyspace, 'site_stats')
  _ = {'CassandraCounterWrite': written.dead_letters} | 'WriteDeadLetters' >> WriteDeadLetters(
      bootstrap_servers, f'{topic}-dlq')
  started = time.monotonic()
  result = p.run()
  result.wait_until_finish()
  summary = summarize(result, time.monotonic() - started)

  published = read_dead_letters(bootstrap_servers, topic)
  assert sorted((letter['stage'], letter['offset'], json.loads(letter['payload'])['site_id'])
                for letter in published) == [('write', 1, past_int_column), ('write', 4, past_int_column)]
  assert all(letter['reason'].startswith(f'Cassandra refused the increment for {(DAY, past_int_column)}: ')
             and 'column "site_id"' in letter['reason'] for letter in published)
  assert summary.dead_lettered == {'write': 2}
  assert summary.dead_letters_published == summary.dead_lettered_total == 2
  assert summary.counted == 3
  assert read_counters(cassandra_session, keyspace) == {(DAY, 1): (5, 2), (DAY, 2): (4, 1)}
