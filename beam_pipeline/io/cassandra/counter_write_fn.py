"""The DoFn of CassandraCounterWrite: sums a bundle's increments, writes them when the bundle finishes.

The session lives only while the bundle's writes are sent: ``finish_bundle`` opens it and closes it once every
write has been acknowledged, so a bundle the runner commits is a bundle Cassandra holds, and a bundle with nothing
to write opens none. (Opening it in ``start_bundle`` also made a Cassandra outage cost minutes on Flink: a fresh
SDK worker whose first bundle fails in ``start_bundle`` has not yet opened its data connection, and Beam's Java
runner waits a fixed 3 minutes for that connection before it fails the task and restarts the job.)

Counting once (the default), the bundle first claims its offsets in the offset ledger (``offset_ledger.py``) and
sums only the messages it claimed: offsets the table has counted are skipped, whoever read them. A write whose
outcome is unknown makes the bundle's claims uncertain (reconciling their dates repairs them) and the bundle carries on:
resending it could count it twice. At least once (``counted_once=False``), such a write fails the bundle and the
runner retries it, and the offsets it covered are logged. A refused write (the table dropped or altered under the
job, a permission revoked: the messages are not at fault, the contract caps every value) fails the bundle with
one line saying so, after marking its claims uncertain when counting once: the bundle's other writes may have
been applied. The main output carries nothing and only marks the stage as finished.
"""

import gc
import logging
import os
import socket
import time
import uuid
import functools
from typing import Dict, List, Sequence

from apache_beam.metrics import Metrics

from beam_pipeline import metrics
from beam_pipeline.errors import CassandraWriteError
from beam_pipeline.io.cassandra import offset_ranges
from beam_pipeline.io.cassandra.connection import LEASE_PROFILE, READ_PROFILE, CassandraConnection, SessionPerBundleFn
from beam_pipeline.io.cassandra.offset_ledger import Claim, OffsetLedger, PartitionKey
from beam_pipeline.io.cassandra.counter_requests import CounterRequests, WriteOutcome, counter_retry_policy
from beam_pipeline.io.cassandra.counter_sums import BundleSums
from beam_pipeline.io.cassandra.schema import increment_cql, schema_command
from beam_pipeline.records import IncrementBatch


def _dates_in(batches: Sequence[IncrementBatch], key: PartitionKey, ranges) -> frozenset:
  """The event dates of the increments of partition ``key`` whose offsets are in ``ranges``: what a claim of them
  may change, and so what its repair must reconcile."""
  dates = set()
  for batch in batches:
    records = batch.records
    if (records.topic, records.partition) != key:
      continue
    if offset_ranges.covers(ranges, records.offsets[0], records.offsets[-1] + 1):
      dates.update(batch.distinct_dates())  # the usual case: the whole batch is claimed
    else:
      dates.update(day for position, day in zip(batch.positions, batch.dates)
                   if offset_ranges.contains(ranges, records.offsets[position]))
  return frozenset(dates)

_LOGGER = logging.getLogger(__name__)

_PROGRESS_LOG_INTERVAL_S = 30.0
# Every request leaves some 40 objects in reference cycles inside the driver (the response future, its timeout timer,
# its result set) that only the cyclic garbage collector frees, and the reader makes collections rare (read.py). A
# writer sending many small requests (small --statements_per_batch, or increments spread over many dates) grew by
# 300 MB in 40 s before a full collection came. Collecting after this many requests bounds that garbage to some
# 50 MB; bundles with the default batches send far fewer requests.
_REQUESTS_BETWEEN_COLLECTIONS = 20000


