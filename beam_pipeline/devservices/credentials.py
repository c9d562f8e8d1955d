"""Throwaway TLS certificates and passwords for the secured local stack (``./run_local.sh up --secure``).

Made once into ``.local/secure/`` with the JDK's ``keytool`` (no other tool needed) and kept as long as the
secured services' data is, since Kafka stores its SCRAM credentials when its storage is formatted:

  ca.pem                   the CA clients trust (``--kafka_ssl_ca_file``, ``--cassandra_ssl_ca_file``)
  server.p12               the services' key and certificate (CN=localhost, SAN localhost and 127.0.0.1)
  kafka.password           SASL/SCRAM-SHA-512 password of KAFKA_USER (``--kafka_password_file``)
  cassandra.password       password of CASSANDRA_USER (``--cassandra_password_file``)
  keystore.password, kafka-broker.password   the services' own secrets
Every file is readable by its owner only.
"""

import dataclasses
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from beam_pipeline.processes import jvm

KAFKA_USER = 'site-stats'
KAFKA_BROKER_USER = 'broker'
CASSANDRA_USER = 'site_stats'
SCRAM_MECHANISM = 'SCRAM-SHA-512'
_VALIDITY_DAYS = '365'
# The generated passwords, each in <name>.password.
_SECRETS = ('keystore', 'kafka', 'kafka-broker', 'cassandra')


def write_private(path: Path, text: str) -> None:
  """Writes ``text`` to a file only its owner can read, created so from the start."""
  fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
  with os.fdopen(fd, 'w') as out:
    out.write(text)


@dataclasses.dataclass(frozen=True)
class LocalCredentials:
  directory: Path

  @property
  def ca_file(self) -> Path:
    return self.directory / 'ca.pem'

  @property
  def keystore(self) -> Path:
    return self.directory / 'server.p12'

  def password_file(self, name: str) -> Path:
    return self.directory / f'{name}.password'

  @property
  def kafka_password_file(self) -> Path:
    return self.password_file('kafka')

  @property
  def cassandra_password_file(self) -> Path:
    return self.password_file('cassandra')

  def secret(self, name: str) -> str:
    return self.password_file(name).read_text().strip()

  @property
  def keystore_password(self) -> str:
    return self.secret('keystore')

  def exists(self) -> bool:
    return all(p.exists() for p in (self.ca_file, self.keystore, *map(self.password_file, _SECRETS)))

  def ensure(self) -> bool:
    """Makes the material unless it is all there; returns whether it made it."""
    if self.exists():
      return False
    if self.directory.exists():
      shutil.rmtree(self.directory)
    self.directory.mkdir(parents=True, mode=0o700)
    for name in _SECRETS:
      write_private(self.password_file(name), secrets.token_urlsafe(24) + '\n')
    self._make_certificates()
    return True

  def remove(self) -> None:
    if self.directory.exists():
      shutil.rmtree(self.directory)

  def _make_certificates(self) -> None:
    keytool = str(Path(jvm.find_java((11, 17, 21, 25), 'keytool')).parent / 'keytool')
    password = self.keystore_password
    ca_store, request, signed = (self.directory / n for n in ('ca.p12', 'server.csr', 'server.crt'))

    def run(*args: str) -> None:
      result = subprocess.run([keytool, *args], capture_output=True, text=True)
      if result.returncode != 0:
        raise jvm.JvmSetupError(f'keytool {args[0]} failed: {result.stdout}{result.stderr}')

    common = ('-storetype', 'PKCS12', '-storepass', password)
    run('-genkeypair', '-alias', 'ca', '-keyalg', 'RSA', '-keysize', '2048', '-validity', _VALIDITY_DAYS,
        '-dname', 'CN=site-stats local CA', '-ext', 'bc:c', '-keystore', str(ca_store), *common)
    run('-exportcert', '-rfc', '-alias', 'ca', '-keystore', str(ca_store), '-file', str(self.ca_file), *common)
    run('-genkeypair', '-alias', 'server', '-keyalg', 'RSA', '-keysize', '2048', '-validity', _VALIDITY_DAYS,
        '-dname', 'CN=localhost', '-keystore', str(self.keystore), *common)
    run('-certreq', '-alias', 'server', '-keystore', str(self.keystore), '-file', str(request), *common)
    run('-gencert', '-rfc', '-alias', 'ca', '-keystore', str(ca_store), '-infile', str(request),
        '-outfile', str(signed), '-validity', _VALIDITY_DAYS, '-ext', 'SAN=dns:localhost,ip:127.0.0.1', *common)
    run('-importcert', '-noprompt', '-alias', 'ca', '-file', str(self.ca_file), '-keystore', str(self.keystore),
        *common)
    run('-importcert', '-alias', 'server', '-file', str(signed), '-keystore', str(self.keystore), *common)
    for path in (ca_store, request, signed):
      path.unlink()
    for path in self.directory.iterdir():
      path.chmod(0o600)
