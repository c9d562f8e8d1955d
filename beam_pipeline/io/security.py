"""Credentials and TLS for the Kafka and Cassandra connections.

A password is never an option value: the job is told where to find it (an environment variable or a file) and
reads it only where a client is built, on the worker. So it appears in no command line, no pipeline options, no
display data, no pickled DoFn and no error message.
"""

import dataclasses
import os
import ssl
from typing import Optional

from beam_pipeline.compat.kafka import redact_admin_client_configuration
from beam_pipeline.switches import add_switch

KAFKA_SECURITY_PROTOCOLS = ('PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL')
KAFKA_SASL_MECHANISMS = ('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512')


class SecretError(ValueError):
  """A secret could not be read; the message names where it was looked for, never a value."""


@dataclasses.dataclass(frozen=True)
class SecretSource:
  """Where a secret lives: the name of an environment variable, or a file whose content (stripped) it is."""
  env: Optional[str] = None
  file: Optional[str] = None

  def __post_init__(self):
    if bool(self.env) == bool(self.file):
      raise ValueError('a secret comes from exactly one of an environment variable or a file')

  def describe(self) -> str:
    return f'environment variable {self.env}' if self.env else f'file {self.file}'

  def read(self) -> str:
    if self.env:
      value = os.environ.get(self.env)
      if not value:
        raise SecretError(f'environment variable {self.env} is not set (or empty)')
      return value
    try:
      with open(self.file, encoding='utf-8') as secret_file:
        value = secret_file.read().strip()
    except OSError as error:
      raise SecretError(f'cannot read the secret file {self.file}: {error.strerror}') from None
    if not value:
      raise SecretError(f'the secret file {self.file} is empty')
    return value


def secret_source(env: Optional[str], file: Optional[str], option_prefix: str) -> Optional[SecretSource]:
  """The SecretSource the ``--<prefix>_env`` / ``--<prefix>_file`` pair names, or None if neither is set."""
  if env and file:
    raise ValueError(f'give one of --{option_prefix}_env and --{option_prefix}_file, not both')
  if not env and not file:
    return None
  return SecretSource(env=env or None, file=file or None)


def _tls_context(ca_file: Optional[str], check_hostname: bool) -> ssl.SSLContext:
  context = ssl.create_default_context(cafile=ca_file)
  context.check_hostname = check_hostname
  return context


@dataclasses.dataclass(frozen=True)
class KafkaSecurity:
  """How the job's Kafka clients (reader, committer, dead-letter producer) authenticate and encrypt."""
  protocol: str = 'PLAINTEXT'
  sasl_mechanism: Optional[str] = None
  username: Optional[str] = None
  password: Optional[SecretSource] = None
  ca_file: Optional[str] = None
  check_hostname: bool = True

  @property
  def uses_sasl(self) -> bool:
    return self.protocol.startswith('SASL_')

  @property
  def uses_tls(self) -> bool:
    return self.protocol in ('SSL', 'SASL_SSL')

  def check(self) -> None:
    """Raises ValueError naming the option to fix."""
    if self.protocol not in KAFKA_SECURITY_PROTOCOLS:
      raise ValueError(f'--kafka_security_protocol={self.protocol!r}: use one of {", ".join(KAFKA_SECURITY_PROTOCOLS)}')
    if self.uses_sasl:
      if self.sasl_mechanism not in KAFKA_SASL_MECHANISMS:
        raise ValueError(f'--kafka_security_protocol={self.protocol} needs --kafka_sasl_mechanism, one of '
                         f'{", ".join(KAFKA_SASL_MECHANISMS)}')
      if not self.username or self.password is None:
        raise ValueError(f'--kafka_security_protocol={self.protocol} needs --kafka_username and its password in '
                         '--kafka_password_env (an environment variable) or --kafka_password_file')
    elif self.sasl_mechanism or self.username or self.password is not None:
      raise ValueError('--kafka_sasl_mechanism, --kafka_username and the Kafka password need '
                       '--kafka_security_protocol SASL_SSL (or SASL_PLAINTEXT)')
    if self.ca_file and not self.uses_tls:
      raise ValueError('--kafka_ssl_ca_file needs --kafka_security_protocol SSL or SASL_SSL')

  def client_config(self) -> dict:
    """kafka-python settings for KafkaConsumer / KafkaProducer / KafkaAdminClient; reads the password now."""
    config = {'security_protocol': self.protocol}
    if self.uses_tls:
      config['ssl_context'] = _tls_context(self.ca_file, self.check_hostname)
    if self.uses_sasl:
      # Before any client gets the password: the admin client would log it at DEBUG with its configuration.
      redact_admin_client_configuration()
      config.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.username,
                    sasl_plain_password=self.password.read())
    return config

  def librdkafka_config(self) -> dict:
    """The same settings under librdkafka's names (--kafka_client confluent); reads the password now."""
    config = {'security.protocol': self.protocol}
    if self.uses_tls:
      # Without a CA file, the system's trusted CAs, as for kafka-python.
      config['ssl.ca.location'] = self.ca_file or 'probe'
      config['ssl.endpoint.identification.algorithm'] = 'https' if self.check_hostname else 'none'
    if self.uses_sasl:
      config.update({'sasl.mechanism': self.sasl_mechanism, 'sasl.username': self.username,
                     'sasl.password': self.password.read()})
    return config