class _WriteMetrics:
  """The stage's metrics, and what this worker has written so far, logged every ``_PROGRESS_LOG_INTERVAL_S``."""

  def __init__(self):
    self._counted = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_COUNTED)
    self._writes = Metrics.counter(metrics.NAMESPACE, metrics.CASSANDRA_WRITES)
    self._requests = Metrics.counter(metrics.NAMESPACE, metrics.CASSANDRA_REQUESTS)
    self._skipped = Metrics.counter(metrics.NAMESPACE, metrics.SKIPPED_ALREADY_COUNTED)
    self._uncertain = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_UNCERTAIN)
    self._writes_per_bundle = Metrics.distribution(metrics.NAMESPACE, metrics.CASSANDRA_WRITE_BATCH)
    self._bundle_write_ms = Metrics.distribution(metrics.NAMESPACE, metrics.CASSANDRA_BUNDLE_WRITE_MS)
    self._totals = [0, 0]  # messages counted, writes: since this worker started
    self._last_log = None

  def bundle_written(self, outcome: WriteOutcome, writes: int, started: float) -> None:
    self._counted.inc(outcome.counted)
    self._writes.inc(writes)
    self._requests.inc(outcome.requests)
    self._writes_per_bundle.update(writes)
    self._bundle_write_ms.update(int((time.monotonic() - started) * 1000))
    self._totals[0] += outcome.counted
    self._totals[1] += writes
    now = time.monotonic()
    if self._last_log is None:
      self._last_log = now
    elif now - self._last_log >= _PROGRESS_LOG_INTERVAL_S:
      self._last_log = now
      _LOGGER.info('counted %d messages with %d Cassandra writes so far (this worker)', *self._totals)

  def ledger_settled(self, skipped: int, uncertain: int) -> None:
    if skipped:
      self._skipped.inc(skipped)
    if uncertain:
      self._uncertain.inc(uncertain)


