"""Counters: those a dataset should give, those Cassandra holds, those a running Flink job shows.

A counter map is ``{(date, site_id): (views, clicks)}``, so that what was expected and what was written compare
with ``==``.
"""

import urllib.parse
from typing import Dict, List, Tuple

from beam_pipeline.tools import produce

CounterMap = Dict[Tuple, Tuple[int, int]]
_NAMES_PER_REQUEST = 20


def read_counters(session, keyspace: str, table: str = 'site_stats') -> CounterMap:
  return {(row.date.date(), row.site_id): (row.views, row.clicks)
          for row in session.execute(f'SELECT date, site_id, views, clicks FROM {keyspace}.{table}')}


def expected_counters(expected: produce.ExpectedTotals) -> CounterMap:
  return {key: (views, clicks) for key, (views, clicks) in expected.per_key.items()}


def without_zeros(counters: CounterMap) -> CounterMap:
  """The keys that count something: reconcile writes differences only, so a key of zero views and clicks has a
  row only if an increment wrote one."""
  return {key: value for key, value in counters.items() if value != (0, 0)}


def add_counters(*parts: CounterMap) -> CounterMap:
  """Per-key sums of several expected-counter maps."""
  total: CounterMap = {}
  for part in parts:
    for key, (views, clicks) in part.items():
      old_views, old_clicks = total.get(key, (0, 0))
      total[key] = (old_views + views, old_clicks + clicks)
  return total


def flink_job_counters(rest_address: str, job_name: str) -> Dict[str, int]:
  """The site_stats counters of the Flink job named ``job_name``, as Flink's REST API shows them while it runs:
  each operator's ``<subtask>.<operator>.site_stats_<counter>`` metrics, summed per counter."""
  from beam_pipeline.runners.flink.rest import rest_get
  job = flink_job(rest_address, job_name)
  totals: Dict[str, int] = {}
  for vertex in rest_get(rest_address, f'/jobs/{job["jid"]}')['vertices']:
    path = f'/jobs/{job["jid"]}/vertices/{vertex["id"]}/metrics'
    names = [m['id'] for m in rest_get(rest_address, path) if '.site_stats_' in m['id']]
    # A few names per request: Flink's REST server refuses a request line over 4 KB (404), and a vertex has a
    # metric per counter, per partition gauge and per subtask.
    for first in range(0, len(names), _NAMES_PER_REQUEST):
      chunk = ','.join(names[first:first + _NAMES_PER_REQUEST])
      for metric in rest_get(rest_address, f'{path}?get={urllib.parse.quote(chunk, safe=",")}'):
        counter = metric['id'].rsplit('.site_stats_', 1)[1]
        try:
          totals[counter] = totals.get(counter, 0) + int(metric['value'])
        except ValueError:
          pass  # a distribution, not a counter
  return totals


def flink_counter_by_subtask(rest_address: str, job_name: str, counter: str) -> List[int]:
  """One site_stats counter of the Flink job named ``job_name``, per subtask of the vertex that reports it (the
  fused reading vertex for messages_read), in subtask order."""
  from beam_pipeline.runners.flink.rest import rest_get
  job = flink_job(rest_address, job_name)
  for vertex in rest_get(rest_address, f'/jobs/{job["jid"]}')['vertices']:
    path = f'/jobs/{job["jid"]}/vertices/{vertex["id"]}'
    name = next((m['id'] for m in rest_get(rest_address, f'{path}/subtasks/0/metrics')
                 if m['id'].endswith(f'.site_stats_{counter}')), None)
    if name:
      return [int(rest_get(rest_address, f'{path}/subtasks/{subtask}/metrics?get={urllib.parse.quote(name)}')[0]
                  ['value']) for subtask in range(vertex['parallelism'])]
  raise LookupError(f'no vertex of {job_name} reports {counter}')


def flink_job(rest_address: str, job_name: str) -> dict:
  """The overview entry (id, name, state) of the Flink job named ``job_name``."""
  from beam_pipeline.runners.flink.rest import rest_get
  return next(j for j in rest_get(rest_address, '/jobs/overview')['jobs'] if j['name'] == job_name)
