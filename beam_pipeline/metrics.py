"""Names of the pipeline's Beam metrics, stated once, and the per-partition gauges: the stages count under them,
the summary reads them, and ``PROMETHEUS`` says under which Prometheus name each one is served (the local runner's
``--metrics_port``; ``monitoring/rules.yml`` gives Flink's reporter series the same names)."""

import dataclasses
from typing import Dict, Optional, Tuple

from apache_beam.metrics import Metrics

NAMESPACE = 'site_stats'

MESSAGES_READ = 'messages_read'
# Offsets below a partition's log start that were reset past (--offset_reset): removed before they were read.
MESSAGES_LOST = 'messages_lost'
MESSAGES_PARSED = 'messages_parsed'
MESSAGES_VALID = 'messages_valid'
MESSAGES_COUNTED = 'messages_counted'
DEAD_LETTERED_PREFIX = 'dead_lettered_'  # + stage
CASSANDRA_WRITES = 'cassandra_writes'  # UPDATE statements, one per key per bundle
CASSANDRA_REQUESTS = 'cassandra_requests'  # round trips: single UPDATEs and counter batches
CASSANDRA_WRITE_BATCH = 'cassandra_writes_per_bundle'
CASSANDRA_BUNDLE_WRITE_MS = 'cassandra_bundle_write_ms'
DEAD_LETTERS_PUBLISHED = 'dead_letters_published'
SKIPPED_OTHER_DATES = 'skipped_other_dates'  # valid, but outside --dates
SKIPPED_ALREADY_COUNTED = 'skipped_already_counted'  # valid, but the offset ledger has them counted or uncertain
MESSAGES_UNCERTAIN = 'messages_uncertain'  # valid messages whose counter writes have an unknown outcome
RECONCILE_KEYS_CHECKED = 'reconcile_keys_checked'
RECONCILE_KEYS_CORRECTED = 'reconcile_keys_corrected'
RECONCILE_VIEWS_CORRECTED = 'reconcile_views_corrected'
RECONCILE_CLICKS_CORRECTED = 'reconcile_clicks_corrected'
DATE_TOTAL_PREFIX = 'date_total_'
# Gauges of a streaming reader, one per partition (see partition_metric).
PARTITION_LAG = 'partition_lag'  # messages between the read position and the partition's end
COMMITTED_OFFSET = 'committed_offset'  # the next offset the consumer group will read from
OFFSET_COMMITS_FAILED = 'offset_commits_failed'  # streaming commits that failed (the next finalization carries on)
UNCERTAIN_MESSAGES = 'uncertain_messages'  # offsets of a partition whose counting the offset ledger marks uncertain
PARTITION_HELD = 'partition_held'  # 1 while this copy of a streaming job holds the partition in its group, else 0
REBALANCES = 'rebalances'  # rebalances of its consumer group a local streaming copy took part in (its launcher's)
REBALANCE_MS = 'rebalance_ms'  # how long each took, from the revoke to holding the new assignment
# Beam's user metrics carry no labels, so a per-partition gauge names its topic and partition; Kafka topic names
# cannot hold this character.
_PARTITION_SEPARATOR = '/'


def date_total(measure: str, day_iso: str) -> str:
  return f'{DATE_TOTAL_PREFIX}{measure}_{day_iso}'


def dead_lettered(stage: str) -> str:
  return DEAD_LETTERED_PREFIX + stage


def partition_metric(metric: str, topic: str, partition: int) -> str:
  return f'{metric}{_PARTITION_SEPARATOR}{topic}{_PARTITION_SEPARATOR}{partition}'


@dataclasses.dataclass(frozen=True)
class PrometheusMetric:
  """How a Beam metric is served to Prometheus. ``name`` is the family's: a counter's samples add ``_total``, a
  summary's ``_count`` and ``_sum``. ``scale`` turns the Beam value into base units (milliseconds to seconds)."""
  name: str
  kind: str  # counter, gauge or summary
  help: str
  labels: Tuple[str, ...] = ()
  scale: float = 1.0


def _counter(name: str, help_text: str, labels: Tuple[str, ...] = ()) -> PrometheusMetric:
  return PrometheusMetric(f'{NAMESPACE}_{name}', 'counter', help_text, labels)


_PER_PARTITION = ('topic', 'partition')

