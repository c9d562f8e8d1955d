"""The package's layers, as the import-linter contracts in .importlinter state them, hold for the code as it is."""

import configparser
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

from beam_pipeline import REPO_ROOT
import beam_pipeline

_LINT_IMPORTS = str(Path(sys.executable).with_name('lint-imports'))
_ON_TOP = {'beam_pipeline.devservices', 'beam_pipeline.tools', 'beam_pipeline.testing'}


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
  """lint-imports on the package found under ``root``, with the repository's contracts."""
  return subprocess.run([_LINT_IMPORTS, '--no-cache', str(REPO_ROOT / '.importlinter')], cwd=root,
                        env={'PYTHONPATH': str(root), 'PATH': '/usr/bin:/bin', 'NO_COLOR': '1'},
                        capture_output=True, text=True, timeout=300)


def test_every_layer_contract_is_kept():
  result = _lint_imports(REPO_ROOT)

  assert result.returncode == 0, result.stdout + result.stderr
  assert 'Contracts: 3 kept, 0 broken.' in result.stdout


def test_the_contract_on_the_development_modules_covers_every_other_top_level_module():
  contracts = configparser.ConfigParser()
  contracts.read(REPO_ROOT / '.importlinter')
  sources = set(contracts['importlinter:contract:dev-only-on-top']['source_modules'].split())
  top_level = {f'beam_pipeline.{module.name}' for module in pkgutil.iter_modules(beam_pipeline.__path__)}

  assert sources == top_level - _ON_TOP


def test_a_pipeline_module_importing_the_development_services_breaks_the_contract(tmp_path):
  shutil.copytree(REPO_ROOT / 'beam_pipeline', tmp_path / 'beam_pipeline',
                  ignore=shutil.ignore_patterns('__pycache__'))
  with open(tmp_path / 'beam_pipeline' / 'metrics.py', 'a', encoding='utf-8') as metrics:
    metrics.write('\nfrom beam_pipeline.devservices import stack\n')

  result = _lint_imports(tmp_path)

  assert result.returncode == 1, result.stdout + result.stderr
  assert 'Only devservices, tools and testing import devservices, tools or testing BROKEN' in result.stdout
  assert 'beam_pipeline.metrics -> beam_pipeline.devservices.stack' in result.stdout