class CounterWriteFn(SessionPerBundleFn):
  """IncrementBatches in; counters incremented when the bundle finishes."""

  def __init__(self, connection: CassandraConnection, keyspace: str, table: str, max_concurrent_writes: int,
               statements_per_batch: int, counted_once: bool = True, claims_whole_batches: bool = True):
    super().__init__(connection)
    self._keyspace = keyspace
    self._table = table
    self._max_concurrent_writes = max_concurrent_writes
    self._statements_per_batch = statements_per_batch
    self._counted_once = counted_once
    # Whether a batch's increments stand for every offset of the batch as read (its invalid messages are dead
    # letters, counted as nothing); not when KeepDates dropped valid messages of other dates, which stay uncounted.
    self._claims_whole_batches = claims_whole_batches
    self._metrics = _WriteMetrics()

  def setup(self):
    super().setup()
    self._owner = f'{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}'
    self._known_rows = {}  # ledger rows as this writer last wrote or read them
    self._uncertain_gauges = metrics.PartitionGauges(metrics.UNCERTAIN_MESSAGES)
    self._requests_since_collection = 0

  def start_bundle(self):
    self._batches: List[IncrementBatch] = []

  def _open_session_with_update(self):
    from cassandra import InvalidRequest
    from cassandra.cluster import NoHostAvailable
    connection = self._connection
    try:
      session = self.open_session()
      update = session.prepare(increment_cql(self._keyspace, self._table))
      ledger = OffsetLedger(session, self._keyspace, self._table, self._owner, READ_PROFILE,
                            LEASE_PROFILE) if self._counted_once else None
    except NoHostAvailable as error:
      self.close_session()
      raise CassandraWriteError(f'no Cassandra node answered at {connection.address}: {error}') from None
    except InvalidRequest as error:
      self.close_session()
      raise CassandraWriteError(
          f'cannot write to {self._keyspace}.{self._table} on {connection.address} ({error}); create it with: '
          f'{schema_command(connection.hosts, connection.port, self._keyspace, self._table)} '
          '(or run the job with --create_schema)') from None
    update.retry_policy = counter_retry_policy()
    update.is_idempotent = False
    return session, update, ledger

  def process(self, increments: IncrementBatch):
    # Held until the bundle ends, compactly: the messages' bytes are not needed for the writes, the ledger or the log.
    self._batches.append(increments.without_messages())

  def finish_bundle(self):
    # A streaming worker may idle until the next bundle: it need not hold this one's messages meanwhile.
    batches, self._batches = self._batches, []
    if not batches:
      return
    started = time.monotonic()
    sums, claims = BundleSums(), {}
    try:
      session, update, ledger = self._open_session_with_update()
      valid = sum(len(batch) for batch in batches)
      if ledger is not None:
        claims = ledger.claim(self._wanted(batches), self._known_rows, functools.partial(_dates_in, batches))
        batches = self._claimed_only(batches, claims)
      claimed = sum(len(batch) for batch in batches)
      for batch in batches:
        sums.add(batch)
      writes = sums.writes()
      outcome = CounterRequests(session, update, self._statements_per_batch, self._max_concurrent_writes).send(
          writes) if writes else WriteOutcome()
      if outcome.failed and ledger is None:
        key, error = outcome.failed[0]
        raise CassandraWriteError(
            f'{len(outcome.failed)} of {len(writes)} counter writes failed (first: {key}: {error!r}); the bundle '
            f'will be retried and may count these offsets twice: {sums.offset_ranges()}')
      if ledger is not None:
        self._settle(ledger, claims, outcome)
      if outcome.refused:
        raise self._refusal_error(outcome, len(writes), ledger is not None)
    except Exception:
      _LOGGER.error('bundle write failed; offsets in this bundle%s: %s',
                    '' if self._counted_once else ' (may be counted twice on retry)', sums.offset_ranges())
      raise
    finally:
      self.close_session()
    self._metrics.bundle_written(outcome, len(writes), started)
    self._metrics.ledger_settled(valid - claimed, claimed if ledger is not None and outcome.failed else 0)
    self._requests_since_collection += outcome.requests
    if self._requests_since_collection >= _REQUESTS_BETWEEN_COLLECTIONS:
      self._requests_since_collection = 0
      gc.collect()

  def _wanted(self, batches: Sequence[IncrementBatch]) -> Dict[PartitionKey, List[offset_ranges.OffsetRange]]:
    wanted: Dict[PartitionKey, List] = {}
    for batch in batches:
      records = batch.records
      ranges = wanted.setdefault((records.topic, records.partition), [])
      if self._claims_whole_batches:
        ranges.append((records.offsets[0], records.offsets[-1] + 1))
      else:
        ranges.extend((records.offsets[p], records.offsets[p] + 1) for p in batch.positions)
    return {key: offset_ranges.merged(ranges) for key, ranges in wanted.items()}

  @staticmethod
  def _claimed_only(batches: Sequence[IncrementBatch], claims: Dict[PartitionKey, Claim]) -> List[IncrementBatch]:
    kept = []
    for batch in batches:
      records = batch.records
      claimed = claims[(records.topic, records.partition)].ranges
      if offset_ranges.covers(claimed, records.offsets[0], records.offsets[-1] + 1):
        kept.append(batch)  # the usual case, a partition read once: no look at each message
        continue
      indexes = [i for i, p in enumerate(batch.positions) if offset_ranges.contains(claimed, records.offsets[p])]
      if len(indexes) == len(batch):
        kept.append(batch)
      elif indexes:
        kept.append(batch.select(indexes))
    return kept

  def _settle(self, ledger: OffsetLedger, claims: Dict[PartitionKey, Claim], outcome: WriteOutcome) -> None:
    """Marks the claims counted, or uncertain when any write's outcome is unknown: the bundle's writes sum
    several partitions' messages, so one unknown write leaves every claim of the bundle unknown."""
    counted = not outcome.failed and not outcome.refused
    if outcome.failed:
      key, error = outcome.failed[0]
      _LOGGER.warning('%d counter writes of this bundle have an unknown outcome (first: %s: %r); they are not '
                      'resent: offsets %s are uncertain until repaired (./run_backfill.sh --dates uncertain --mode reconcile)',
                      len(outcome.failed), key, error,
                      '; '.join(f'{t}[{p}] {offset_ranges.describe(c.ranges)}' for (t, p), c in claims.items()
                                if c.ranges))
    self._known_rows.update({key: claim.row for key, claim in claims.items()})
    self._known_rows.update(ledger.settle(list(claims.values()), counted))
    for topic, partition in claims:
      self._uncertain_gauges.set(topic, partition,
                                 offset_ranges.size(self._known_rows[(topic, partition)].uncertain))

  def _refusal_error(self, outcome: WriteOutcome, writes: int, counting_once: bool) -> CassandraWriteError:
    key, error = outcome.refused[0]
    after = ('its offsets are uncertain until repaired (./run_backfill.sh --dates uncertain --mode reconcile)'
             if counting_once else 'the retried bundle may count twice what its other writes added')
    connection = self._connection
    create = schema_command(connection.hosts, connection.port, self._keyspace, self._table)
    return CassandraWriteError(
        f'Cassandra refused {len(outcome.refused)} of {writes} counter writes to {self._keyspace}.{self._table} '
        f'(first: {key}: {error}): the table was dropped or changed, or the job may no longer modify it; '
        f'recreate it as the job makes it ({create}) or restore the permission; {after}')
