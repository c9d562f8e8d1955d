"""The offset ledger: which Kafka offsets a counter table has counted, so that no message is counted twice.

Cassandra cannot make a counter increment idempotent (no ``USING TIMESTAMP``, no conditions, no logged batches on
counter tables), so the job remembers what it counted, in a regular table beside the counters: one row per
(counter table, topic, partition) holding

- ``counted``: the offset ranges whose increments Cassandra acknowledged;
- ``uncertain`` and ``uncertain_dates``: ranges whose increments may or may not have landed (a write timed out, a
  writer died or lost its claim), and the event dates they touch, which reconcile makes exact;
- ``claim``, ``claim_owner``, ``claim_dates``: the ranges a writer is counting now;
- ``version``: bumped by every change, each change conditional on the version it read (a lightweight
  transaction), which fences concurrent writers.

A writer claims what is neither counted nor uncertain, sends the increments of only those messages, then marks
the claim counted, or uncertain when a write's outcome is unknown. A claim found open is another writer's (or
an earlier attempt's) whose outcome nobody knows: it becomes uncertain, never re-counted. A writer whose mark
fails its condition lost its claim to someone else; its range is already uncertain.
"""

import dataclasses
import datetime
import logging
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from beam_pipeline.io.cassandra import offset_ranges
from beam_pipeline.io.cassandra.offset_ranges import OffsetRange

_LOGGER = logging.getLogger(__name__)

LEDGER_TABLE = 'counted_offsets'
# A claim lost this many times in a row to other writers of the same partition is given up (the bundle fails).
_CLAIM_ATTEMPTS = 8

PartitionKey = Tuple[str, int]  # (topic, partition)


def ledger_table_cql(keyspace: str) -> str:
  ranges = 'frozen<list<tuple<bigint, bigint>>>'
  return (f'CREATE TABLE IF NOT EXISTS {keyspace}.{LEDGER_TABLE} (counter_table text, topic text, partition int, '
          f'version bigint, counted {ranges}, uncertain {ranges}, uncertain_dates frozen<set<date>>, '
          f'claim {ranges}, claim_owner text, claim_dates frozen<set<date>>, '
          'PRIMARY KEY ((counter_table, topic, partition)))')


@dataclasses.dataclass(frozen=True)
class LedgerRow:
  """One partition's row; version 0 means the row does not exist yet."""
  version: int = 0
  counted: Tuple[OffsetRange, ...] = ()
  uncertain: Tuple[OffsetRange, ...] = ()
  uncertain_dates: FrozenSet[datetime.date] = frozenset()
  claim: Tuple[OffsetRange, ...] = ()
  claim_owner: Optional[str] = None
  claim_dates: FrozenSet[datetime.date] = frozenset()

  @classmethod
  def of(cls, row) -> 'LedgerRow':
    def ranges(value):
      return tuple((int(start), int(stop)) for start, stop in value or ())

    def dates(value):
      return frozenset(d.date() if hasattr(d, 'date') else d for d in value or ())
    return cls(row.version, ranges(row.counted), ranges(row.uncertain), dates(row.uncertain_dates),
               ranges(row.claim), row.claim_owner, dates(row.claim_dates))


@dataclasses.dataclass(frozen=True)
class Claim:
  """What a writer may count of one partition: ``ranges``; what it must skip: ``skipped`` (counted before) and
  ``uncertain`` (not known to be counted: left to reconcile)."""
  key: PartitionKey
  row: LedgerRow  # as the claim wrote it
  ranges: Tuple[OffsetRange, ...]
  skipped: Tuple[OffsetRange, ...]
  uncertain: Tuple[OffsetRange, ...]
  taken_over: Optional[str]  # the owner of an open claim this one found and made uncertain


class LostClaim(Exception):
  """Another writer changed the row since this writer claimed: what it sent is uncertain."""


