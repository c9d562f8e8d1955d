"""CassandraCounterWrite: adds each bundle's increments to the counter table.

Within a bundle, increments are summed per (date, site_id) and each key gets one UPDATE from a prepared
statement; the UPDATEs of one date (one partition) travel together as counter batches of up to
``statements_per_batch``, at most ``max_concurrent_writes`` requests in flight. The session lives exactly as
long as the bundle: it is opened in ``start_bundle`` and closed in ``finish_bundle`` once every write has been
acknowledged, so a bundle the runner commits is a bundle Cassandra holds.

Counter UPDATEs are not idempotent. A write whose outcome is unknown (timeout, connection lost) is never
retried here: the bundle fails, the runner retries it (at-least-once), and the offsets it covered are logged
so an operator knows what may be counted twice.
"""

import datetime
import logging
import time
from typing import Dict, List, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.timestamp import Timestamp

from beam_pipeline import metrics
from beam_pipeline.io.cassandra.connection import CassandraConnection, SessionPerBundleFn
from beam_pipeline.records import DeadLetter, IncrementBatch, KafkaRecord
from beam_pipeline.io.cassandra.schema import check_identifier, increment_cql, schema_command
from beam_pipeline.transforms.validate import MAX_COUNT
from beam_pipeline.errors import CassandraWriteError

_LOGGER = logging.getLogger(__name__)

STAGE = 'write'
# Keys of one date share a partition, so their UPDATEs travel as one counter batch (one request, one
# mutation); 50 keeps a batch near Cassandra's default 5 KiB batch_size_warn_threshold.
DEFAULT_STATEMENTS_PER_BATCH = 50
DEFAULT_MAX_CONCURRENT_WRITES = 64
_PROGRESS_LOG_INTERVAL_S = 30.0


def _counter_retry_policy():
  from cassandra.policies import RetryPolicy

  class CounterRetryPolicy(RetryPolicy):
    """Retries only what certainly was not applied: a counter write that may have landed is never resent."""

    def on_unavailable(self, query, consistency, required_replicas, alive_replicas, retry_num):
      # Unavailable is answered before the write is attempted, so another coordinator may try it once.
      return (self.RETRY_NEXT_HOST, None) if retry_num == 0 else (self.RETHROW, None)

    def on_write_timeout(self, *args, **kwargs):
      return self.RETHROW, None

    def on_read_timeout(self, *args, **kwargs):
      return self.RETHROW, None

    def on_request_error(self, *args, **kwargs):
      return self.RETHROW, None

  return CounterRetryPolicy()


def _is_refusal(error) -> bool:
  """Cassandra or the driver refused the values for good (as opposed to a failure that may have applied them)."""
  from cassandra import InvalidRequest
  return isinstance(error, (InvalidRequest, TypeError, ValueError, OverflowError))


class _PendingKey:
  """The sum of some of one key's increments in this bundle: how many messages, counted from which one of the
  key's messages in the bundle (a key whose sum would pass the 64-bit limit is written in several parts)."""
  __slots__ = ('views', 'clicks', 'messages', 'first_message')

  def __init__(self, first_message: int = 0):
    self.views = 0
    self.clicks = 0
    self.messages = 0
    self.first_message = first_message


