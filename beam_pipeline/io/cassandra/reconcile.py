"""Reconcile: make the counters of some dates exactly equal to the sums of their valid messages.

For each requested date: sum the valid messages of that date read from the window, read the date's counters
from Cassandra, and write only the difference (which may be negative). A second run right after finds nothing
to correct. Two reconciles of the same date never both write: each date is leased with a lightweight
transaction (``INSERT ... IF NOT EXISTS USING TTL``) in ``<keyspace>.reconcile_leases`` while it is corrected.
Reads run at the connection's read level, corrections and leases at its write level (connection.py's profiles).

It assumes what the README says: the window holds every message of those dates, and nothing else (the
streaming job) is still adding to them.
"""

import datetime
import logging
from typing import List, Sequence, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_pipeline import metrics
from beam_pipeline.io.cassandra.connection import LEASE_PROFILE, READ_PROFILE, CassandraConnection, SessionPerBundleFn
from beam_pipeline.records import IncrementBatch
from beam_pipeline.io.cassandra.offset_ledger import LEDGER_TABLE, resolve_uncertain
from beam_pipeline.io.cassandra.schema import LEASE_TABLE, increment_cql
from beam_pipeline.errors import ReconcileLeaseError, ReconcileWindowError

_LOGGER = logging.getLogger(__name__)


def _sum_pairs(pairs) -> Tuple[int, int]:
  views = clicks = 0
  for pair_views, pair_clicks in pairs:
    views += pair_views
    clicks += pair_clicks
  return views, clicks


class _KeyForTotalsFn(beam.DoFn):
  """((day, site_id), (views, clicks)) per increment of each IncrementBatch; counts the messages that go into the
  exact sums (CombinePerKey adds them up, pre-combining within each bundle)."""

  def __init__(self):
    self._counted = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_COUNTED)

  def start_bundle(self):
    self._in_bundle = 0

  def process(self, increments: IncrementBatch):
    self._in_bundle += len(increments)
    for day, site_id, views, clicks in zip(increments.dates, increments.site_ids, increments.views,
                                           increments.clicks):
      # Keys are ISO strings, not date objects, so that every runner encodes them deterministically.
      yield (day.isoformat(), site_id), (views, clicks)

  def finish_bundle(self):
    self._counted.inc(self._in_bundle)


class _CorrectDateFn(SessionPerBundleFn):
  """One date: lease it, read its counters, write the differences to the exact sums, release it."""

  def __init__(self, connection: CassandraConnection, keyspace: str, table: str, report_only: bool,
               lease_owner: str, lease_ttl_s: int, allow_emptying: bool):
    super().__init__(connection)
    self._allow_emptying = allow_emptying
    self._keyspace = keyspace
    self._table = table
    self._report_only = report_only
    self._lease_owner = lease_owner
    self._lease_ttl_s = lease_ttl_s
    self._checked = Metrics.counter(metrics.NAMESPACE, metrics.RECONCILE_KEYS_CHECKED)
    self._corrected = Metrics.counter(metrics.NAMESPACE, metrics.RECONCILE_KEYS_CORRECTED)
    self._views_corrected = Metrics.counter(metrics.NAMESPACE, metrics.RECONCILE_VIEWS_CORRECTED)
    self._clicks_corrected = Metrics.counter(metrics.NAMESPACE, metrics.RECONCILE_CLICKS_CORRECTED)

  def start_bundle(self):
    self.close_session()  # a bundle that failed in process() never reached finish_bundle

  def _open_session(self) -> None:
    """Opened by the bundle's first date, not in start_bundle: on Flink a fresh worker whose first bundle fails
    before reading its input leaves Beam's Java runner waiting minutes before it restarts the job."""
    self.open_session()
    self._read = self._session.prepare(
        f'SELECT site_id, views, clicks FROM {self._keyspace}.{self._table} WHERE date = ?')
    self._update = self._session.prepare(increment_cql(self._keyspace, self._table))
    self._take_lease = self._session.prepare(
        f'INSERT INTO {self._keyspace}.{LEASE_TABLE} (date, owner, acquired_at) VALUES (?, ?, toTimestamp(now())) '
        'IF NOT EXISTS USING TTL ?')
    self._give_back = self._session.prepare(
        f'DELETE FROM {self._keyspace}.{LEASE_TABLE} WHERE date = ? IF owner = ?')

  def process(self, element):
    if self._session is None:
      self._open_session()
    day_iso, grouped = element
    day = datetime.date.fromisoformat(day_iso)
    exact = {site_id: (views, clicks) for site_id, views, clicks in grouped['totals']}
    if not self._report_only:
      self._lease(day)
    try:
      # At the read level: with the writes' level it must overlap (both LOCAL_QUORUM by default) for the counters
      # read to hold every acknowledged write; a stale read would be "corrected" into a wrong count.
      rows = self._session.execute(self._read, (day,), execution_profile=READ_PROFILE)
      current = {row.site_id: (row.views or 0, row.clicks or 0) for row in rows}
      if not exact and current and not self._report_only and not self._allow_emptying:
        # Far more often a window that missed the date than a date whose traffic all vanished.
        raise ReconcileWindowError(
            f'{day} has counters but no message in the window: refusing to set it to zero. Check the window '
            '(messages are selected by their Kafka timestamps), or pass --force_window if zero is right.')
      keys = sorted(set(exact) | set(current))
      corrections = []
      for site_id in keys:
        want, have = exact.get(site_id, (0, 0)), current.get(site_id, (0, 0))
        if want != have:
          corrections.append((want[0] - have[0], want[1] - have[1], day, site_id))
      if corrections and not self._report_only:
        from cassandra.concurrent import execute_concurrent_with_args
        # Stop at the first failure: the job fails loudly, and a rerun computes the differences afresh.
        execute_concurrent_with_args(self._session, self._update, corrections, concurrency=32,
                                     raise_on_first_error=True)
    finally:
      if not self._report_only:
        self._session.execute(self._give_back, (day, self._lease_owner), execution_profile=LEASE_PROFILE)
    self._report(day_iso, len(keys), corrections, _sum_pairs(exact.values()))
    yield day_iso, len(corrections)

  def _report(self, day_iso: str, keys: int, corrections, totals: Tuple[int, int]):
    views_corrected, clicks_corrected = _sum_pairs((c[0], c[1]) for c in corrections)
    self._checked.inc(keys)
    self._corrected.inc(len(corrections))
    self._views_corrected.inc(views_corrected)
    self._clicks_corrected.inc(clicks_corrected)
    Metrics.counter(metrics.NAMESPACE, metrics.date_total('views', day_iso)).inc(totals[0])
    Metrics.counter(metrics.NAMESPACE, metrics.date_total('clicks', day_iso)).inc(totals[1])
    _LOGGER.info('%s: %d keys, %d %s (views %+d, clicks %+d); totals views %d, clicks %d', day_iso, keys,
                 len(corrections), 'would be corrected' if self._report_only else 'corrected',
                 views_corrected, clicks_corrected, totals[0], totals[1])

  def _lease(self, day: datetime.date):
    result = self._session.execute(self._take_lease, (day, self._lease_owner, self._lease_ttl_s),
                                   execution_profile=LEASE_PROFILE)
    if result.was_applied:
      return
    holder = result.one().owner
    if holder != self._lease_owner:  # our own lease means this bundle is being retried
      raise ReconcileLeaseError(
          f'{day} is being reconciled by {holder} (lease in {self._keyspace}.{LEASE_TABLE}); run again once it '
          f'has finished, or after its lease expires ({self._lease_ttl_s}s)')

  def finish_bundle(self):
    self.close_session()


