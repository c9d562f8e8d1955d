"""Names of the pipeline's Beam metrics, and the end-of-run summary built from them."""

import dataclasses
import json
from typing import Dict

NAMESPACE = 'site_stats'

MESSAGES_READ = 'messages_read'
MESSAGES_PARSED = 'messages_parsed'
MESSAGES_VALID = 'messages_valid'
MESSAGES_COUNTED = 'messages_counted'
DEAD_LETTERED_PREFIX = 'dead_lettered_'  # + stage
CASSANDRA_WRITES = 'cassandra_writes'  # UPDATE statements, one per key per bundle
CASSANDRA_REQUESTS = 'cassandra_requests'  # round trips: single UPDATEs and counter batches
CASSANDRA_WRITE_BATCH = 'cassandra_writes_per_bundle'
CASSANDRA_BUNDLE_WRITE_MS = 'cassandra_bundle_write_ms'
DEAD_LETTERS_PUBLISHED = 'dead_letters_published'


def dead_lettered(stage: str) -> str:
  return DEAD_LETTERED_PREFIX + stage


@dataclasses.dataclass
class RunSummary:
  read: int
  counted: int
  dead_lettered: Dict[str, int]
  cassandra_writes: int
  cassandra_requests: int
  elapsed_s: float

  @property
  def dead_lettered_total(self) -> int:
    return sum(self.dead_lettered.values())

  @property
  def messages_per_s(self) -> float:
    return self.read / self.elapsed_s if self.elapsed_s > 0 else 0.0

  def as_dict(self) -> dict:
    return {**dataclasses.asdict(self), 'dead_lettered_total': self.dead_lettered_total,
            'messages_per_s': round(self.messages_per_s, 1)}

  def text(self) -> str:
    stages = ', '.join(f'{stage} {count}' for stage, count in sorted(self.dead_lettered.items()) if count)
    return (f'read {self.read}, counted {self.counted}, dead-lettered {self.dead_lettered_total}'
            f'{f" ({stages})" if stages else ""}, Cassandra writes {self.cassandra_writes} '
            f'in {self.cassandra_requests} requests, '
            f'elapsed {self.elapsed_s:.1f}s, {self.messages_per_s:,.0f} msgs/s')

  def json_line(self) -> str:
    return json.dumps(self.as_dict(), sort_keys=True)


def summarize(result, elapsed_s: float) -> RunSummary:
  """Reads the committed counters of a finished run."""
  from apache_beam.metrics.metric import MetricsFilter
  totals: Dict[str, int] = {}
  for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))['counters']:
    value = counter.committed if counter.committed is not None else counter.attempted
    totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
  return RunSummary(
      read=totals.get(MESSAGES_READ, 0),
      counted=totals.get(MESSAGES_COUNTED, 0),
      dead_lettered={name[len(DEAD_LETTERED_PREFIX):]: value for name, value in totals.items()
                     if name.startswith(DEAD_LETTERED_PREFIX)},
      cassandra_writes=totals.get(CASSANDRA_WRITES, 0),
      cassandra_requests=totals.get(CASSANDRA_REQUESTS, 0),
      elapsed_s=elapsed_s)