class _CounterWriteFn(SessionPerBundleFn):
  DEAD_LETTERS = 'dead_letters'

  def __init__(self, connection: CassandraConnection, keyspace: str, table: str, max_concurrent_writes: int,
               statements_per_batch: int):
    super().__init__(connection)
    self._keyspace = keyspace
    self._table = table
    self._max_concurrent_writes = max_concurrent_writes
    self._statements_per_batch = statements_per_batch
    self._counted = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_COUNTED)
    self._writes = Metrics.counter(metrics.NAMESPACE, metrics.CASSANDRA_WRITES)
    self._requests = Metrics.counter(metrics.NAMESPACE, metrics.CASSANDRA_REQUESTS)
    self._refused = Metrics.counter(metrics.NAMESPACE, metrics.dead_lettered(STAGE))
    self._writes_per_bundle = Metrics.distribution(metrics.NAMESPACE, metrics.CASSANDRA_WRITE_BATCH)
    self._bundle_write_ms = Metrics.distribution(metrics.NAMESPACE, metrics.CASSANDRA_BUNDLE_WRITE_MS)

  def setup(self):
    super().setup()
    self._totals = {'counted': 0, 'writes': 0}
    self._last_progress_log = time.monotonic()

  def start_bundle(self):
    from cassandra.cluster import NoHostAvailable
    from cassandra import InvalidRequest
    try:
      self.open_session()
      self._update = self._session.prepare(increment_cql(self._keyspace, self._table))
    except NoHostAvailable as error:
      self.close_session()
      raise CassandraWriteError(f'no Cassandra node answered at {self._connection.address}: {error}') from None
    except InvalidRequest as error:
      self.close_session()
      raise CassandraWriteError(
          f'cannot write to {self._keyspace}.{self._table} on {self._connection.address} ({error}); create it '
          f'with: {schema_command(self._connection.hosts, self._connection.port, self._keyspace, self._table)} '
          '(or run the job with --create_schema)') from None
    self._update.retry_policy = _counter_retry_policy()
    self._update.is_idempotent = False
    self._start_sums()

  def _start_sums(self):
    self._batches: List[IncrementBatch] = []  # kept to find the messages of a refused write
    self._pending: Dict[datetime.date, Dict[int, _PendingKey]] = {}  # by date (the table's partition), site_id
    self._full: List[Tuple[Tuple, _PendingKey]] = []  # sums that reached the 64-bit limit, written separately

  def process(self, increments: IncrementBatch):
    self._batches.append(increments)
    pending_by_date, full = self._pending, self._full
    for day, site_id, views, clicks in zip(increments.dates, increments.site_ids, increments.views,
                                           increments.clicks):
      pending_by_site = pending_by_date.get(day)
      if pending_by_site is None:
        pending_by_site = pending_by_date[day] = {}
      pending = pending_by_site.get(site_id)
      if pending is None:
        pending = pending_by_site[site_id] = _PendingKey()
      elif pending.views + views > MAX_COUNT or pending.clicks + clicks > MAX_COUNT:
        # A bigint increment cannot hold the sum: send what we have as its own write.
        full.append(((day, site_id), pending))
        pending = pending_by_site[site_id] = _PendingKey(pending.first_message + pending.messages)
      pending.views += views
      pending.clicks += clicks
      pending.messages += 1

  def finish_bundle(self):
    writes = self._full + [((day, site_id), pending) for day, pending_by_site in self._pending.items()
                           for site_id, pending in pending_by_site.items()]
    started = time.monotonic()
    try:
      counted, requests, refused, failed = self._write(writes)
      if failed:
        key, error = failed[0]
        raise CassandraWriteError(
            f'{len(failed)} of {len(writes)} counter writes failed (first: {key}: {error!r}); the bundle will be '
            f'retried and may count these offsets twice: {self._describe_offsets()}')
    except Exception:
      _LOGGER.error('bundle write failed; offsets in this bundle (may be counted twice on retry): %s',
                    self._describe_offsets())
      raise
    finally:
      self.close_session()
    self._counted.inc(counted)
    self._writes.inc(len(writes) - len(refused))
    self._requests.inc(requests)
    self._writes_per_bundle.update(len(writes))
    self._bundle_write_ms.update(int((time.monotonic() - started) * 1000))
    self._log_progress(counted, len(writes) - len(refused))
    dead_letters = self._refused_sources(refused)
    self._start_sums()  # a streaming worker may idle until the next bundle: it need not hold this one's messages
    for reason, source in dead_letters:
      self._refused.inc()
      yield GlobalWindows.windowed_value(DeadLetter(STAGE, reason, source),
                                         timestamp=Timestamp(micros=max(source.timestamp_ms, 0) * 1000))

  def _write(self, writes):
    """Sends every key's UPDATE, grouped into counter batches per partition (date); returns
    (messages counted, requests sent, refused [(key, pending, error)], failed [(key, error)])."""
    from cassandra.concurrent import execute_concurrent
    groups = self._group_by_partition(writes)
    outcomes = execute_concurrent(
        self._session, [(self._statement_for(group), ()) for group in groups],
        concurrency=self._max_concurrent_writes, raise_on_first_error=False)
    counted, requests, refused, failed = 0, len(groups), [], []
    for group, (success, outcome) in zip(groups, outcomes):
      if success:
        counted += sum(pending.messages for _, pending in group)
      elif _is_refusal(outcome) and len(group) > 1:
        # A refused batch applied nothing: resend its keys one by one to find which one Cassandra refuses.
        for key, pending in group:
          requests += 1
          try:
            self._session.execute(self._statement_for([(key, pending)]))
            counted += pending.messages
          except Exception as error:  # pylint: disable=broad-except
            (refused.append((key, pending, error)) if _is_refusal(error) else failed.append((key, error)))
      elif _is_refusal(outcome):
        refused.append((group[0][0], group[0][1], outcome))
      else:
        failed.extend((key, outcome) for key, _ in group)
    return counted, requests, refused, failed

  def _group_by_partition(self, writes):
    by_date: Dict = {}
    for key, pending in writes:
      by_date.setdefault(key[0], []).append((key, pending))
    size = self._statements_per_batch
    return [group[i:i + size] for group in by_date.values() for i in range(0, len(group), size)]

  def _statement_for(self, group):
    if len(group) == 1:
      (day, site_id), pending = group[0]
      return self._update.bind((pending.views, pending.clicks, day, site_id))
    from cassandra.query import BatchStatement, BatchType
    # One partition per batch: Cassandra applies it as a single mutation, without the batch log.
    batch = BatchStatement(batch_type=BatchType.COUNTER, retry_policy=self._update.retry_policy)
    for (day, site_id), pending in group:
      batch.add(self._update, (pending.views, pending.clicks, day, site_id))
    return batch

  def _refused_sources(self, refused) -> List[Tuple[str, KafkaRecord]]:
    """(reason, message) for each message of the refused writes, found again in one pass over the bundle."""
    if not refused:
      return []
    by_key: Dict[Tuple, List[KafkaRecord]] = {key: [] for key, _, _ in refused}
    for batch in self._batches:
      for position, day, site_id in zip(batch.positions, batch.dates, batch.site_ids):
        found = by_key.get((day, site_id))
        if found is not None:
          found.append(batch.records.record(position))
    return [(f'Cassandra refused the increment for {key}: {error}', source)
            for key, pending, error in refused
            for source in by_key[key][pending.first_message:pending.first_message + pending.messages]]

  def _describe_offsets(self) -> str:
    """The offset range of each partition in this bundle (worked out only when a bundle fails)."""
    spans: Dict[Tuple[str, int], List[int]] = {}
    for batch in self._batches:
      if not batch.positions:
        continue
      records = batch.records
      low, high = records.offsets[batch.positions[0]], records.offsets[batch.positions[-1]]
      span = spans.setdefault((records.topic, records.partition), [low, high])
      span[0], span[1] = min(span[0], low), max(span[1], high)
    return ', '.join(f'{topic}[{partition}] {low}..{high}'
                     for (topic, partition), (low, high) in sorted(spans.items())) or 'none'

  def _log_progress(self, counted: int, writes: int):
    self._totals['counted'] += counted
    self._totals['writes'] += writes
    now = time.monotonic()
    if now - self._last_progress_log >= _PROGRESS_LOG_INTERVAL_S:
      self._last_progress_log = now
      _LOGGER.info('counted %d messages with %d Cassandra writes so far (this worker)',
                   self._totals['counted'], self._totals['writes'])


