"""The JVM side of the local services: which ``java`` runs them and where their jars come from.

Jars are resolved from Maven Central by the project's own poms (``services/<name>/pom.xml``) into
``.local/jars/<name>``; a hash of the pom is kept beside them so that a changed pom resolves again.
"""

import hashlib
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from beam_pipeline.processes.local_process import LocalProcess

_LOGGER = logging.getLogger(__name__)

_MARKER = '.resolved-from'


class JvmSetupError(RuntimeError):
  """No usable java, or Maven could not resolve a service's jars."""


def java_major_version(java: str) -> int:
  out = subprocess.run([java, '-version'], capture_output=True, text=True, check=True).stderr
  match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
  if not match:
    raise JvmSetupError(f'cannot read the version of {java}: {out.strip()}')
  major = int(match.group(1))
  return int(match.group(2)) if major == 1 else major


def find_java(supported: Iterable[int], purpose: str) -> str:
  """The first java among $JAVA_HOME, PATH and /usr/lib/jvm whose major version is supported."""
  supported = sorted(supported)
  candidates: List[str] = []
  if os.environ.get('JAVA_HOME'):
    candidates.append(os.path.join(os.environ['JAVA_HOME'], 'bin', 'java'))
  if shutil.which('java'):
    candidates.append(shutil.which('java'))
  jvm_root = Path('/usr/lib/jvm')
  if jvm_root.is_dir():
    candidates.extend(str(p / 'bin' / 'java') for p in sorted(jvm_root.iterdir()))
  seen = []
  for java in candidates:
    if not os.access(java, os.X_OK) or java in seen:
      continue
    seen.append(java)
    try:
      if java_major_version(java) in supported:
        return java
    except (OSError, subprocess.CalledProcessError):
      continue
  raise JvmSetupError(
      f'{purpose} needs Java {" or ".join(map(str, supported))}; none found among {seen or "no java at all"}. '
      'Install one (e.g. apt-get install openjdk-17-jdk-headless) or point JAVA_HOME at it.')


def resolve_jars(pom: Path, jars_dir: Path, properties: Optional[Dict[str, str]] = None) -> bool:
  """Runs Maven on ``pom`` (with ``properties`` set, such as another version) unless ``jars_dir`` already holds
  what it resolves (and builds, from the sources beside it); returns whether it ran."""
  properties = properties or {}
  sha = hashlib.sha256(pom.read_bytes())
  if properties:  # (a pom resolved as it is keeps the digest it always had)
    sha.update(repr(sorted(properties.items())).encode())
  for source in sorted((pom.parent / 'src').rglob('*')):
    if source.is_file():
      sha.update(source.read_bytes())
  digest = sha.hexdigest()
  marker = jars_dir / _MARKER
  if marker.exists() and marker.read_text().strip() == digest:
    return False
  mvn = shutil.which('mvn')
  if mvn is None:
    raise JvmSetupError('Maven (mvn) is needed to resolve the service jars: apt-get install maven')
  if jars_dir.exists():
    shutil.rmtree(jars_dir)
  _LOGGER.info('resolving %s with Maven into %s', pom, jars_dir)
  result = subprocess.run(
      [mvn, '-B', '-q', '-f', str(pom), 'package', f'-Djars.dir={jars_dir}',
       *(f'-D{name}={value}' for name, value in sorted(properties.items()))],
      capture_output=True, text=True)
  if result.returncode != 0:
    raise JvmSetupError(f'Maven failed to resolve {pom}:\n{(result.stdout + result.stderr)[-4000:]}')
  marker.write_text(digest + '\n')
  return True


def classpath(jars_dir: Path) -> str:
  jars = sorted(str(p) for p in jars_dir.glob('*.jar'))
  if not jars:
    raise JvmSetupError(f'no jars in {jars_dir}')
  return os.pathsep.join(jars)


class JvmService:
  """A service run from Maven-resolved jars: ``services/<name>/pom.xml`` -> ``.local/jars/<name>``, data in
  ``.local/<instance>``, one LocalProcess. Subclasses write their configuration and start the JVM.

  ``instance`` (default: the name) tells apart two runs of the same service, such as the secured pair; ``version``
  (default: the pom's) resolves another version of it (the pom's ``<name>.version`` property) into jars of its own.
  """

  name = ''
  start_timeout_s = 120.0  # how long a start may take before it counts as failed

  def __init__(self, home: Path, port: int, instance: Optional[str] = None, version: Optional[str] = None):
    self.home = home
    self.port = port
    self.instance = instance or self.name
    self.version = version
    self.base = home / '.local' / self.instance
    self.jars_dir = home / '.local' / 'jars' / (f'{self.name}-{version}' if version else self.name)
    self.pom = home / 'services' / self.name / 'pom.xml'
    self.process = LocalProcess(self.instance, home / '.local')

  @property
  def address(self) -> str:
    return f'127.0.0.1:{self.port}'

  def resolve_jars(self) -> bool:
    return resolve_jars(self.pom, self.jars_dir, {f'{self.name}.version': self.version} if self.version else None)
