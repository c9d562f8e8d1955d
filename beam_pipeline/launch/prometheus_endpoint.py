"""The local runner's Prometheus endpoint (``--metrics_port``): the running job's Beam metrics, served by
``prometheus_client`` at ``http://localhost:<port>/metrics`` under the names in ``metrics.PROMETHEUS``.

Beam's local runner reports metrics only once a job ends; the launcher's bundle hook (``launch/run.py``) hands
each bundle's metrics here as the bundle completes, so a streaming job's counters and lag are current.
"""

import threading
from typing import Dict, Tuple

from apache_beam.metrics import monitoring_infos
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

from beam_pipeline import metrics
from beam_pipeline.errors import OptionError

_FAMILY_OF_KIND = {'counter': CounterMetricFamily, 'gauge': GaugeMetricFamily, 'summary': SummaryMetricFamily}


class BundleMetrics:
  """The job's metrics so far, added up from each bundle's; a prometheus_client collector. Counters add up,
  distributions add their count and sum, and a gauge keeps its newest value."""

  def __init__(self):
    self._lock = threading.Lock()
    self._counters: Dict[str, int] = {}
    self._gauges: Dict[str, Tuple[int, int]] = {}  # name -> (timestamp, value)
    self._distributions: Dict[str, Tuple[int, int]] = {}  # name -> (count, sum)

  def add_bundle(self, bundle_response) -> None:
    with self._lock:
      for info in bundle_response.process_bundle.monitoring_infos:
        if not monitoring_infos.is_user_monitoring_info(info):
          continue
        namespace, name = monitoring_infos.parse_namespace_and_name(info)
        if namespace != metrics.NAMESPACE:
          continue
        if monitoring_infos.is_counter(info):
          self._counters[name] = self._counters.get(name, 0) + monitoring_infos.extract_counter_value(info)
        elif monitoring_infos.is_gauge(info):
          timestamp, value = monitoring_infos.extract_gauge_value(info)
          if name not in self._gauges or timestamp >= self._gauges[name][0]:
            self._gauges[name] = (timestamp, value)
        elif monitoring_infos.is_distribution(info):
          count, total, _, _ = monitoring_infos.extract_distribution(info)
          before = self._distributions.get(name, (0, 0))
          self._distributions[name] = (before[0] + count, before[1] + total)

  def rebalanced(self, took_s: float) -> None:
    """A rebalance of the copy's consumer group (the launcher's own figure, not a bundle's)."""
    with self._lock:
      self._counters[metrics.REBALANCES] = self._counters.get(metrics.REBALANCES, 0) + 1
      count, total = self._distributions.get(metrics.REBALANCE_MS, (0, 0))
      self._distributions[metrics.REBALANCE_MS] = (count + 1, total + int(took_s * 1000))

  def collect(self):
    with self._lock:
      values = [*self._counters.items(), *((name, value) for name, (_, value) in self._gauges.items()),
                *self._distributions.items()]
    # Unlabelled counters are served from the start, at 0: a rate over them is defined before the first bundle.
    values += [(name, 0) for name, metric in metrics.PROMETHEUS.items()
               if metric.kind == 'counter' and not metric.labels and name not in self._counters]
    families = {}
    for name, value in sorted(values):
      series = metrics.prometheus_series(name)
      if series is None:
        continue
      metric, label_values = series
      family = families.get(metric.name)
      if family is None:
        family = families[metric.name] = _FAMILY_OF_KIND[metric.kind](
            metric.name, metric.help, labels=metric.labels)
      if metric.kind == 'summary':
        count, total = value
        family.add_metric(label_values, count_value=count, sum_value=total * metric.scale)
      else:
        family.add_metric(label_values, value * metric.scale)
    yield from families.values()


class PrometheusEndpoint:
  """Serves a BundleMetrics on ``port`` (all interfaces, as a scraped process must) until closed."""

  def __init__(self, port: int):
    self.metrics = BundleMetrics()
    registry = CollectorRegistry()
    registry.register(self.metrics)
    try:
      self._server, self._thread = start_http_server(port, registry=registry)
    except OSError as error:
      raise OptionError(f'--metrics_port {port}: cannot serve metrics there ({error.strerror or error})') from error
    self.port = port

  def close(self) -> None:
    self._server.shutdown()
    self._server.server_close()
