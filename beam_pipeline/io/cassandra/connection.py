"""How every part of the project connects to Cassandra: one place for hosts, port, driver policies and
consistency levels.

Every statement runs under one of the Cluster's execution profiles, which carry its consistency: the default
profile at the write level (counter UPDATEs and batches, reconcile's corrections), ``READ_PROFILE`` at the read
level (reconcile's reads), ``LEASE_PROFILE`` for reconcile's lease transactions (serial LOCAL_SERIAL, committed at
the write level). No statement sets a level of its own, which would override its profile's.
"""

import dataclasses
from typing import Optional, Tuple

import apache_beam as beam

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

from beam_pipeline.io.cassandra.consistency import (
    DEFAULT_CONSISTENCY, LEASE_SERIAL_CONSISTENCY, lease_commit_consistency, level_value)
from beam_pipeline.io.security import CassandraSecurity

DEFAULT_PORT = 9042
DEFAULT_REQUEST_TIMEOUT_S = 30.0
# Native protocol v5 is what Cassandra 4.0 and later speak; naming it avoids a downgrade dance on every connect.
DEFAULT_PROTOCOL_VERSION = 5
READ_PROFILE = 'site_stats_read'
LEASE_PROFILE = 'site_stats_lease'


@dataclasses.dataclass(frozen=True)
class CassandraConnection:
  """Where the cluster is; picklable, so DoFns carry it and build the driver objects on the worker."""
  hosts: Tuple[str, ...]
  port: int = DEFAULT_PORT
  request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
  protocol_version: int = DEFAULT_PROTOCOL_VERSION
  local_dc: Optional[str] = None
  security: CassandraSecurity = CassandraSecurity()
  write_consistency: str = DEFAULT_CONSISTENCY  # a name of consistency.CONSISTENCY_LEVELS
  read_consistency: str = DEFAULT_CONSISTENCY

  @property
  def address(self) -> str:
    return ','.join(f'{host}:{self.port}' for host in self.hosts)

  def cluster(self, **driver_settings) -> Cluster:
    """A driver Cluster (not yet connected) that routes each statement to a replica of its partition, at the
    connection's consistency levels (see the module's docstring); ``driver_settings``: more of Cluster's arguments."""
    profiles = {
        EXEC_PROFILE_DEFAULT: self._profile(self.write_consistency),
        READ_PROFILE: self._profile(self.read_consistency),
        LEASE_PROFILE: self._profile(lease_commit_consistency(self.write_consistency), LEASE_SERIAL_CONSISTENCY)}
    return Cluster(
        contact_points=list(self.hosts), port=self.port, protocol_version=self.protocol_version,
        execution_profiles=profiles, connect_timeout=10, control_connection_timeout=10,
        **self.security.cluster_config(), **driver_settings)

  def _profile(self, consistency: str, serial_consistency: Optional[str] = None) -> ExecutionProfile:
    # A policy instance per profile: the driver populates each profile's policy with the cluster's hosts.
    return ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=self.local_dc)),
        request_timeout=self.request_timeout_s, consistency_level=level_value(consistency),
        serial_consistency_level=level_value(serial_consistency) if serial_consistency else None)


def build_cluster(hosts, port: int, security: CassandraSecurity = CassandraSecurity(), **driver_settings) -> Cluster:
  return CassandraConnection(tuple(hosts), port, security=security).cluster(**driver_settings)


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
