"""Flink's REST API, for what Beam's job service cannot do: cancel a job, read its metrics."""

import json
import urllib.error
import urllib.request
from typing import List

from beam_pipeline.processes.ports import port_open


def rest_get(rest_address: str, path: str, timeout_s: float = 5.0):
  """A JSON answer of Flink's REST API at ``host:port``."""
  with urllib.request.urlopen(f'http://{rest_address}{path}', timeout=timeout_s) as response:
    return json.loads(response.read())


def cancel_flink_job(rest_addresses: List[str], job_name: str) -> List[str]:
  """Cancels the running Flink jobs named ``job_name`` behind any of these REST addresses; returns their ids.

  Beam's job service cannot do it: its cancel only stops waiting for the job, which Flink then runs on (and, its
  Python workers gone, restarts forever)."""
  cancelled = []
  for address in rest_addresses:
    if not port_open(int(address.rsplit(':', 1)[1])):
      continue
    try:
      jobs = rest_get(address, '/jobs/overview')['jobs']
    except (OSError, urllib.error.URLError, ValueError, KeyError):
      continue
    for job in jobs:
      if job['name'] == job_name and job['state'] not in ('FINISHED', 'CANCELED', 'FAILED'):
        request = urllib.request.Request(f'http://{address}/jobs/{job["jid"]}?mode=cancel', method='PATCH')
        with urllib.request.urlopen(request, timeout=10):
          cancelled.append(job['jid'])
  return cancelled
