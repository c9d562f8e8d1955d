"""The end-of-run summary: the job's counters, read from a finished run's metrics."""

import dataclasses
import json
from typing import Dict

from apache_beam.metrics.metric import MetricsFilter

from beam_pipeline.compat.beam import fresh_metrics
from beam_pipeline.metrics import (
    DATE_TOTAL_PREFIX, CASSANDRA_REQUESTS, CASSANDRA_WRITES, DEAD_LETTERED_PREFIX, DEAD_LETTERS_PUBLISHED,
    MESSAGES_COUNTED, MESSAGES_LOST, MESSAGES_READ, MESSAGES_UNCERTAIN, NAMESPACE, SKIPPED_ALREADY_COUNTED,
    SKIPPED_OTHER_DATES)


@dataclasses.dataclass
class RunSummary:
  read: int
  counted: int
  dead_lettered: Dict[str, int]
  cassandra_writes: int
  cassandra_requests: int
  elapsed_s: float
  skipped_other_dates: int = 0
  skipped_already_counted: int = 0  # the offset ledger had them counted (or uncertain) before this run
  lost: int = 0  # removed from Kafka before they were read (--offset_reset skipped them)
  uncertain: int = 0  # their counter writes had an unknown outcome: ./run_backfill.sh --dates uncertain --mode reconcile repairs them
  # A window run publishes its dead letters only where told to; -1: the runner did not say.
  dead_letters_published: int = -1
  reconcile: Dict[str, int] = dataclasses.field(default_factory=dict)
  date_totals: Dict[str, Dict[str, int]] = dataclasses.field(default_factory=dict)

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
    if 0 <= self.dead_letters_published < self.dead_lettered_total:
      stages += f'; {self.dead_letters_published} published to Kafka'
    skipped = f', skipped (other dates) {self.skipped_other_dates}' if self.skipped_other_dates else ''
    if self.skipped_already_counted:
      skipped += f', skipped (already counted) {self.skipped_already_counted}'
    if self.lost:
      skipped += f', lost (removed from Kafka before they were read) {self.lost}'
    if self.uncertain:
      skipped += f', uncertain {self.uncertain} (repair: ./run_backfill.sh --dates uncertain --mode reconcile)'
    line = (f'read {self.read}, counted {self.counted}, dead-lettered {self.dead_lettered_total}'
            f'{f" ({stages})" if stages else ""}{skipped}, Cassandra writes {self.cassandra_writes} '
            f'in {self.cassandra_requests} requests, '
            f'elapsed {self.elapsed_s:.1f}s, {self.messages_per_s:,.0f} msgs/s')
    if self.reconcile:
      r = self.reconcile
      line += (f'\nreconcile: keys checked {r.get("keys_checked", 0)}, keys corrected {r.get("keys_corrected", 0)}, '
               f'views corrected {r.get("views_corrected", 0):+d}, clicks corrected {r.get("clicks_corrected", 0):+d}')
      for day, totals in sorted(self.date_totals.items()):
        line += f'\n  {day}: views {totals.get("views", 0)}, clicks {totals.get("clicks", 0)}'
    return line

  def json_line(self) -> str:
    return json.dumps(self.as_dict(), sort_keys=True)


def summarize(result, elapsed_s: float) -> RunSummary:
  """Reads the committed counters of a finished run."""
  totals: Dict[str, int] = {}
  for counter in fresh_metrics(result).query(MetricsFilter().with_namespace(NAMESPACE))['counters']:
    value = counter.committed if counter.committed is not None else counter.attempted
    totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
  return RunSummary(
      read=totals.get(MESSAGES_READ, 0),
      counted=totals.get(MESSAGES_COUNTED, 0),
      dead_lettered={name[len(DEAD_LETTERED_PREFIX):]: value for name, value in totals.items()
                     if name.startswith(DEAD_LETTERED_PREFIX)},
      cassandra_writes=totals.get(CASSANDRA_WRITES, 0),
      cassandra_requests=totals.get(CASSANDRA_REQUESTS, 0),
      elapsed_s=elapsed_s,
      skipped_other_dates=totals.get(SKIPPED_OTHER_DATES, 0),
      skipped_already_counted=totals.get(SKIPPED_ALREADY_COUNTED, 0),
      lost=totals.get(MESSAGES_LOST, 0),
      uncertain=totals.get(MESSAGES_UNCERTAIN, 0),
      dead_letters_published=totals.get(DEAD_LETTERS_PUBLISHED, 0),
      reconcile={name[len('reconcile_'):]: value for name, value in totals.items() if name.startswith('reconcile_')},
      date_totals=_date_totals(totals))


def _date_totals(totals: Dict[str, int]) -> Dict[str, Dict[str, int]]:
  by_day: Dict[str, Dict[str, int]] = {}
  for name, value in totals.items():
    if name.startswith(DATE_TOTAL_PREFIX):
      measure, day = name[len(DATE_TOTAL_PREFIX):].split('_', 1)
      by_day.setdefault(day, {})[measure] = value
  return by_day
