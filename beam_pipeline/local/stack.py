"""The local Kafka + Cassandra pair that ``./run_local.sh up|down|status`` and the tests use.

Ports come from ``KAFKA_PORT`` (default 9092), ``KAFKA_CONTROLLER_PORT`` (9093), ``CASSANDRA_PORT`` (9042) and
``CASSANDRA_STORAGE_PORT`` (7000).
"""

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

from beam_pipeline.local.cassandra import CassandraServer
from beam_pipeline.local.kafka import KafkaBroker

KAFKA_START_TIMEOUT_S = 120
CASSANDRA_START_TIMEOUT_S = 240


def _port(variable: str, default: int) -> int:
  value = os.environ.get(variable, str(default))
  if not value.isdigit() or not 0 < int(value) < 65536:
    raise ValueError(f'{variable}={value!r} is not a TCP port (1-65535)')
  return int(value)


@dataclass
class LocalStack:
  kafka: KafkaBroker
  cassandra: CassandraServer

  @classmethod
  def from_environment(cls, home: Path) -> 'LocalStack':
    return cls(
        kafka=KafkaBroker(home, _port('KAFKA_PORT', 9092), _port('KAFKA_CONTROLLER_PORT', 9093)),
        cassandra=CassandraServer(home, _port('CASSANDRA_PORT', 9042), _port('CASSANDRA_STORAGE_PORT', 7000)))

  @property
  def services(self):
    return (self.kafka, self.cassandra)

  def up(self) -> List[str]:
    """Starts whatever is not running and waits until both answer; returns what it did, one line each."""
    report = []
    for service in self.services:
      started = time.monotonic()
      if service.resolve_jars():
        report.append(f'{service.name}: resolved jars in {time.monotonic() - started:.1f}s')
    starting = []
    for service in self.services:
      pid = service.process.pid()
      if pid is not None:
        report.append(f'{service.name}: already running (pid {pid}) on {service.address}')
        continue
      # Both JVMs boot in parallel; each is then waited for on its own.
      starting.append((service, service.start(), time.monotonic()))
    for service, pid, started in starting:
      timeout = KAFKA_START_TIMEOUT_S if service is self.kafka else CASSANDRA_START_TIMEOUT_S
      service.process.wait_until_ready(service.is_ready, timeout)
      report.append(f'{service.name}: started (pid {pid}) on {service.address}, '
                    f'answered after {time.monotonic() - started:.1f}s')
    return report

  def down(self, wipe: bool = False) -> List[str]:
    report = []
    for service in reversed(self.services):
      stopped = service.process.stop()
      report.append(f'{service.name}: {"stopped" if stopped else "was not running"}')
      if wipe and service.base.exists():
        shutil.rmtree(service.base)
        report.append(f'{service.name}: data removed ({service.base})')
    return report

  def status(self) -> List[str]:
    lines = []
    for service in self.services:
      pid = service.process.pid()
      if pid is None:
        lines.append(f'{service.name}: not running')
      else:
        state = 'answering' if service.is_ready() else 'NOT answering'
        lines.append(f'{service.name}: running (pid {pid}) on {service.address}, {state}; '
                     f'log {service.process.log_file}')
    return lines

  def all_ready(self) -> bool:
    return all(s.process.pid() is not None and s.is_ready() for s in self.services)