class CassandraCounterWrite(beam.PTransform):
  """IncrementBatches in; counters incremented; DeadLetters for increments Cassandra refused on ``dead_letters``."""

  def __init__(self, connection: CassandraConnection, keyspace: str, table: str, max_concurrent_writes: int = DEFAULT_MAX_CONCURRENT_WRITES,
               statements_per_batch: int = DEFAULT_STATEMENTS_PER_BATCH):
    super().__init__()
    check_identifier(keyspace, 'keyspace')
    check_identifier(table, 'table')
    if not connection.hosts:
      raise ValueError('CassandraCounterWrite needs at least one Cassandra host')
    if max_concurrent_writes < 1:
      raise ValueError(f'max_concurrent_writes must be at least 1, got {max_concurrent_writes}')
    if statements_per_batch < 1:
      raise ValueError(f'statements_per_batch must be at least 1, got {statements_per_batch}')
    self._connection = connection
    self._keyspace = keyspace.lower()
    self._table = table.lower()
    self._max_concurrent_writes = max_concurrent_writes
    self._statements_per_batch = statements_per_batch

  def expand(self, increments):
    return increments | 'IncrementCounters' >> beam.ParDo(_CounterWriteFn(
        self._connection, self._keyspace, self._table, self._max_concurrent_writes,
        self._statements_per_batch)).with_outputs(
            _CounterWriteFn.DEAD_LETTERS, main='written')

  def display_data(self):
    return {'cassandra': self._connection.address, 'table': f'{self._keyspace}.{self._table}',
            'max_concurrent_writes': self._max_concurrent_writes,
            'statements_per_batch': self._statements_per_batch}
