"""Consistency levels: the ones the job accepts, and how many replicas of a keyspace each one needs.

A write counts as durable, and its offsets may be committed, once as many replicas as its level asks for have
acknowledged it; reconcile reads at a level of its own. The preflight compares each level with what the keyspace's
replication places and with the nodes that are up, so that a level no write could meet is refused at launch
rather than failing every bundle.
"""

import dataclasses
from typing import Dict, Mapping, Optional

from cassandra import ConsistencyLevel
from cassandra.metadata import NetworkTopologyStrategy, ReplicationStrategy, SimpleStrategy

# A majority of the local datacenter's replicas, for writes and reads alike, as the Spark Cassandra Connector.
DEFAULT_CONSISTENCY = 'LOCAL_QUORUM'
# ANY is left out: Cassandra refuses it for counter tables (and for reads); SERIAL and LOCAL_SERIAL only apply
# to lightweight transactions.
CONSISTENCY_LEVELS = ('ONE', 'TWO', 'THREE', 'QUORUM', 'ALL', 'LOCAL_QUORUM', 'EACH_QUORUM', 'LOCAL_ONE')
# Reconcile's leases are lightweight transactions; their Paxos round stays within the local datacenter.
LEASE_SERIAL_CONSISTENCY = 'LOCAL_SERIAL'
_LOCAL_LEVELS = ('LOCAL_ONE', 'LOCAL_QUORUM')
_FIXED_COUNTS = {'ONE': 1, 'TWO': 2, 'THREE': 3, 'LOCAL_ONE': 1}

# What a replication places where: replicas per datacenter; the key None stands for the whole cluster
# (SimpleStrategy ignores datacenters).
Placement = Dict[Optional[str], int]


def level_value(name: str) -> int:
  """The driver's ConsistencyLevel value of a level's name."""
  return ConsistencyLevel.name_to_value[name]


def lease_commit_consistency(write_consistency: str) -> str:
  """The commit level of reconcile's lease transactions: the write level, except that Cassandra refuses
  EACH_QUORUM for a lightweight transaction's commit (QUORUM is the nearest it takes)."""
  return 'QUORUM' if write_consistency == 'EACH_QUORUM' else write_consistency


def replication_map(strategy) -> Optional[Dict[str, str]]:
  """The replication map of a driver replication strategy (``KeyspaceMetadata.replication_strategy``), as CREATE
  KEYSPACE takes it; None for strategies the job does not reason about (LocalStrategy, EverywhereStrategy, ...)."""
  if isinstance(strategy, SimpleStrategy):
    return {'class': 'SimpleStrategy', 'replication_factor': str(strategy.replication_factor_info)}
  if isinstance(strategy, NetworkTopologyStrategy):
    return {'class': 'NetworkTopologyStrategy',
            **{dc: str(rf) for dc, rf in sorted(strategy.dc_replication_factors_info.items())}}
  return None


def placement(replication: Mapping) -> Optional[Placement]:
  """Replicas per datacenter of a replication map; None for a strategy the job does not reason about."""
  options = {str(key): str(value) for key, value in replication.items() if key != 'class'}
  strategy = ReplicationStrategy.create(str(replication.get('class', '')), options)
  if isinstance(strategy, SimpleStrategy):
    return {None: strategy.replication_factor_info.all_replicas}
  if isinstance(strategy, NetworkTopologyStrategy):
    return {dc: rf.all_replicas for dc, rf in strategy.dc_replication_factors_info.items()}
  return None


@dataclasses.dataclass(frozen=True)
class Shortfall:
  """Why a level cannot be met: it needs ``needed`` replicas in ``scope`` (a datacenter, or None for the whole
  cluster), the replication places ``placed`` there, and ``reachable`` of those are on nodes not known down."""
  level: str
  scope: Optional[str]
  needed: int
  placed: int
  reachable: int

  @property
  def replication_too_low(self) -> bool:
    return self.placed < self.needed


def _quorum(replicas: int) -> int:
  return replicas // 2 + 1


def shortfall(level: str, placed: Placement, nodes_up: Mapping[Optional[str], int],
              local_dc: Optional[str]) -> Optional[Shortfall]:
  """None when ``level`` can be met; otherwise the first shortfall. ``nodes_up`` counts the nodes not known to
  be down per datacenter, and under None in the whole cluster."""
  simple = None in placed
  total = sum(placed.values())
  if level == 'EACH_QUORUM' and not simple:
    demands = [(dc, _quorum(rf), rf) for dc, rf in sorted(placed.items()) if rf > 0]
  elif level in _LOCAL_LEVELS and not simple:
    if local_dc is None:
      return None  # no telling which datacenter is local: left to the writes themselves
    local = placed.get(local_dc, 0)
    demands = [(local_dc, _FIXED_COUNTS.get(level) or _quorum(local), local)]
  elif level in _FIXED_COUNTS:
    demands = [(None, _FIXED_COUNTS[level], total)]
  elif level == 'ALL':
    demands = [(None, total, total)]
  else:  # QUORUM; LOCAL_QUORUM and EACH_QUORUM on SimpleStrategy, which knows no datacenters
    demands = [(None, _quorum(total), total)]
  for scope, needed, in_scope in demands:
    if scope is not None:
      reachable = min(in_scope, nodes_up.get(scope, 0))
    elif simple:  # a replica per node at most
      reachable = min(total, nodes_up.get(None, 0))
    else:
      reachable = sum(min(rf, nodes_up.get(dc, 0)) for dc, rf in placed.items())
    if in_scope < needed or reachable < needed:
      return Shortfall(level, scope, needed, in_scope, reachable)
  return None


def raised_replication(replication: Mapping, placed: Placement, short: Shortfall,
                       local_dc: Optional[str]) -> Dict[str, str]:
  """The replication map with enough replicas to meet the level: more in the short datacenter (the local one
  when the level counts replicas anywhere), or a higher replication_factor for SimpleStrategy."""
  raised = {str(key): str(value) for key, value in replication.items()}
  if None in placed:
    key, current = 'replication_factor', placed[None]
  else:
    key = short.scope or local_dc
    current = placed.get(key, 0)
  raised[key] = str(current + short.needed - short.placed)
  return raised
