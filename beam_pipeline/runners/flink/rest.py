"""Flink's REST API: ``rest_get``, one JSON answer (its callers read jobs, configuration and metrics with it;
the job's counters are read in ``beam_pipeline/testing/counters.py``), and cancelling a job, which Beam's job
service cannot do."""

import json
import time
import urllib.error
import urllib.request
from typing import List

from beam_pipeline.processes.ports import port_open


def rest_get(rest_address: str, path: str, timeout_s: float = 5.0):
  """A JSON answer of Flink's REST API at ``host:port``."""
  with urllib.request.urlopen(f'http://{rest_address}{path}', timeout=timeout_s) as response:
    return json.loads(response.read())


_ENDED = ('FINISHED', 'CANCELED', 'FAILED')
_CANCEL_TIMEOUT_S = 60
_CANCEL_RETRY_S = 2


def cancel_flink_job(rest_addresses: List[str], job_name: str, timeout_s: float = _CANCEL_TIMEOUT_S) -> List[str]:
  """Cancels the running Flink jobs named ``job_name`` behind any of these REST addresses and waits until they have
  ended (their slots free); returns their ids.

  Beam's job service cannot do it: its cancel only stops waiting for the job, which Flink then runs on (and, its
  Python workers gone, restarts forever). A cancel that reaches a job just submitted may be dropped by Flink, so it
  is sent again until the job has ended."""
  cancelled = []
  for address in rest_addresses:
    if not port_open(_port(address)):
      continue
    try:
      jobs = rest_get(address, '/jobs/overview')['jobs']
    except (OSError, urllib.error.URLError, ValueError, KeyError):
      continue
    for job in jobs:
      if job['name'] == job_name and job['state'] not in _ENDED:
        _cancel_until_ended(address, job['jid'], timeout_s)
        cancelled.append(job['jid'])
  return cancelled


def _cancel_until_ended(address: str, job_id: str, timeout_s: float) -> None:
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      _send_cancel(address, job_id)
      resend = time.monotonic() + _CANCEL_RETRY_S
      while time.monotonic() < min(resend, deadline):
        if rest_get(address, f'/jobs/{job_id}')['state'] in _ENDED:
          return
        time.sleep(0.2)
    except urllib.error.HTTPError:
      raise
    except OSError:
      # Embedded Flink's REST endpoint closes with its mini cluster once the only job there has ended; while it
      # shuts down it may drop a connection before its port closes.
      if not port_open(_port(address)):
        return
      if time.monotonic() >= deadline:
        raise
      time.sleep(0.2)
      continue
    if time.monotonic() >= deadline:
      raise TimeoutError(f'the Flink job {job_id} at {address} did not end within {timeout_s:.0f}s of its cancel')


def _port(address: str) -> int:
  return int(address.rsplit(':', 1)[1])


def _send_cancel(address: str, job_id: str) -> None:
  request = urllib.request.Request(f'http://{address}/jobs/{job_id}?mode=cancel', method='PATCH')
  with urllib.request.urlopen(request, timeout=10):
    pass