@dataclasses.dataclass(frozen=True)
class CassandraSecurity:
  """Password authentication and client-to-node TLS for the Cassandra driver."""
  username: Optional[str] = None
  password: Optional[SecretSource] = None
  tls: bool = False
  ca_file: Optional[str] = None
  check_hostname: bool = True

  def check(self) -> None:
    if bool(self.username) != (self.password is not None):
      raise ValueError('Cassandra authentication needs both --cassandra_username and its password in '
                       '--cassandra_password_env (an environment variable) or --cassandra_password_file')
    if self.ca_file and not self.tls:
      raise ValueError('--cassandra_ssl_ca_file needs --cassandra_ssl')

  def cluster_config(self) -> dict:
    """Arguments for ``cassandra.cluster.Cluster``; reads the password now."""
    config = {}
    if self.username:
      from cassandra.auth import PlainTextAuthProvider
      config['auth_provider'] = PlainTextAuthProvider(username=self.username, password=self.password.read())
    if self.tls:
      config['ssl_context'] = _tls_context(self.ca_file, self.check_hostname)
    return config


def add_kafka_security_arguments(parser) -> None:
  """The Kafka security options, shared by the job and the load generator (tools/produce.py)."""
  parser.add_argument('--kafka_security_protocol', default='PLAINTEXT', choices=KAFKA_SECURITY_PROTOCOLS,
                      help='How the job connects to the brokers: TLS (SSL), SASL (SASL_PLAINTEXT) or both '
                           '(SASL_SSL).')
  parser.add_argument('--kafka_sasl_mechanism', choices=KAFKA_SASL_MECHANISMS,
                      help='SASL mechanism for SASL_SSL / SASL_PLAINTEXT.')
  parser.add_argument('--kafka_username', help='SASL user name.')
  parser.add_argument('--kafka_password_env', metavar='VARIABLE',
                      help='Name of the environment variable (on the launcher and the workers) holding the SASL '
                           'password.')
  parser.add_argument('--kafka_password_file', metavar='PATH',
                      help='File (on the launcher and the workers) holding the SASL password.')
  parser.add_argument('--kafka_ssl_ca_file', metavar='PEM',
                      help='CA certificates to trust for the brokers\' TLS (default: the system\'s).')


def kafka_security_from(args) -> KafkaSecurity:
  """The KafkaSecurity that parsed ``add_kafka_security_arguments`` options describe (not checked yet)."""
  return KafkaSecurity(
      protocol=args.kafka_security_protocol, sasl_mechanism=args.kafka_sasl_mechanism, username=args.kafka_username,
      ca_file=args.kafka_ssl_ca_file,
      password=secret_source(args.kafka_password_env, args.kafka_password_file, 'kafka_password'))


def add_cassandra_security_arguments(parser) -> None:
  """The Cassandra security options, shared by the job and the schema command."""
  parser.add_argument('--cassandra_username', help='User for Cassandra password authentication.')
  parser.add_argument('--cassandra_password_env', metavar='VARIABLE',
                      help='Name of the environment variable holding the Cassandra password.')
  parser.add_argument('--cassandra_password_file', metavar='PATH', help='File holding the Cassandra password.')
  add_switch(parser, '--cassandra_ssl', False, help='Connect to Cassandra over TLS (client encryption).')
  parser.add_argument('--cassandra_ssl_ca_file', metavar='PEM',
                      help="With --cassandra_ssl: CA certificates to trust (default: the system's).")


def cassandra_security_from(args) -> CassandraSecurity:
  """The CassandraSecurity that parsed ``add_cassandra_security_arguments`` options describe."""
  return CassandraSecurity(
      username=args.cassandra_username, tls=args.cassandra_ssl, ca_file=args.cassandra_ssl_ca_file,
      password=secret_source(args.cassandra_password_env, args.cassandra_password_file, 'cassandra_password'))
