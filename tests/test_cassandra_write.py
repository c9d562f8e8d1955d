"""CassandraCounterWrite on its own, against the real Cassandra."""

import datetime
import re

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to, is_empty

from beam_pipeline import metrics
from beam_pipeline.io.cassandra.connection import CassandraConnection
from beam_pipeline.io.cassandra.counter_write import CassandraCounterWrite
from beam_pipeline.launch.run import local_runner
from beam_pipeline.records import IncrementBatch, KafkaRecord, SiteIncrement
from beam_pipeline.transforms.validate import MAX_COUNT, MAX_SITE_ID
from beam_pipeline.testing.counters import add_counters, read_counters

DAY = datetime.date(2017, 2, 4)


def increment(site_id, views, clicks, offset, day=DAY):
  return SiteIncrement(day, site_id, views, clicks, KafkaRecord(None, b'{}', 'events', 0, offset, 0))


def _counter(result, name):
  found = result.metrics().query(MetricsFilter().with_namespace(metrics.NAMESPACE).with_name(name))['counters']
  return sum(c.committed for c in found)


def test_increments_are_summed_per_key_and_written_once_per_key_per_bundle(cassandra_port, cassandra_session, keyspace):
  increments = [increment(site_id=i % 5, views=i, clicks=i % 2, offset=i) for i in range(100)]
  increments.append(increment(site_id=1, views=7, clicks=7, offset=100, day=DAY + datetime.timedelta(days=1)))
  expected = add_counters(*({(inc.date, inc.site_id): (inc.views, inc.clicks)} for inc in increments))

  p = TestPipeline(runner=local_runner())
  _ = p | beam.Create([IncrementBatch.of(increments)], reshuffle=False) | CassandraCounterWrite(
      CassandraConnection(('127.0.0.1',), cassandra_port), keyspace, 'site_stats', max_concurrent_writes=4)
  result = p.run()
  result.wait_until_finish()

  assert read_counters(cassandra_session, keyspace) == expected
  assert _counter(result, metrics.MESSAGES_COUNTED) == len(increments)
  # One bundle here, so exactly one UPDATE per distinct (date, site_id)...
  assert _counter(result, metrics.CASSANDRA_WRITES) == len(expected) == 6
  # ...and the five keys of DAY share one counter batch: two requests in all.
  assert _counter(result, metrics.CASSANDRA_REQUESTS) == 2


def test_small_batches_split_a_partition_into_several_requests(cassandra_port, cassandra_session, keyspace):
  increments = [increment(site_id=i, views=1, clicks=0, offset=i) for i in range(10)]

  p = TestPipeline(runner=local_runner())
  _ = p | beam.Create([IncrementBatch.of(increments)], reshuffle=False) | CassandraCounterWrite(
      CassandraConnection(('127.0.0.1',), cassandra_port), keyspace, 'site_stats', statements_per_batch=3)
  result = p.run()
  result.wait_until_finish()

  assert _counter(result, metrics.CASSANDRA_REQUESTS) == 4  # 3 + 3 + 3 + 1
  assert read_counters(cassandra_session, keyspace) == {(DAY, i): (1, 0) for i in range(10)}


def _write_twice(cassandra_port, keyspace, **options):
  for _ in range(2):
    with TestPipeline(runner=local_runner()) as p:
      _ = p | beam.Create([IncrementBatch.of([increment(9, 3, 1, 0), increment(9, 1, 0, 1)])]) | CassandraCounterWrite(
          CassandraConnection(('127.0.0.1',), cassandra_port), keyspace, 'site_stats', **options)


def test_the_same_offsets_written_twice_are_counted_once(cassandra_port, cassandra_session, keyspace):
  _write_twice(cassandra_port, keyspace)

  assert read_counters(cassandra_session, keyspace) == {(DAY, 9): (4, 1)}


def test_at_least_once_the_same_increments_written_twice_are_added_twice(cassandra_port, cassandra_session, keyspace):
  """Counters are not idempotent: without the offset ledger, only the offset commit after the write (and
  reconcile) stands between a replay and a double count."""
  _write_twice(cassandra_port, keyspace, counted_once=False)

  assert read_counters(cassandra_session, keyspace) == {(DAY, 9): (8, 2)}


@pytest.mark.parametrize('keyspace_name,table,concurrency,message', [
    ('bad-name', 'site_stats', 4, 'keyspace name'),
    ('ks', 'drop table', 4, 'table name'),
    ('ks', 'site_stats', 0, 'max_concurrent_writes'),
])
def test_bad_arguments_are_refused_when_the_transform_is_built(keyspace_name, table, concurrency, message):
  with pytest.raises(ValueError, match=message):
    CassandraCounterWrite(CassandraConnection(('127.0.0.1',)), keyspace_name, table, concurrency)


def _stage_offset_and_refusal(dead_letter):
  """What a refusal's dead letter says: its stage, its message's offset, the key and the column refused."""
  key, _, error = dead_letter.reason.partition(': ')
  return dead_letter.stage, dead_letter.source.offset, key, re.search(r'column "(\w+)"', error).group(1)


def test_a_refused_increment_is_dead_lettered_with_exactly_its_messages(cassandra_port, cassandra_session, keyspace):
  """The counter table's site_id is a CQL int and an increment a bigint: values past them are refused for good
  (CassandraCounterWrite takes any IncrementBatch, not only validated ones). A key whose sum would pass the bigint
  range is written in parts; a refused part names only its own messages, and the other keys are counted."""
  too_big_site, too_many_views = MAX_SITE_ID + 1, MAX_COUNT + 1
  increments = [
      increment(1, 4, 1, offset=0), increment(too_big_site, 1, 0, offset=1), increment(2, 3, 0, offset=2),
      increment(too_big_site, 2, 2, offset=3),
      increment(7, MAX_COUNT - 5, 0, offset=10), increment(7, too_many_views, 0, offset=11),
      increment(7, 3, 1, offset=12)]

  p = TestPipeline(runner=local_runner())
  written = p | beam.Create([IncrementBatch.of(increments)], reshuffle=False) | CassandraCounterWrite(
      CassandraConnection(('127.0.0.1',), cassandra_port), keyspace, 'site_stats')
  refusals = written.dead_letters | beam.Map(_stage_offset_and_refusal)
  assert_that(refusals, equal_to([
      ('write', 1, f'Cassandra refused the increment for {(DAY, too_big_site)}', 'site_id'),
      ('write', 3, f'Cassandra refused the increment for {(DAY, too_big_site)}', 'site_id'),
      ('write', 11, f'Cassandra refused the increment for {(DAY, 7)}', 'views')]), label='RefusedMessages')
  assert_that(written.written, is_empty(), label='NothingOnTheMainOutput')
  result = p.run()
  result.wait_until_finish()

  assert read_counters(cassandra_session, keyspace) == {(DAY, 1): (4, 1), (DAY, 2): (3, 0),
                                                        (DAY, 7): (MAX_COUNT - 2, 1)}
  assert _counter(result, metrics.dead_lettered('write')) == 3
  assert _counter(result, metrics.MESSAGES_COUNTED) == len(increments) - 3