# Beam metric -> Prometheus metric. A Beam name that ends in a label value (dead_lettered_<stage>, the partition
# gauges) is listed under its prefix. The per-date totals of a reconcile are not served: one series per date.
PROMETHEUS = {
    MESSAGES_READ: _counter('messages_read', 'Messages read from Kafka.'),
    MESSAGES_LOST: _counter('messages_lost',
                            'Messages removed from Kafka (retention, a recreated topic) before the job read them: '
                            'offsets below the log\'s start that --offset_reset skipped.'),
    MESSAGES_PARSED: _counter('messages_parsed', 'Messages that are one JSON object.'),
    MESSAGES_VALID: _counter('messages_valid', 'Messages that keep the data contract.'),
    MESSAGES_COUNTED: _counter('messages_counted', 'Messages added to the Cassandra counters.'),
    DEAD_LETTERED_PREFIX: _counter('dead_lettered', 'Messages refused, by the stage that refused them.', ('stage',)),
    DEAD_LETTERS_PUBLISHED: _counter('dead_letters_published', 'Dead letters published to the dead-letter topic.'),
    OFFSET_COMMITS_FAILED: _counter('offset_commits_failed',
                                    'Offset commits of a streaming read that failed or timed out; the next '
                                    'finalized bundle of the partition commits past them.'),
    SKIPPED_OTHER_DATES: _counter('skipped_other_dates', 'Valid messages outside --dates.'),
    SKIPPED_ALREADY_COUNTED: _counter('skipped_already_counted',
                                      'Valid messages not counted again: the offset ledger has them counted (or '
                                      'uncertain).'),
    MESSAGES_UNCERTAIN: _counter('messages_uncertain',
                                 'Valid messages whose counter writes had an unknown outcome: uncertain until '
                                 'reconciled.'),
    CASSANDRA_WRITES: _counter('cassandra_writes', 'Counter UPDATE statements (one per key per bundle).'),
    CASSANDRA_REQUESTS: _counter('cassandra_requests', 'Cassandra round trips: single UPDATEs and counter batches.'),
    CASSANDRA_BUNDLE_WRITE_MS: PrometheusMetric(
        f'{NAMESPACE}_cassandra_bundle_write_seconds', 'summary', 'Time a bundle took to write its counters.',
        scale=0.001),
    CASSANDRA_WRITE_BATCH: PrometheusMetric(
        f'{NAMESPACE}_cassandra_bundle_writes', 'summary', 'UPDATE statements a bundle wrote.'),
    RECONCILE_KEYS_CHECKED: _counter('reconcile_keys_checked', 'Keys a reconcile compared.'),
    RECONCILE_KEYS_CORRECTED: _counter('reconcile_keys_corrected', 'Keys a reconcile corrected.'),
    RECONCILE_VIEWS_CORRECTED: _counter('reconcile_views_corrected', 'Views a reconcile added (may be negative).'),
    RECONCILE_CLICKS_CORRECTED: _counter('reconcile_clicks_corrected', 'Clicks a reconcile added (may be negative).'),
    REBALANCES: _counter('rebalances', 'Rebalances of the consumer group this copy of the job took part in.'),
    REBALANCE_MS: PrometheusMetric(
        f'{NAMESPACE}_rebalance_seconds', 'summary',
        'How long each rebalance took this copy, from the revoke to holding its new partitions.', scale=0.001),
    PARTITION_LAG: PrometheusMetric(
        f'{NAMESPACE}_partition_lag', 'gauge', 'Messages between the read position and the partition\'s end.',
        _PER_PARTITION),
    COMMITTED_OFFSET: PrometheusMetric(
        f'{NAMESPACE}_committed_offset', 'gauge',
        'The consumer group\'s offset as the job last committed or read it (its next read).',
        _PER_PARTITION),
    UNCERTAIN_MESSAGES: PrometheusMetric(
        f'{NAMESPACE}_uncertain_messages', 'gauge',
        'Offsets of the partition whose counter writes had an unknown outcome, until their dates are reconciled.',
        _PER_PARTITION),
    PARTITION_HELD: PrometheusMetric(
        f'{NAMESPACE}_partition_held', 'gauge',
        '1 while this copy of the job holds the partition in its consumer group (docs/scaling.md), else 0.',
        _PER_PARTITION),
}


_PARTITION_GAUGES = (PARTITION_LAG, COMMITTED_OFFSET, UNCERTAIN_MESSAGES, PARTITION_HELD)


def prometheus_series(beam_name: str) -> Optional[Tuple[PrometheusMetric, Tuple[str, ...]]]:
  """The Prometheus metric a Beam metric of NAMESPACE is served as, with its label values; None: not served."""
  if beam_name in PROMETHEUS:
    return PROMETHEUS[beam_name], ()
  if beam_name.startswith(DEAD_LETTERED_PREFIX):
    return PROMETHEUS[DEAD_LETTERED_PREFIX], (beam_name[len(DEAD_LETTERED_PREFIX):],)
  metric, separator, topic_and_partition = beam_name.partition(_PARTITION_SEPARATOR)
  if separator and metric in _PARTITION_GAUGES:
    topic, _, partition = topic_and_partition.rpartition(_PARTITION_SEPARATOR)
    return PROMETHEUS[metric], (topic, partition)
  return None


class PartitionGauges:
  """One Beam gauge per partition for ``metric`` (one of _PARTITION_GAUGES)."""

  def __init__(self, metric: str):
    self._metric = metric
    self._gauges: Dict[Tuple[str, int], object] = {}

  def set(self, topic: str, partition: int, value: int) -> None:
    gauge = self._gauges.get((topic, partition))
    if gauge is None:
      gauge = self._gauges[(topic, partition)] = Metrics.gauge(
          NAMESPACE, partition_metric(self._metric, topic, partition))
    gauge.set(value)
