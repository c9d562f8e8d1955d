"""How every part of the project connects to Cassandra: one place for hosts, port and driver policies."""

from typing import Optional, Sequence

from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

DEFAULT_REQUEST_TIMEOUT_S = 30.0
# Native protocol v5 is what Cassandra 4.0 and later speak; naming it avoids a downgrade dance on every connect.
DEFAULT_PROTOCOL_VERSION = 5


def build_cluster(hosts: Sequence[str], port: int, request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
                  protocol_version: int = DEFAULT_PROTOCOL_VERSION, local_dc: Optional[str] = None) -> Cluster:
  """A driver Cluster (not yet connected) that routes each statement to a replica of its partition."""
  profile = ExecutionProfile(
      load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=local_dc)),
      request_timeout=request_timeout_s)
  return Cluster(
      contact_points=list(hosts), port=port, protocol_version=protocol_version,
      execution_profiles={EXEC_PROFILE_DEFAULT: profile},
      connect_timeout=10, control_connection_timeout=10)
