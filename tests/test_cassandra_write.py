"""CassandraCounterWrite on its own, against the real Cassandra."""

import datetime

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, is_empty

from beam_pipeline import metrics
from beam_pipeline.io.cassandra.connection import CassandraConnection
from beam_pipeline.io.cassandra.counter_write import CassandraCounterWrite, _CounterWriteFn
from beam_pipeline.launch.run import local_runner
from beam_pipeline.records import IncrementBatch, KafkaRecord, SiteIncrement
from beam_pipeline.transforms.validate import MAX_COUNT
from tests.helpers import add_counters, read_counters

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
  written = p | beam.Create([IncrementBatch.of(increments)], reshuffle=False) | CassandraCounterWrite(
      CassandraConnection(('127.0.0.1',), cassandra_port), keyspace, 'site_stats', max_concurrent_writes=4)
  assert_that(written.dead_letters, is_empty())
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


def test_running_the_same_increments_twice_adds_them_twice(cassandra_port, cassandra_session, keyspace):
  """Counters are not idempotent: this is why offsets are committed only after the write (and why reconcile
  exists)."""
  for _ in range(2):
    with TestPipeline(runner=local_runner()) as p:
      _ = p | beam.Create([IncrementBatch.of([increment(9, 3, 1, 0)])]) | CassandraCounterWrite(
          CassandraConnection(('127.0.0.1',), cassandra_port), keyspace, 'site_stats')

  assert read_counters(cassandra_session, keyspace) == {(DAY, 9): (6, 2)}


@pytest.mark.parametrize('keyspace_name,table,concurrency,message', [
    ('bad-name', 'site_stats', 4, 'keyspace name'),
    ('ks', 'drop table', 4, 'table name'),
    ('ks', 'site_stats', 0, 'max_concurrent_writes'),
])
def test_bad_arguments_are_refused_when_the_transform_is_built(keyspace_name, table, concurrency, message):
  with pytest.raises(ValueError, match=message):
    CassandraCounterWrite(CassandraConnection(('127.0.0.1',)), keyspace_name, table, concurrency)


def test_a_refused_write_dead_letters_exactly_the_messages_its_sum_holds():
  """A key whose sum would pass the 64-bit limit is written in parts; a refusal of one part names only its own
  messages. (The real table accepts every validated value, so the refusal is handed to the DoFn here.)"""
  write_fn = _CounterWriteFn(CassandraConnection(('127.0.0.1',)), 'ks', 'site_stats', 1, 50)
  write_fn._start_sums()  # pylint: disable=protected-access
  write_fn.process(IncrementBatch.of([increment(1, MAX_COUNT, 0, 0), increment(2, 5, 0, 1),
                                      increment(1, MAX_COUNT, 0, 2)]))
  write_fn.process(IncrementBatch.of([increment(1, 0, 1, 3)]))
  (key, first_part), = write_fn._full  # pylint: disable=protected-access
  second_part = write_fn._pending[DAY][1]  # pylint: disable=protected-access
  assert (key, first_part.messages, second_part.messages) == ((DAY, 1), 1, 2)

  refused = write_fn._refused_sources([(key, second_part, 'refused')])  # pylint: disable=protected-access
  assert [(source.offset, reason) for reason, source in refused] == [
      (2, 'Cassandra refused the increment for (datetime.date(2017, 2, 4), 1): refused'),
      (3, 'Cassandra refused the increment for (datetime.date(2017, 2, 4), 1): refused')]
