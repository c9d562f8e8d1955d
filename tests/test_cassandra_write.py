"""CassandraCounterWrite on its own, against the real Cassandra."""

import datetime
import re

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline

from beam_pipeline import metrics
from beam_pipeline.io.cassandra.connection import CassandraConnection
from beam_pipeline.io.cassandra.counter_write import CassandraCounterWrite
from beam_pipeline.launch.run import local_runner
from beam_pipeline.records import IncrementBatch, KafkaRecord, SiteIncrement
from beam_pipeline.transforms.validate import MAX_SITE_ID
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


def test_a_replay_that_overlaps_what_was_counted_adds_only_the_offsets_not_counted_yet(
    cassandra_port, cassandra_session, keyspace):
  """The writer holds its increments packed until the bundle ends (IncrementBatch.without_messages): offsets in a
  row as a range, others with gaps; counts past 32 bits; site ids up to the contract's cap; several days."""
  def event(offset):
    return increment(site_id=MAX_SITE_ID - offset % 3, views=2**40 + offset, clicks=offset,
                     offset=offset, day=DAY + datetime.timedelta(days=offset % 2))
  first = [event(offset) for offset in range(10)]
  replay = [event(offset) for offset in range(5, 15) if offset != 12]
  for increments in (first, replay):
    with TestPipeline(runner=local_runner()) as p:
      _ = p | beam.Create([IncrementBatch.of(increments)], reshuffle=False) | CassandraCounterWrite(
          CassandraConnection(('127.0.0.1',), cassandra_port), keyspace, 'site_stats')

  once = {inc.source.offset: inc for inc in first + replay}
  assert read_counters(cassandra_session, keyspace) == add_counters(
      *({(inc.date, inc.site_id): (inc.views, inc.clicks)} for inc in once.values()))


def test_a_held_batch_has_the_same_distinct_dates_as_the_batch_it_was_made_from():
  """What an offset claim records as the dates it may change (counter_write_fn._dates_in)."""
  batch = IncrementBatch.of([increment(site_id=offset, views=1, clicks=0, offset=offset,
                                       day=DAY + datetime.timedelta(days=offset % 3)) for offset in range(10)])

  assert batch.distinct_dates() == batch.without_messages().distinct_dates() == {
      DAY, DAY + datetime.timedelta(days=1), DAY + datetime.timedelta(days=2)}


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


def _write(cassandra_port, keyspace, increments, counted_once):
  p = TestPipeline(runner=local_runner())
  _ = p | beam.Create([IncrementBatch.of(increments)], reshuffle=False) | CassandraCounterWrite(
      CassandraConnection(('127.0.0.1',), cassandra_port), keyspace, 'site_stats', counted_once=counted_once)
  p.run().wait_until_finish()


@pytest.mark.parametrize('counted_once', [True, False], ids=['counted_once', 'at_least_once'])
def test_a_write_cassandra_refuses_fails_the_bundle_in_one_line_and_is_not_counted_twice(
    cassandra_port, cassandra_session, keyspace, counted_once):
  """Every value the contract lets through fits the table, so a refusal means the table or the job's permission is
  at fault (a table dropped or altered under the job): the bundle fails, naming the table and the fix, rather than
  dead-lettering good messages. A site_id past the table's int column, which only a caller that skips the contract
  can send, makes Cassandra's driver refuse one of the bundle's two counter batches (one per date)."""
  increments = [increment(1, 4, 1, offset=0, day=DAY + datetime.timedelta(days=1)),
                increment(MAX_SITE_ID + 1, 1, 0, offset=1)]
  refusal = re.escape(f'Cassandra refused 1 of 2 counter writes to {keyspace}.site_stats (first: '
                      f'{(DAY, MAX_SITE_ID + 1)}: ') + '.*the table was dropped or changed'
  with pytest.raises(Exception, match=refusal):
    _write(cassandra_port, keyspace, increments, counted_once)
  # The other batch was applied before the bundle failed.
  assert read_counters(cassandra_session, keyspace) == {(DAY + datetime.timedelta(days=1), 1): (4, 1)}
  if counted_once:
    # The bundle's offsets are uncertain: a rerun of them skips them instead of counting the applied part again.
    _write(cassandra_port, keyspace, increments, counted_once)
    assert read_counters(cassandra_session, keyspace) == {(DAY + datetime.timedelta(days=1), 1): (4, 1)}