class _ResolveUncertainFn(SessionPerBundleFn):
  """Once every date is corrected: the offset ledger's uncertain marks of those dates are cleared (and ranges
  whose dates are all exact now become counted), so that it agrees with the counters."""

  def __init__(self, connection: CassandraConnection, keyspace: str, table: str):
    super().__init__(connection)
    self._keyspace = keyspace
    self._table = table

  def process(self, corrected_days):
    self.open_session()
    try:
      keyspace = self._cluster.metadata.keyspaces.get(self._keyspace)
      if keyspace is None or LEDGER_TABLE not in keyspace.tables:
        return  # a keyspace counted at least once, without a ledger
      resolve_uncertain(self._session, self._keyspace, self._table,
                        [datetime.date.fromisoformat(day) for day, _ in corrected_days], READ_PROFILE,
                        LEASE_PROFILE)
    finally:
      self.close_session()


class ReconcileCounters(beam.PTransform):
  """IncrementBatches of the requested dates in; the dates' counters corrected to the exact sums."""

  def __init__(self, connection: CassandraConnection, keyspace: str, table: str,
               dates: Sequence[datetime.date], report_only: bool, lease_owner: str, lease_ttl_s: int = 3600,
               allow_emptying: bool = False):
    super().__init__()
    if not dates:
      raise ValueError('reconcile needs the dates to reconcile')
    if lease_ttl_s < 1:
      raise ValueError('the lease TTL must be at least one second')
    self._connection = connection
    self._keyspace = keyspace.lower()
    self._table = table.lower()
    self._dates: List[str] = sorted(d.isoformat() for d in dates)
    self._report_only = report_only
    self._lease_owner = lease_owner
    self._lease_ttl_s = lease_ttl_s
    self._allow_emptying = allow_emptying

  def expand(self, increments):
    totals = (increments
              | 'KeyBySiteAndDay' >> beam.ParDo(_KeyForTotalsFn())
              | 'SumPerKey' >> beam.CombinePerKey(_sum_pairs)
              | 'KeyByDay' >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1][0], kv[1][1]))))
    # Every requested date is corrected, also one with no message left: its counters must go to zero.
    requested = increments.pipeline | 'RequestedDates' >> beam.Create([(d, True) for d in self._dates])
    corrected = ({'totals': totals, 'requested': requested}
                 | 'GroupByDay' >> beam.CoGroupByKey()
                 | 'CorrectEachDay' >> beam.ParDo(_CorrectDateFn(
                     self._connection, self._keyspace, self._table, self._report_only, self._lease_owner,
                     self._lease_ttl_s, self._allow_emptying)))
    if not self._report_only:
      _ = (corrected
           | 'AllCorrected' >> beam.combiners.ToList()
           | 'ResolveUncertainOffsets' >> beam.ParDo(
               _ResolveUncertainFn(self._connection, self._keyspace, self._table)))
    return corrected