class OffsetLedger:
  """The ledger rows of one counter table, through a session; statements prepared once per session."""

  def __init__(self, session, keyspace: str, counter_table: str, owner: str, read_profile: str,
               transaction_profile: str):
    self._session = session
    self._counter_table = counter_table
    self._owner = owner
    self._read_profile = read_profile
    self._transaction_profile = transaction_profile
    table = f'{keyspace}.{LEDGER_TABLE}'
    key = 'WHERE counter_table = ? AND topic = ? AND partition = ?'
    self._select = session.prepare(
        f'SELECT version, counted, uncertain, uncertain_dates, claim, claim_owner, claim_dates FROM {table} {key}')
    self._insert = session.prepare(
        f'INSERT INTO {table} (counter_table, topic, partition, version, counted, uncertain, uncertain_dates, claim, '
        'claim_owner, claim_dates) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS')
    self._update = session.prepare(
        f'UPDATE {table} SET version = ?, counted = ?, uncertain = ?, uncertain_dates = ?, claim = ?, '
        f'claim_owner = ?, claim_dates = ? {key} IF version = ?')

  def read(self, keys: Sequence[PartitionKey]) -> Dict[PartitionKey, LedgerRow]:
    futures = {key: self._session.execute_async(self._select, (self._counter_table, *key),
                                                execution_profile=self._read_profile) for key in keys}
    rows = {}
    for key, future in futures.items():
      found = future.result().one()
      rows[key] = LedgerRow() if found is None else LedgerRow.of(found)
    return rows

  def _write_async(self, key: PartitionKey, before: LedgerRow, after: LedgerRow):
    values = (after.version, list(after.counted), list(after.uncertain), set(after.uncertain_dates),
              list(after.claim), after.claim_owner, set(after.claim_dates))
    if before.version == 0:
      return self._session.execute_async(self._insert, (self._counter_table, *key, *values),
                                         execution_profile=self._transaction_profile)
    return self._session.execute_async(self._update, (*values, self._counter_table, *key, before.version),
                                       execution_profile=self._transaction_profile)

  def claim(self, wanted: Dict[PartitionKey, List[OffsetRange]], known: Dict[PartitionKey, LedgerRow],
            dates_of: Callable[[PartitionKey, Sequence[OffsetRange]], FrozenSet[datetime.date]]
            ) -> Dict[PartitionKey, Claim]:
    """Claims, for each partition, the ``wanted`` offsets that are neither counted nor uncertain, all partitions'
    transactions in flight at once. ``known`` are rows as last seen (a stale one costs a retry, never a wrong
    claim); ``dates_of`` names the event dates of a partition's ranges, which a claim records for its repair."""
    claims: Dict[PartitionKey, Claim] = {}
    pending = dict(wanted)
    rows = {key: known[key] for key in pending if key in known}
    rows.update(self.read([key for key in pending if key not in rows]))
    for _ in range(_CLAIM_ATTEMPTS):
      writes = {}
      for key, ranges in pending.items():
        claim = self._claim_of(key, rows[key], ranges, dates_of)
        if claim.row == rows[key]:
          claims[key] = claim  # nothing to claim and nothing to take over: no transaction
        else:
          writes[key] = (claim, self._write_async(key, rows[key], claim.row))
      lost = []
      for key, (claim, future) in writes.items():
        if future.result().was_applied:
          claims[key] = claim
          if claim.taken_over:
            _LOGGER.warning('%s[%d]: took over the open claim of %s; its offsets %s are uncertain until '
                            'reconciled', key[0], key[1], claim.taken_over, offset_ranges.describe(rows[key].claim))
        else:
          lost.append(key)
      pending = {key: pending[key] for key in lost}
      if not pending:
        return claims
      rows.update(self.read(lost))
    raise LostClaim(f'could not claim offsets of {", ".join(f"{t}[{p}]" for t, p in pending)}: '
                    f'{_CLAIM_ATTEMPTS} attempts lost to other writers')

  def _claim_of(self, key: PartitionKey, row: LedgerRow, wanted: Sequence[OffsetRange], dates_of) -> Claim:
    taken_over = row.claim_owner if row.claim else None
    uncertain = tuple(offset_ranges.union(row.uncertain, row.claim))
    uncertain_dates = row.uncertain_dates | row.claim_dates
    done = offset_ranges.union(row.counted, uncertain)
    ranges = tuple(offset_ranges.minus(wanted, done))
    skipped = tuple(offset_ranges.minus(offset_ranges.minus(wanted, ranges), uncertain))
    wanted_uncertain = tuple(offset_ranges.minus(offset_ranges.minus(wanted, ranges), skipped))
    if not ranges and not taken_over:
      return Claim(key, row, (), skipped, wanted_uncertain, None)
    after = LedgerRow(row.version + 1, row.counted, uncertain, uncertain_dates, ranges,
                      self._owner if ranges else None, dates_of(key, ranges) if ranges else frozenset())
    return Claim(key, after, ranges, skipped, wanted_uncertain, taken_over)

  def settle(self, claims: Sequence[Claim], counted: bool) -> Dict[PartitionKey, LedgerRow]:
    """Marks each open claim counted (every increment acknowledged) or uncertain (an outcome unknown); returns the
    rows as written. A claim someone else changed meanwhile is lost: logged, and left as they made it."""
    writes = {}
    for claim in claims:
      if not claim.ranges:
        continue
      row = claim.row
      if counted:
        after = dataclasses.replace(row, version=row.version + 1,
                                    counted=tuple(offset_ranges.union(row.counted, row.claim)),
                                    claim=(), claim_owner=None, claim_dates=frozenset())
      else:
        after = dataclasses.replace(row, version=row.version + 1,
                                    uncertain=tuple(offset_ranges.union(row.uncertain, row.claim)),
                                    uncertain_dates=row.uncertain_dates | row.claim_dates,
                                    claim=(), claim_owner=None, claim_dates=frozenset())
      writes[claim.key] = (claim, after, self._write_async(claim.key, row, after))
    settled = {}
    for key, (claim, after, future) in writes.items():
      if future.result().was_applied:
        settled[key] = after
      else:
        _LOGGER.warning('%s[%d]: lost the claim of offsets %s to another writer (two jobs or a restarted worker '
                        'count this partition into %s); what this writer sent of them is uncertain until '
                        'reconciled', key[0], key[1], offset_ranges.describe(claim.ranges), self._counter_table)
    return settled


