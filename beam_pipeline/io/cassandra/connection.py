"""How every part of the project connects to Cassandra: one place for hosts, port and driver policies."""

import dataclasses
from typing import Optional, Tuple

import apache_beam as beam

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from beam_pipeline.io.security import CassandraSecurity

DEFAULT_PORT = 9042
DEFAULT_REQUEST_TIMEOUT_S = 30.0
# Native protocol v5 is what Cassandra 4.0 and later speak; naming it avoids a downgrade dance on every connect.
DEFAULT_PROTOCOL_VERSION = 5


@dataclasses.dataclass(frozen=True)
class CassandraConnection:
  """Where the cluster is; picklable, so DoFns carry it and build the driver objects on the worker."""
  hosts: Tuple[str, ...]
  port: int = DEFAULT_PORT
  request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
  protocol_version: int = DEFAULT_PROTOCOL_VERSION
  local_dc: Optional[str] = None
  security: CassandraSecurity = CassandraSecurity()

  @property
  def address(self) -> str:
    return ','.join(f'{host}:{self.port}' for host in self.hosts)

  def cluster(self) -> Cluster:
    """A driver Cluster (not yet connected) that routes each statement to a replica of its partition."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=self.local_dc)),
        request_timeout=self.request_timeout_s)
    return Cluster(
        contact_points=list(self.hosts), port=self.port, protocol_version=self.protocol_version,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=10, control_connection_timeout=10, **self.security.cluster_config())


def build_cluster(hosts, port: int, security: CassandraSecurity = CassandraSecurity()) -> Cluster:
  return CassandraConnection(tuple(hosts), port, security=security).cluster()


class SessionPerBundleFn(beam.DoFn):
  """Base of the DoFns that talk to Cassandra: a driver Cluster for the DoFn's life (it cannot be pickled,
  so it is built in ``setup``), and a Session per bundle, opened and closed by the subclass's bundle methods."""

  def __init__(self, connection: CassandraConnection):
    self._connection = connection
    self._cluster = None
    self._session = None

  def setup(self):
    self._cluster = self._connection.cluster()

  def open_session(self):
    self.close_session()  # a bundle that failed in process() never reached finish_bundle
    self._session = self._cluster.connect()
    return self._session

  def close_session(self):
    session, self._session = self._session, None
    if session is not None:
      session.shutdown()

  def teardown(self):
    self.close_session()
    if self._cluster is not None:
      self._cluster.shutdown()
      self._cluster = None
