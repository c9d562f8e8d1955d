"""A Prometheus server for development (``./run_local.sh prometheus-up``): Debian's ``prometheus`` binary as a
local process on loopback, its data under ``.local/prometheus``, with the scrape configuration made from
``monitoring/prometheus.yml`` and the rules in ``monitoring/rules.yml``.

It scrapes the local runner's ``--metrics_port`` (``METRICS_PORT``, 9300), the Flink session cluster's reporters
(``FLINK_PROMETHEUS_PORT`` and the next port) and the embedded mini clusters' (the ports after those). Its own
port is ``PROMETHEUS_PORT`` (9090).
"""

import json
import re
import shutil
import string
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, List, Set

from beam_pipeline.processes.lifecycle import all_ready, ensure_running_line, status_lines, stop_line
from beam_pipeline.processes.local_process import LocalProcess, ServiceStartError
from beam_pipeline.processes.ports import port_from_environment
from beam_pipeline.runners.flink.jvm import embedded_prometheus_ports, prometheus_port

# A name in a PromQL expression that is one of the job's series (not a function, label or keyword).
_SERIES_NAME = re.compile(r'\bsite_stats_[a-z_]+\b')


class PrometheusServer:
  """Prometheus as a local process; ``query`` asks its HTTP API."""

  name = 'prometheus'
  start_timeout_s = 60

  def __init__(self, home: Path):
    self.home = home
    self.instance = self.name
    self.port = port_from_environment('PROMETHEUS_PORT', 9090)
    self.base = home / '.local' / self.name
    self.process = LocalProcess(self.name, home / '.local')

  @property
  def address(self) -> str:
    return f'127.0.0.1:{self.port}'

  def _write_config(self) -> Path:
    self.base.mkdir(parents=True, exist_ok=True)
    flink = prometheus_port()
    template = string.Template((self.home / 'monitoring' / 'prometheus.yml').read_text())
    config = template.substitute(
        rules_file=str(self.home / 'monitoring' / 'rules.yml'),
        local_runner_targets=json.dumps([f'127.0.0.1:{port_from_environment("METRICS_PORT", 9300)}']),
        flink_targets=json.dumps([f'127.0.0.1:{flink}', f'127.0.0.1:{flink + 1}']),
        embedded_flink_targets=json.dumps([f'127.0.0.1:{port}' for port in embedded_prometheus_ports()]))
    path = self.base / 'prometheus.yml'
    path.write_text(config)
    return path

  def start(self) -> int:
    binary = shutil.which('prometheus')
    if binary is None:
      raise ServiceStartError('prometheus is not installed: apt-get install prometheus (Debian) or put it on PATH')
    config = self._write_config()
    return self.process.start(
        [binary, f'--config.file={config}', f'--storage.tsdb.path={self.base / "data"}',
         f'--web.listen-address={self.address}'], cwd=self.base)

  def is_ready(self) -> bool:
    try:
      with urllib.request.urlopen(f'http://{self.address}/-/ready', timeout=2) as response:
        return response.status == 200
    except OSError:
      return False

  def query(self, expression: str) -> List[dict]:
    """The instant vector ``expression`` evaluates to now: ``[{'metric': {labels}, 'value': [time, 'text']}]``."""
    url = f'http://{self.address}/api/v1/query?' + urllib.parse.urlencode({'query': expression})
    with urllib.request.urlopen(url, timeout=10) as response:
      answer = json.load(response)
    if answer.get('status') != 'success':
      raise ValueError(f'Prometheus refused {expression!r}: {answer}')
    return answer['data']['result']

  def up(self) -> List[str]:
    return [ensure_running_line(self), f'Prometheus: http://{self.address} (rules: monitoring/rules.yml)']

  def down(self, wipe: bool = False) -> List[str]:
    report = [stop_line(self)]
    if wipe and self.base.exists():
      shutil.rmtree(self.base)
      report.append(f'{self.name}: data removed ({self.base})')
    return report

  def status(self) -> List[str]:
    return status_lines([self])

  def all_ready(self) -> bool:
    return all_ready([self])


def scrape(address: str) -> Dict[str, Dict[tuple, float]]:
  """A /metrics endpoint's samples, as prometheus_client's parser reads them: sample name -> {labels: value},
  the labels as a sorted tuple of pairs."""
  from prometheus_client.parser import text_string_to_metric_families
  with urllib.request.urlopen(f'http://{address}/metrics', timeout=5) as response:
    text = response.read().decode()
  samples: Dict[str, Dict[tuple, float]] = {}
  for family in text_string_to_metric_families(text):
    for sample in family.samples:
      samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
  return samples


def dashboard_expressions(home: Path) -> List[str]:
  """Every query of the Grafana dashboard in ``monitoring/dashboard.json``."""
  dashboard = json.loads((home / 'monitoring' / 'dashboard.json').read_text())
  return [target['expr'] for panel in dashboard['panels'] for target in panel.get('targets', ())]


def series_names(expression: str) -> Set[str]:
  """The job's series a PromQL expression names."""
  return set(_SERIES_NAME.findall(expression))


def recording_rules(home: Path) -> Dict[str, str]:
  """Recorded name -> expression, of every recording rule in ``monitoring/rules.yml``."""
  import yaml
  groups = yaml.safe_load((home / 'monitoring' / 'rules.yml').read_text())['groups']
  return {rule['record']: rule['expr'] for group in groups for rule in group['rules'] if 'record' in rule}
