"""The consistency levels: every request the stages send carries the one its option sets (read back from the
driver's requests on the real Cassandra), and how many replicas each level needs of a keyspace."""

import datetime
import re
import uuid
from typing import Dict, List, Tuple

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from beam_pipeline.io.cassandra import consistency
from beam_pipeline.io.cassandra.counter_write import CassandraCounterWrite
from beam_pipeline.io.cassandra.reconcile import ReconcileCounters
from beam_pipeline.launch.run import local_runner
from beam_pipeline.records import IncrementBatch, KafkaRecord, SiteIncrement
from beam_pipeline.testing.cassandra_requests import RecordingConnection, Request, recorded
from beam_pipeline.testing.counters import read_counters

DAY = datetime.date(2017, 2, 4)
DEFAULT = consistency.DEFAULT_CONSISTENCY


def _increments(*keys):
  return IncrementBatch.of([SiteIncrement(day, site_id, views, clicks, KafkaRecord(None, b'{}', 'events', 0, i, 0))
                            for i, (day, site_id, views, clicks) in enumerate(keys)])


def _connection(cassandra_port, write, read) -> RecordingConnection:
  return RecordingConnection(('127.0.0.1',), cassandra_port, write_consistency=write, read_consistency=read,
                             log=uuid.uuid4().hex)


def _by_statement(requests: List[Request]) -> Dict[str, List[Tuple[str, str]]]:
  """(consistency, serial consistency) of each request, under its verb and table (``BATCH`` for a batch)."""
  found = {}
  for request in requests:
    table = re.search(r'(?:FROM|INTO|UPDATE)\s+\w+\.(\w+)', request.cql)
    kind = f'{request.cql.split()[0]} {table.group(1)}' if table else request.cql
    found.setdefault(kind, []).append((request.consistency, request.serial_consistency))
  return found


def _only_the_connections_levels(requests: List[Request], connection) -> bool:
  """No request at a level the connection does not set (the driver's LOCAL_ONE, say), whatever it is for."""
  levels = {connection.write_consistency, connection.read_consistency,
            consistency.lease_commit_consistency(connection.write_consistency)}
  return all(r.consistency in levels and r.serial_consistency in (None, 'LOCAL_SERIAL') for r in requests)


@pytest.mark.parametrize('write', [DEFAULT, 'ALL'])
def test_every_counter_write_and_batch_carries_the_write_level(cassandra_port, cassandra_session, keyspace, write):
  connection = _connection(cassandra_port, write, 'ONE')
  # Four keys of DAY in batches of three (a batch, then a single UPDATE), one key of the next day alone.
  batch = _increments(*[(DAY, site_id, 1, 0) for site_id in range(4)], (DAY + datetime.timedelta(days=1), 9, 2, 1))

  with TestPipeline(runner=local_runner()) as p:
    _ = p | beam.Create([batch]) | CassandraCounterWrite(connection, keyspace, 'site_stats', statements_per_batch=3)

  requests = recorded(connection.log)
  by_statement = _by_statement(requests)
  assert by_statement['BATCH'] == [(write, None)]
  assert by_statement['UPDATE site_stats'] == [(write, None)] * 2
  assert _only_the_connections_levels(requests, connection)
  assert len(read_counters(cassandra_session, keyspace)) == 5


@pytest.mark.parametrize('write,read,lease_commit', [
    (DEFAULT, DEFAULT, DEFAULT),
    ('EACH_QUORUM', 'ALL', 'QUORUM'),  # Cassandra refuses EACH_QUORUM as a lightweight transaction's commit level
])
def test_reconcile_reads_at_the_read_level_and_corrects_and_leases_at_the_write_level(
    cassandra_port, cassandra_session, keyspace, write, read, lease_commit):
  cassandra_session.execute(f'UPDATE {keyspace}.site_stats SET views = views + 5, clicks = clicks + 5 '
                            'WHERE date = %s AND site_id = 1', (DAY,))
  connection = _connection(cassandra_port, write, read)

  with TestPipeline(runner=local_runner()) as p:
    _ = p | beam.Create([_increments((DAY, 1, 3, 1), (DAY, 2, 4, 0))]) | ReconcileCounters(
        connection, keyspace, 'site_stats', [DAY], report_only=False, lease_owner='consistency-test')

  requests = recorded(connection.log)
  by_statement = _by_statement(requests)
  assert by_statement['SELECT site_stats'] == [(read, None)]
  assert by_statement['UPDATE site_stats'] == [(write, None)] * 2
  assert by_statement['INSERT reconcile_leases'] == [(lease_commit, 'LOCAL_SERIAL')]  # IF NOT EXISTS: the lease taken
  assert by_statement['DELETE reconcile_leases'] == [(lease_commit, 'LOCAL_SERIAL')]  # IF owner = ?: given back
  assert _only_the_connections_levels(requests, connection)
  assert read_counters(cassandra_session, keyspace) == {(DAY, 1): (3, 1), (DAY, 2): (4, 0)}


_SIMPLE_1 = {'class': 'SimpleStrategy', 'replication_factor': 1}
_SIMPLE_3 = {'class': 'SimpleStrategy', 'replication_factor': '3'}
_TWO_DCS = {'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}


@pytest.mark.parametrize('level,replication,nodes_up,short', [
    ('LOCAL_QUORUM', _SIMPLE_1, {None: 1}, None),  # the test Cassandra: a majority of one replica
    ('ALL', _SIMPLE_1, {None: 1}, None),
    ('TWO', _SIMPLE_1, {None: 3}, (None, 2, 1, 1)),  # the replication places one replica
    ('QUORUM', _SIMPLE_3, {None: 1}, (None, 2, 3, 1)),  # three replicas, but one node
    ('LOCAL_ONE', _SIMPLE_3, {None: 1}, None),
    ('LOCAL_QUORUM', _TWO_DCS, {None: 3, 'dc1': 1, 'dc2': 2}, ('dc1', 2, 3, 1)),
    ('QUORUM', _TWO_DCS, {None: 3, 'dc1': 1, 'dc2': 2}, None),  # 3 of 5 reachable
    ('EACH_QUORUM', _TWO_DCS, {None: 4, 'dc1': 3, 'dc2': 1}, ('dc2', 2, 2, 1)),
    ('ALL', _TWO_DCS, {None: 4, 'dc1': 3, 'dc2': 1}, (None, 5, 5, 4)),
    ('LOCAL_QUORUM', {'class': 'NetworkTopologyStrategy', 'dc2': 3}, {None: 6, 'dc1': 3, 'dc2': 3},
     ('dc1', 1, 0, 0)),  # no replica in the local datacenter
])
def test_each_level_needs_its_replicas_where_it_counts_them(level, replication, nodes_up, short):
  found = consistency.shortfall(level, consistency.placement(replication), nodes_up, local_dc='dc1')

  assert found == (short and consistency.Shortfall(level, *short))
