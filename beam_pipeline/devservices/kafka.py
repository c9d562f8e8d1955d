"""A single-node Kafka broker in KRaft mode (broker and controller in one JVM), on loopback."""

import base64
import subprocess
import uuid
from pathlib import Path
from typing import List, Optional

from beam_pipeline.processes import jvm
from beam_pipeline.devservices.credentials import (
    KAFKA_BROKER_USER, KAFKA_USER, SCRAM_MECHANISM, LocalCredentials, write_private)
from beam_pipeline.io.security import KafkaSecurity, SecretSource

HEAP = '512m'
_SUPPORTED_JAVA = (17, 21, 25)

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# Per-request and per-partition chatter would drown the lines that explain a failed start.
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.log.name = org.apache.kafka.storage.internals.log
logger.log.level = WARN
"""


def _listener_lines(port: int, controller_port: int, tls_port: Optional[int],
                    credentials: Optional[LocalCredentials]) -> List[str]:
  controller = f'CONTROLLER://127.0.0.1:{controller_port}'
  if credentials is None:
    return [
        f'listeners=PLAINTEXT://127.0.0.1:{port},{controller}',
        f'advertised.listeners=PLAINTEXT://127.0.0.1:{port}',
        'inter.broker.listener.name=PLAINTEXT',
        'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    ]
  keystore_password = credentials.keystore_password
  # Only the controller (a loopback port clients never see) stays plaintext; brokers talk SASL_SSL.
  return [
      f'listeners=SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{tls_port},{controller}',
      f'advertised.listeners=SASL_SSL://127.0.0.1:{port},SSL://127.0.0.1:{tls_port}',
      'inter.broker.listener.name=SASL_SSL',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL',
      f'sasl.enabled.mechanisms={SCRAM_MECHANISM}',
      f'sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}',
      f'listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config='
      'org.apache.kafka.common.security.scram.ScramLoginModule required '
      f'username="{KAFKA_BROKER_USER}" password="{credentials.secret("kafka-broker")}";',
      f'ssl.keystore.location={credentials.keystore}',
      'ssl.keystore.type=PKCS12',
      f'ssl.keystore.password={keystore_password}',
      f'ssl.key.password={keystore_password}',
      # The broker is also a client of itself (inter-broker SASL_SSL): it trusts the CA in the same store.
      f'ssl.truststore.location={credentials.keystore}',
      'ssl.truststore.type=PKCS12',
      f'ssl.truststore.password={keystore_password}',
  ]


def _new_cluster_id() -> str:
  """A random cluster id as Kafka writes them (URL-safe base64 of 16 bytes). One that starts with '-' is drawn
  again, as Kafka's own Uuid.randomUuid does: the storage tool would take it for an option and refuse to format."""
  while True:
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip('=')
    if not cluster_id.startswith('-'):
      return cluster_id


class KafkaBroker(jvm.JvmService):
  name = 'kafka'
  start_timeout_s = 120

  def __init__(self, home: Path, port: int, controller_port: int,
               credentials: Optional[LocalCredentials] = None, tls_port: Optional[int] = None,
               version: Optional[str] = None):
    """Plaintext on ``port``; with ``credentials``, SASL_SSL (SCRAM) on ``port`` and TLS only on ``tls_port``;
    ``version``: another Kafka release than the pom's (a broker of its own, ``kafka-<version>``)."""
    instance = 'kafka-secure' if credentials else (f'kafka-{version}' if version else None)
    super().__init__(home, port, instance=instance, version=version)
    self.controller_port = controller_port
    self.credentials = credentials
    self.tls_port = tls_port

  def client_security(self) -> KafkaSecurity:
    """How a client of this broker connects (SASL_SSL with the generated user, when secured)."""
    if self.credentials is None:
      return KafkaSecurity()
    return KafkaSecurity(protocol='SASL_SSL', sasl_mechanism=SCRAM_MECHANISM, username=KAFKA_USER,
                         password=SecretSource(file=str(self.credentials.kafka_password_file)),
                         ca_file=str(self.credentials.ca_file))

  def _write_config(self) -> Path:
    self.base.mkdir(parents=True, exist_ok=True)
    config = self.base / 'server.properties'
    # Owner-only: it may hold the broker's secrets.
    write_private(config, '\n'.join([
        'process.roles=broker,controller',
        'node.id=1',
        f'controller.quorum.voters=1@127.0.0.1:{self.controller_port}',
        'controller.listener.names=CONTROLLER',
        *_listener_lines(self.port, self.controller_port, self.tls_port, self.credentials),
        f'log.dirs={self.base / "data"}',
        # Topics are created on purpose (tests, the demo, operators), as on a production cluster.
        'auto.create.topics.enable=false',
        'num.partitions=4',
        'offsets.topic.replication.factor=1',
        'offsets.topic.num.partitions=8',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'share.coordinator.state.topic.replication.factor=1',
        'share.coordinator.state.topic.min.isr=1',
        # group.initial.rebalance.delay.ms stays at Kafka's default (3 s; Kafka's sample config sets 0 for
        # development): copies of the job started together then share the group's first assignment, as on
        # users' clusters.
        'log.retention.hours=168',
        # message.max.bytes stays at Kafka's default (about 1 MB), as on users' clusters: a test that sends larger
        # messages raises it on its own topic, as a user would.
        '',
    ]))
    (self.base / 'log4j2.properties').write_text(_LOG4J2)
    return config

  def _java_command(self, java: str, main_class: str, *args: str) -> list:
    return [
        java, f'-Xms{HEAP}', f'-Xmx{HEAP}', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20',
        '-Djava.awt.headless=true',
        f'-Dlog4j2.configurationFile={self.base / "log4j2.properties"}',
        '-cp', jvm.classpath(self.jars_dir), main_class, *args]

  def java(self) -> str:
    """The java that runs the broker (and, in the tests, Kafka's own Java clients)."""
    return jvm.find_java(_SUPPORTED_JAVA, 'Kafka 4')

  def start(self) -> int:
    java = self.java()
    config = self._write_config()
    if not (self.base / 'data' / 'meta.properties').exists():
      cluster_id = _new_cluster_id()
      scram_users = []
      if self.credentials is not None:
        for user, secret in ((KAFKA_USER, 'kafka'), (KAFKA_BROKER_USER, 'kafka-broker')):
          scram_users += ['--add-scram',
                          f'{SCRAM_MECHANISM}=[name={user},password={self.credentials.secret(secret)}]']
      result = subprocess.run(
          self._java_command(java, 'kafka.tools.StorageTool', 'format', '--cluster-id', cluster_id,
                             '--config', str(config), '--ignore-formatted', *scram_users),
          capture_output=True, text=True)
      if result.returncode != 0:
        raise jvm.JvmSetupError(f'formatting Kafka storage failed:\n{result.stdout}{result.stderr}')
    return self.process.start(self._java_command(java, 'kafka.Kafka', str(config)))

  def is_ready(self) -> bool:
    """A metadata request answered by the broker."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError, NoBrokersAvailable
    try:
      admin = KafkaAdminClient(
          bootstrap_servers=self.address, request_timeout_ms=3000, api_version_auto_timeout_ms=3000,
          **self.client_security().client_config())
    except (NoBrokersAvailable, OSError):
      return False
    try:
      admin.describe_cluster()
      return True
    except (KafkaError, OSError):
      return False
    finally:
      admin.close()