def _table_rows(session, keyspace: str, counter_table: str, read_profile: str):
  """Every ledger row of ``counter_table`` (the ledger holds a row per partition and table: a scan is small)."""
  rows = session.execute(
      f'SELECT counter_table, topic, partition, version, counted, uncertain, uncertain_dates, claim, claim_owner, '
      f'claim_dates FROM {keyspace}.{LEDGER_TABLE}', execution_profile=read_profile)
  return [((row.topic, row.partition), LedgerRow.of(row)) for row in rows if row.counter_table == counter_table]


def ledger_ends(session, keyspace: str, counter_table: str, topics: Sequence[str],
                read_profile: str) -> Dict[PartitionKey, int]:
  """For each partition of ``topics`` the ledger has a row for: the end of the highest range it holds (counted,
  uncertain or claimed), the offset the partition's log must have reached since."""
  wanted = set(topics)
  return {key: max(stop for _, stop in (*row.counted, *row.uncertain, *row.claim))
          for key, row in _table_rows(session, keyspace, counter_table, read_profile)
          if key[0] in wanted and (row.counted or row.uncertain or row.claim)}


def uncertain_dates(session, keyspace: str, counter_table: str, read_profile: str) -> List[datetime.date]:
  """The event dates of every uncertain range of ``counter_table``: what reconcile must redo. (An open claim is
  left out: it may be a running writer's; it becomes uncertain when another writer of its partition finds it.)"""
  dates = set()
  for _, row in _table_rows(session, keyspace, counter_table, read_profile):
    dates |= row.uncertain_dates
  return sorted(dates)


def resolve_uncertain(session, keyspace: str, counter_table: str, reconciled: Sequence[datetime.date],
                      read_profile: str, transaction_profile: str) -> int:
  """After a reconcile made ``reconciled`` exact: their marks are cleared, and a partition's uncertain ranges
  whose dates are all reconciled become counted (reconcile counted their messages exactly; they must never be
  counted again). Returns how many rows changed."""
  reconciled = frozenset(reconciled)
  table = f'{keyspace}.{LEDGER_TABLE}'
  update = session.prepare(
      f'UPDATE {table} SET version = ?, counted = ?, uncertain = ?, uncertain_dates = ? '
      'WHERE counter_table = ? AND topic = ? AND partition = ? IF version = ?')
  changed = 0
  pending = [(key, row) for key, row in _table_rows(session, keyspace, counter_table, read_profile)
             if row.uncertain_dates & reconciled]
  for _ in range(_CLAIM_ATTEMPTS):
    lost = []
    for key, row in pending:
      left = row.uncertain_dates - reconciled
      counted, uncertain = row.counted, row.uncertain
      if not left:
        counted, uncertain = tuple(offset_ranges.union(counted, uncertain)), ()
      result = session.execute(update, (row.version + 1, list(counted), list(uncertain), set(left), counter_table,
                                        *key, row.version), execution_profile=transaction_profile)
      if result.was_applied:
        changed += 1
        _LOGGER.info('%s[%d]: uncertain dates %s reconciled%s', key[0], key[1],
                     ', '.join(d.isoformat() for d in sorted(row.uncertain_dates & reconciled)),
                     f'; offsets {offset_ranges.describe(row.uncertain)} counted' if not left else '')
      else:
        lost.append(key)
    if not lost:
      return changed
    pending = [(key, row) for key, row in _table_rows(session, keyspace, counter_table, read_profile)
               if key in lost and row.uncertain_dates & reconciled]
  raise LostClaim(f'could not clear the uncertain marks of {len(pending)} partitions: other writers kept '
                  'changing them')
