"""``python -m beam_pipeline.tools.create_schema`` against the real Cassandra."""

import datetime
import subprocess
import sys
import uuid

import pytest

from beam_pipeline.io.cassandra import schema


def _run_schema_command(cassandra_port, *args):
  return subprocess.run(
      [sys.executable, '-m', 'beam_pipeline.tools.create_schema', '--cassandra_hosts', '127.0.0.1',
       '--cassandra_port', str(cassandra_port), *args],
      capture_output=True, text=True, timeout=120)


@pytest.fixture
def fresh_keyspace_name(cassandra_session):
  name = f'ks_schema_{uuid.uuid4().hex[:12]}'
  yield name
  cassandra_session.execute(f'DROP KEYSPACE IF EXISTS {name}')


def _increment(session, keyspace, day, site_id, views, clicks):
  session.execute(
      f'UPDATE {keyspace}.site_stats SET views = views + %s, clicks = clicks + %s WHERE date = %s AND site_id = %s',
      (views, clicks, day, site_id))


def _read(session, keyspace, day, site_id):
  row = session.execute(
      f'SELECT views, clicks FROM {keyspace}.site_stats WHERE date = %s AND site_id = %s', (day, site_id)).one()
  return (row.views, row.clicks) if row else None


def test_schema_command_creates_a_counter_table_that_takes_increments(
    cassandra_port, cassandra_session, fresh_keyspace_name):
  result = _run_schema_command(cassandra_port, '--keyspace', fresh_keyspace_name)
  assert result.returncode == 0, result.stderr

  day = datetime.date(2017, 2, 4)
  _increment(cassandra_session, fresh_keyspace_name, day, 3491, 10, 6)
  _increment(cassandra_session, fresh_keyspace_name, day, 3491, 5, 1)

  assert _read(cassandra_session, fresh_keyspace_name, day, 3491) == (15, 7)
  columns = {row.column_name: row.type for row in cassandra_session.execute(
      'SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s',
      (fresh_keyspace_name, 'site_stats'))}
  assert columns == {'date': 'date', 'site_id': 'int', 'views': 'counter', 'clicks': 'counter'}


def test_running_the_schema_command_twice_is_harmless(cassandra_port, cassandra_session, fresh_keyspace_name):
  assert _run_schema_command(cassandra_port, '--keyspace', fresh_keyspace_name).returncode == 0
  day = datetime.date(2020, 1, 1)
  _increment(cassandra_session, fresh_keyspace_name, day, 1, 3, 2)

  again = _run_schema_command(cassandra_port, '--keyspace', fresh_keyspace_name)

  assert again.returncode == 0, again.stderr
  assert _read(cassandra_session, fresh_keyspace_name, day, 1) == (3, 2)


def test_schema_command_takes_a_table_name_and_a_replication_map(
    cassandra_port, cassandra_session, fresh_keyspace_name):
  result = _run_schema_command(cassandra_port, '--keyspace', fresh_keyspace_name, '--table', 'daily_counts',
                               '--replication', '{"class": "SimpleStrategy", "replication_factor": 1}')

  assert result.returncode == 0, result.stderr
  tables = [r.table_name for r in cassandra_session.execute(
      'SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s', (fresh_keyspace_name,))]
  assert sorted(tables) == ['counted_offsets', 'daily_counts', 'reconcile_leases']  # the offset ledger too


@pytest.mark.parametrize('bad_name', ['x;DROP KEYSPACE system', '1abc', 'with-dash', 'a' * 49, '', '"quoted"'])
def test_a_bad_keyspace_name_is_refused_before_reaching_cassandra(cassandra_port, cassandra_session, bad_name):
  result = _run_schema_command(cassandra_port, '--keyspace', bad_name)

  assert result.returncode == 2
  assert 'not a valid CQL identifier' in result.stderr
  with pytest.raises(ValueError, match='keyspace name'):
    schema.create_schema(cassandra_session, bad_name)


@pytest.mark.parametrize('replication', [
    {'replication_factor': 1},
    {'class': "SimpleStrategy'} AND durable_writes = false; --", 'replication_factor': 1},
    {'class': 'SimpleStrategy', 'replication_factor': 1.5},
])
def test_a_bad_replication_map_is_refused(replication):
  with pytest.raises(ValueError, match='replication'):
    schema.replication_cql(replication)
