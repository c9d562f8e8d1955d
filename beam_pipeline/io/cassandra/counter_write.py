"""CassandraCounterWrite: adds each bundle's increments to the counter table.

Within a bundle, increments are summed per (date, site_id) (``counter_sums.py``) and each key gets one UPDATE
from a prepared statement; the UPDATEs of one date travel together as counter batches, several requests in flight
(``counter_requests.py``); the session lives as long as the bundle (``counter_write_fn.py``). Every value the
contract lets through fits the table, so a write Cassandra refuses fails the bundle: the table or the job's
permission is at fault, not the messages.
"""

import apache_beam as beam

from beam_pipeline.io.cassandra.connection import CassandraConnection
from beam_pipeline.io.cassandra.counter_write_fn import CounterWriteFn
from beam_pipeline.io.cassandra.schema import check_identifier

# Keys of one date share a partition, so their UPDATEs travel as one counter batch (one request, one
# mutation); 50 keeps a batch near Cassandra's default 5 KiB batch_size_warn_threshold.
DEFAULT_STATEMENTS_PER_BATCH = 50
DEFAULT_MAX_CONCURRENT_WRITES = 64


class CassandraCounterWrite(beam.PTransform):
  """IncrementBatches in; counters incremented. The output holds no elements: it is complete once every bundle is
  written, which is what stages that must wait for the counters (the offset commit) need."""

  def __init__(self, connection: CassandraConnection, keyspace: str, table: str,
               max_concurrent_writes: int = DEFAULT_MAX_CONCURRENT_WRITES,
               statements_per_batch: int = DEFAULT_STATEMENTS_PER_BATCH, counted_once: bool = True,
               claims_whole_batches: bool = True):
    """``counted_once``: through the offset ledger (counter_write_fn.py); ``claims_whole_batches``: the increments
    stand for every offset of their batches (False when valid messages were dropped before the write)."""
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
    self._counted_once = counted_once
    self._claims_whole_batches = claims_whole_batches

  def expand(self, increments):
    return increments | 'IncrementCounters' >> beam.ParDo(CounterWriteFn(
        self._connection, self._keyspace, self._table, self._max_concurrent_writes,
        self._statements_per_batch, self._counted_once, self._claims_whole_batches))

  def display_data(self):
    return {'cassandra': self._connection.address, 'table': f'{self._keyspace}.{self._table}',
            'write_consistency': self._connection.write_consistency,
            'max_concurrent_writes': self._max_concurrent_writes,
            'statements_per_batch': self._statements_per_batch, 'counted_once': self._counted_once}
