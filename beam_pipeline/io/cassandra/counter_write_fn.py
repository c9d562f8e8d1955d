"""The DoFn of CassandraCounterWrite: sums a bundle's increments, writes them when the bundle finishes.

The session lives only while the bundle's writes are sent: ``finish_bundle`` opens it and closes it once every
write has been acknowledged, so a bundle the runner commits is a bundle Cassandra holds, and a bundle with nothing
to write opens none. (Opening it in ``start_bundle`` also made a Cassandra outage cost minutes on Flink: a fresh
SDK worker whose first bundle fails in ``start_bundle`` has not yet opened its data connection, and Beam's Java
runner waits a fixed 3 minutes for that connection before it fails the task and restarts the job.) A write whose
outcome is unknown fails the bundle (the runner retries it: at-least-once), and the offsets it covered are
logged so an operator knows what may be counted twice. The messages of refused writes leave ``finish_bundle`` on
the ``DEAD_LETTERS`` output; the main output carries nothing and only marks the stage as finished.
"""

import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.timestamp import Timestamp

from beam_pipeline import metrics
from beam_pipeline.errors import CassandraWriteError
from beam_pipeline.io.cassandra.connection import CassandraConnection, SessionPerBundleFn
from beam_pipeline.io.cassandra.counter_requests import CounterRequests, WriteOutcome, counter_retry_policy
from beam_pipeline.io.cassandra.counter_sums import BundleSums
from beam_pipeline.io.cassandra.schema import increment_cql, schema_command
from beam_pipeline.records import DeadLetter, IncrementBatch

_LOGGER = logging.getLogger(__name__)

STAGE = 'write'
_PROGRESS_LOG_INTERVAL_S = 30.0


class _WriteMetrics:
  """The stage's metrics, and what this worker has written so far, logged every ``_PROGRESS_LOG_INTERVAL_S``."""

  def __init__(self):
    self._counted = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_COUNTED)
    self._writes = Metrics.counter(metrics.NAMESPACE, metrics.CASSANDRA_WRITES)
    self._requests = Metrics.counter(metrics.NAMESPACE, metrics.CASSANDRA_REQUESTS)
    self._dead_lettered = Metrics.counter(metrics.NAMESPACE, metrics.dead_lettered(STAGE))
    self._writes_per_bundle = Metrics.distribution(metrics.NAMESPACE, metrics.CASSANDRA_WRITE_BATCH)
    self._bundle_write_ms = Metrics.distribution(metrics.NAMESPACE, metrics.CASSANDRA_BUNDLE_WRITE_MS)
    self._totals = [0, 0]  # messages counted, writes: since this worker started
    self._last_log = None

  def bundle_written(self, outcome: WriteOutcome, writes: int, started: float) -> None:
    written = writes - len(outcome.refused)
    self._counted.inc(outcome.counted)
    self._writes.inc(written)
    self._requests.inc(outcome.requests)
    self._writes_per_bundle.update(writes)
    self._bundle_write_ms.update(int((time.monotonic() - started) * 1000))
    self._totals[0] += outcome.counted
    self._totals[1] += written
    now = time.monotonic()
    if self._last_log is None:
      self._last_log = now
    elif now - self._last_log >= _PROGRESS_LOG_INTERVAL_S:
      self._last_log = now
      _LOGGER.info('counted %d messages with %d Cassandra writes so far (this worker)', *self._totals)

  def dead_lettered(self, count: int) -> None:
    self._dead_lettered.inc(count)


class CounterWriteFn(SessionPerBundleFn):
  """IncrementBatches in; counters incremented when the bundle finishes; refused messages on ``DEAD_LETTERS``."""
  DEAD_LETTERS = 'dead_letters'

  def __init__(self, connection: CassandraConnection, keyspace: str, table: str, max_concurrent_writes: int,
               statements_per_batch: int):
    super().__init__(connection)
    self._keyspace = keyspace
    self._table = table
    self._max_concurrent_writes = max_concurrent_writes
    self._statements_per_batch = statements_per_batch
    self._metrics = _WriteMetrics()

  def start_bundle(self):
    self._sums = BundleSums()

  def _open_session_with_update(self):
    from cassandra import InvalidRequest
    from cassandra.cluster import NoHostAvailable
    connection = self._connection
    try:
      session = self.open_session()
      update = session.prepare(increment_cql(self._keyspace, self._table))
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
    return session, update

  def process(self, increments: IncrementBatch):
    self._sums.add(increments)

  def finish_bundle(self):
    # A streaming worker may idle until the next bundle: it need not hold this one's messages meanwhile.
    sums, self._sums = self._sums, BundleSums()
    writes = sums.writes()
    if not writes:
      return
    started = time.monotonic()
    try:
      session, update = self._open_session_with_update()
      sender = CounterRequests(session, update, self._statements_per_batch, self._max_concurrent_writes)
      outcome = sender.send(writes)
      if outcome.failed:
        key, error = outcome.failed[0]
        raise CassandraWriteError(
            f'{len(outcome.failed)} of {len(writes)} counter writes failed (first: {key}: {error!r}); the bundle '
            f'will be retried and may count these offsets twice: {sums.offset_ranges()}')
    except Exception:
      _LOGGER.error('bundle write failed; offsets in this bundle (may be counted twice on retry): %s',
                    sums.offset_ranges())
      raise
    finally:
      self.close_session()
    self._metrics.bundle_written(outcome, len(writes), started)
    if outcome.refused:
      yield from self._dead_letters(sums, outcome.refused)

  def _dead_letters(self, sums: BundleSums, refused):
    """One DeadLetter per message of each refused write, tagged: untagged output of finish_bundle would go to
    the main output."""
    sources = sums.messages_of([(key, key_sum) for key, key_sum, _ in refused])
    for (key, _, error), messages in zip(refused, sources):
      reason = f'Cassandra refused the increment for {key}: {error}'
      # Counted once per refused write, not per message, as every other metric of the stage.
      self._metrics.dead_lettered(len(messages))
      for source in messages:
        yield beam.pvalue.TaggedOutput(self.DEAD_LETTERS, GlobalWindows.windowed_value(
            DeadLetter(STAGE, reason, source), timestamp=Timestamp(micros=max(source.timestamp_ms, 0) * 1000)))
