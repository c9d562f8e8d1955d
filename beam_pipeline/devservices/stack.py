"""The local Kafka + Cassandra pair that ``./run_local.sh up|down|status`` and the tests use.

Ports come from ``KAFKA_PORT`` (default 9092), ``KAFKA_CONTROLLER_PORT`` (9093), ``CASSANDRA_PORT`` (9042) and
``CASSANDRA_STORAGE_PORT`` (7000).

The secured pair (``--secure``) runs beside it with its own data and throwaway credentials (see credentials.py):
Kafka SASL_SSL/SCRAM on ``KAFKA_SECURE_PORT`` (9094) and TLS only on ``KAFKA_TLS_PORT`` (9096), its controller
on ``KAFKA_SECURE_CONTROLLER_PORT`` (9095); Cassandra with password authentication and client TLS on
``CASSANDRA_SECURE_PORT`` (9142), storage on ``CASSANDRA_SECURE_STORAGE_PORT`` (7010).
"""

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from beam_pipeline.devservices.cassandra import CassandraServer
from beam_pipeline.devservices.credentials import LocalCredentials
from beam_pipeline.devservices.kafka import KafkaBroker
from beam_pipeline.processes.lifecycle import all_ready, already_running_line, answered_line, status_lines, stop_line
from beam_pipeline.processes.ports import port_from_environment


_port = port_from_environment


@dataclass
class LocalStack:
  kafka: KafkaBroker
  cassandra: CassandraServer
  credentials: Optional[LocalCredentials] = None

  @classmethod
  def from_environment(cls, home: Path, secure: bool = False, kafka_version: Optional[str] = None,
                       cassandra_version: Optional[str] = None) -> 'LocalStack':
    """The plain pair, the secured pair, or a pair where ``kafka_version`` or ``cassandra_version`` names another
    release: that service runs on ports of its own (KAFKA_COMPAT_PORT, default 9192, and
    KAFKA_COMPAT_CONTROLLER_PORT, 9193; CASSANDRA_COMPAT_PORT, 9043, and CASSANDRA_COMPAT_STORAGE_PORT, 7001), and
    the other is the plain pair's."""
    if kafka_version or cassandra_version:
      kafka = (KafkaBroker(home, _port('KAFKA_COMPAT_PORT', 9192), _port('KAFKA_COMPAT_CONTROLLER_PORT', 9193),
                           version=kafka_version) if kafka_version
               else KafkaBroker(home, _port('KAFKA_PORT', 9092), _port('KAFKA_CONTROLLER_PORT', 9093)))
      cassandra = (CassandraServer(home, _port('CASSANDRA_COMPAT_PORT', 9043),
                                   _port('CASSANDRA_COMPAT_STORAGE_PORT', 7001), version=cassandra_version)
                   if cassandra_version
                   else CassandraServer(home, _port('CASSANDRA_PORT', 9042), _port('CASSANDRA_STORAGE_PORT', 7000)))
      return cls(kafka=kafka, cassandra=cassandra)
    if not secure:
      return cls(
          kafka=KafkaBroker(home, _port('KAFKA_PORT', 9092), _port('KAFKA_CONTROLLER_PORT', 9093)),
          cassandra=CassandraServer(home, _port('CASSANDRA_PORT', 9042), _port('CASSANDRA_STORAGE_PORT', 7000)))
    credentials = LocalCredentials(home / '.local' / 'secure')
    return cls(
        kafka=KafkaBroker(home, _port('KAFKA_SECURE_PORT', 9094), _port('KAFKA_SECURE_CONTROLLER_PORT', 9095),
                          credentials, tls_port=_port('KAFKA_TLS_PORT', 9096)),
        cassandra=CassandraServer(home, _port('CASSANDRA_SECURE_PORT', 9142),
                                  _port('CASSANDRA_SECURE_STORAGE_PORT', 7010), credentials),
        credentials=credentials)

  @property
  def services(self):
    return (self.kafka, self.cassandra)

  def up(self) -> List[str]:
    """Starts whatever is not running and waits until both answer; returns what it did, one line each."""
    report = []
    if self.credentials is not None and self.credentials.ensure():
      report.append(f'made throwaway certificates and passwords in {self.credentials.directory}')
      for service in self.services:
        # Data made with other credentials (Kafka keeps its SCRAM users) could not be used with these.
        if service.process.pid() is None and service.base.exists():
          shutil.rmtree(service.base)
    for service in self.services:
      started = time.monotonic()
      if service.resolve_jars():
        report.append(f'{service.name}: resolved jars in {time.monotonic() - started:.1f}s')
    starting = []
    for service in self.services:
      running = already_running_line(service)
      if running:
        report.append(running)
        continue
      # Both JVMs boot in parallel; each is then waited for on its own.
      starting.append((service, service.start(), time.monotonic()))
    for service, pid, started in starting:
      report.append(answered_line(service, pid, started))
    return report

  def down(self, wipe: bool = False) -> List[str]:
    report = []
    for service in reversed(self.services):
      report.append(stop_line(service))
      if wipe and service.base.exists():
        shutil.rmtree(service.base)
        report.append(f'{service.instance}: data removed ({service.base})')
    if wipe and self.credentials is not None:
      self.credentials.remove()
      report.append(f'credentials removed ({self.credentials.directory})')
    return report

  def status(self) -> List[str]:
    return status_lines(self.services)

  def connection_arguments(self) -> List[str]:
    """The job's options that connect it to this pair (security included; passwords by file)."""
    arguments = ['--bootstrap_servers', self.kafka.address,
                 '--cassandra_hosts', '127.0.0.1', '--cassandra_port', str(self.cassandra.port)]
    kafka, cassandra = self.kafka.client_security(), self.cassandra.client_security()
    if kafka.uses_sasl:
      arguments += ['--kafka_security_protocol', kafka.protocol, '--kafka_sasl_mechanism', kafka.sasl_mechanism,
                    '--kafka_username', kafka.username, '--kafka_password_file', kafka.password.file,
                    '--kafka_ssl_ca_file', kafka.ca_file]
    if cassandra.username:
      arguments += ['--cassandra_username', cassandra.username,
                    '--cassandra_password_file', cassandra.password.file,
                    '--cassandra_ssl', '--cassandra_ssl_ca_file', cassandra.ca_file]
    return arguments

  def all_ready(self) -> bool:
    return all_ready(self.services)
