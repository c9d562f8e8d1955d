"""The consistency levels a stage's requests carry on the wire, recorded by a CassandraConnection for tests.

The driver calls a session's request-init listeners (``Session.add_request_init_listener``) with each request's
ResponseFuture just before sending it; its ``message`` is the request as encoded, consistency levels included. A
stage given a ``RecordingConnection`` and run in this process (the local runner's default in-memory mode) builds
its Clusters from it, so every session it opens records its requests under the connection's ``log`` name.
"""

import collections
import dataclasses
import threading
from typing import Dict, List, Optional

from cassandra import ConsistencyLevel
from cassandra.query import BatchStatement, BoundStatement

from beam_pipeline.io.cassandra.connection import CassandraConnection

_LOCK = threading.Lock()
_RECORDED: Dict[str, List['Request']] = collections.defaultdict(list)


@dataclasses.dataclass(frozen=True)
class Request:
  """One request as sent: its CQL (``BATCH`` for a batch) and the level names it carries."""
  cql: str
  consistency: Optional[str]
  serial_consistency: Optional[str]


def _level_name(value) -> Optional[str]:
  return None if value is None else ConsistencyLevel.value_to_name[value]


def _record(response_future, log: str) -> None:
  statement, message = response_future.query, response_future.message
  if isinstance(statement, BatchStatement):
    cql = 'BATCH'
  elif isinstance(statement, BoundStatement):
    cql = statement.prepared_statement.query_string
  else:
    cql = statement.query_string
  request = Request(cql, _level_name(message.consistency_level), _level_name(message.serial_consistency_level))
  with _LOCK:  # sessions send from several threads
    _RECORDED[log].append(request)


class _RecordingCluster:
  """A driver Cluster whose sessions record their requests; anything else goes to the Cluster itself."""

  def __init__(self, cluster, log: str):
    self._cluster = cluster
    self._log = log

  def connect(self, *args, **kwargs):
    session = self._cluster.connect(*args, **kwargs)
    session.add_request_init_listener(_record, self._log)
    return session

  def __getattr__(self, name):
    return getattr(self._cluster, name)


@dataclasses.dataclass(frozen=True)
class RecordingConnection(CassandraConnection):
  """A CassandraConnection whose sessions record every request they send under ``log``."""
  log: str = 'requests'

  def cluster(self):
    return _RecordingCluster(super().cluster(), self.log)


def recorded(log: str) -> List[Request]:
  """Every request recorded under ``log`` so far, in the order they were sent."""
  with _LOCK:
    return list(_RECORDED[log])
