"""The private names of other libraries that beam_pipeline.compat relies on still exist and mean what compat
assumes; an unknown library version is refused; and no module outside compat/ uses another library's private
names."""

import ast
import importlib
import importlib.metadata
import inspect
import json
import logging
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from types import SimpleNamespace

import apache_beam as beam
import marshmallow
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability import portable_runner
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.worker import sdk_worker_main
from apache_beam.transforms import environments
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import client as admin_client_module
from kafka.client_async import KafkaClient
from marshmallow import fields

import beam_pipeline
from beam_pipeline.compat import UnsupportedVersionError, require_version
from beam_pipeline.compat import beam as beam_compat
from beam_pipeline.compat import kafka as kafka_compat
from beam_pipeline.io.security import KafkaSecurity, SecretSource
from beam_pipeline.transforms.contract_decoder import ContractDecoder
from beam_pipeline.transforms.validate import SiteEventSchema

PACKAGE = Path(beam_pipeline.__file__).parent
COMPAT = PACKAGE / 'compat'


def _parameters(function) -> list:
  return list(inspect.signature(function).parameters)


# --- require_version -------------------------------------------------------------------------------------------

def test_an_unknown_version_is_refused_in_one_line_naming_the_library_the_version_and_the_known_ones():
  installed = importlib.metadata.version('kafka-python')
  with pytest.raises(UnsupportedVersionError) as refused:
    require_version('kafka-python', ('0.1.', '0.2.'))
  message = str(refused.value)
  assert '\n' not in message
  assert 'kafka-python' in message and installed in message and '0.1., 0.2.' in message


def test_the_installed_versions_are_known():
  assert beam_compat.BEAM_VERSION == beam.__version__
  assert kafka_compat.KAFKA_PYTHON_VERSION == importlib.metadata.version('kafka-python')


@pytest.mark.parametrize('module', sorted(p.name for p in COMPAT.glob('*.py') if p.name != '__init__.py'))
def test_every_compat_module_checks_the_library_version_when_imported(module):
  tree = ast.parse((COMPAT / module).read_text())
  checks = [node for node in tree.body if isinstance(node, (ast.Assign, ast.Expr))
            and isinstance(node.value, ast.Call) and getattr(node.value.func, 'id', None) == 'require_version']
  assert checks, f'compat/{module} does not call require_version at import'


# --- Apache Beam -----------------------------------------------------------------------------------------------

def test_beams_runner_still_has_the_bundle_hooks_the_local_runner_overrides():
  assert _parameters(fn_runner.FnApiRunner._run_bundle) == [
      'self', 'runner_execution_context', 'bundle_context_manager', 'bundle_input', 'data_output',
      'expected_timer_output', 'bundle_manager']
  # The first item of what it returns is the bundle's response, which the progress display reads.
  assert 'InstructionResponse' in str(inspect.signature(fn_runner.FnApiRunner._run_bundle).return_annotation)
  assert _parameters(fn_runner.FnApiRunner._get_bundle_manager) == ['self', 'bundle_context_manager']


def test_beams_runner_still_chooses_its_parallel_bundle_manager_for_several_workers():
  stage = SimpleNamespace(is_stateful=lambda: False)
  runner = fn_runner.FnApiRunner(progress_request_frequency=7.0)
  manager = runner._get_bundle_manager(SimpleNamespace(num_workers=2, stage=stage))
  assert type(manager) is fn_runner.ParallelBundleManager
  assert manager._progress_frequency == 7.0 and runner._progress_frequency == 7.0
  assert manager._cache_token_generator is not None
  replaced = beam_compat.FnApiRunnerWithBundleHooks()._get_bundle_manager(SimpleNamespace(num_workers=2, stage=stage))
  assert type(replaced) is beam_compat.ResidualKeepingParallelBundleManager


def test_beams_bundle_managers_still_keep_their_settings_where_compat_reads_them():
  tokens = iter(())
  manager = fn_runner.BundleManager(None, 3.0, cache_token_generator=tokens)
  assert manager._progress_frequency == 3.0 and manager._cache_token_generator is tokens
  assert _parameters(fn_runner.ParallelBundleManager.process_bundle) == _parameters(
      beam_compat.ResidualKeepingParallelBundleManager.process_bundle)


def test_beams_multi_processing_worker_command_is_still_the_payload_that_compat_rewrites():
  assert f'-m {beam_compat.BEAM_WORKER_MODULE}' in inspect.getsource(fn_runner.FnApiRunner.run_pipeline)
  command = f'{sys.executable} -m {beam_compat.BEAM_WORKER_MODULE}'
  pipeline = beam.Pipeline()
  _ = pipeline | beam.Create([1]) | beam.Map(lambda value: value)
  proto = pipeline.to_runner_api(
      default_environment=environments.SubprocessSDKEnvironment.from_command_string(command_string=command))
  beam_compat.use_worker_module(proto, 'some.worker')
  payloads = {env.payload for env in proto.components.environments.values()}
  assert f'{sys.executable} -m some.worker'.encode() in payloads


def test_beams_option_parser_and_option_declarations_are_still_where_compat_reads_them():
  assert 'allow_abbrev' in _parameters(beam_compat.pipeline_options._BeamArgumentParser)
  assert isinstance(inspect.getattr_static(PipelineOptions, '_add_argparse_args'), classmethod)
  assert {'--runner', '--direct_num_workers', '--streaming'} <= beam_compat.declared_option_strings()


def test_beams_portable_result_still_caches_its_metrics_where_compat_drops_them():
  assert 'self._metrics = None' in inspect.getsource(portable_runner.PipelineResult.__init__)
  assert 'self._metrics' in inspect.getsource(portable_runner.PipelineResult.metrics)


def test_beams_worker_main_still_reads_the_environment_the_flink_worker_provides():
  source = inspect.getsource(sdk_worker_main)
  for variable in ('WORKER_ID', 'PIPELINE_OPTIONS', 'CONTROL_API_SERVICE_DESCRIPTOR',
                   'LOGGING_API_SERVICE_DESCRIPTOR', 'RUNNER_CAPABILITIES'):
    assert f"'{variable}'" in source, variable


# --- kafka-python ----------------------------------------------------------------------------------------------

def test_the_consumers_client_is_still_where_compat_reads_it(bootstrap_servers, topic):
  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(','), enable_auto_commit=False)
  try:
    client = consumer._client
    assert isinstance(client, KafkaClient)
    assert {'timeout_ms', 'future'} <= set(_parameters(client.poll))
    for name in ('request_update', 'topics', 'brokers', 'need_all_topic_metadata'):
      assert hasattr(client.cluster, name), name
    assert kafka_compat.refresh_metadata(consumer, 30)
    assert topic in kafka_compat.cluster_topics(consumer, 30)
    assert kafka_compat.broker_count(consumer) >= 1
  finally:
    consumer.close(autocommit=False)


def test_a_subscribed_consumers_coordinator_still_takes_the_rejoin_request_compat_sends(bootstrap_servers, topic):
  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(','), group_id=f'{topic}-compat',
                           enable_auto_commit=False)
  try:
    consumer.subscribe(topics=[topic])
    consumer.poll(timeout_ms=5000)  # joined: nothing left to do
    assert consumer.assignment() and not consumer._coordinator.need_rejoin()
    kafka_compat.finish_rebalance(consumer)
    assert consumer._coordinator.need_rejoin()
  finally:
    consumer.close(autocommit=False)


def test_the_admin_clients_configuration_log_line_is_still_the_one_compat_redacts():
  assert admin_client_module.log.name == kafka_compat.ADMIN_CLIENT_LOGGER
  assert kafka_compat.ADMIN_CLIENT_CONFIGURATION_MESSAGE in inspect.getsource(KafkaAdminClient.__init__)


def test_the_admin_clients_configuration_log_line_never_shows_the_password(bootstrap_servers, caplog, monkeypatch):
  password = f'secret-{uuid.uuid4().hex}'
  monkeypatch.setenv('SITE_STATS_TEST_KAFKA_PASSWORD', password)
  sasl = KafkaSecurity('SASL_PLAINTEXT', 'PLAIN', 'user', SecretSource(env='SITE_STATS_TEST_KAFKA_PASSWORD'))
  # The job's SASL settings, on the plain listener: PLAINTEXT ignores them, yet the client logs every setting.
  settings = dict(sasl.client_config(), security_protocol='PLAINTEXT')
  with caplog.at_level(logging.DEBUG, logger=kafka_compat.ADMIN_CLIENT_LOGGER):
    KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(','), **settings).close()
  lines = [record.getMessage() for record in caplog.records
           if record.getMessage().startswith(kafka_compat.ADMIN_CLIENT_CONFIGURATION_MESSAGE)]
  assert lines and all(password not in line and '<redacted>' in line for line in lines)


# --- marshmallow -----------------------------------------------------------------------------------------------

def test_marshmallows_custom_field_extension_point_keeps_its_signature():
  assert _parameters(fields.Field._deserialize) == ['self', 'value', 'attr', 'data', 'kwargs']


def test_a_schema_with_a_load_hook_is_not_compiled():
  class HookedSchema(SiteEventSchema):
    @marshmallow.pre_load
    def rename(self, data, **kwargs):
      return data

  assert ContractDecoder(SiteEventSchema).compiled
  assert not ContractDecoder(HookedSchema).compiled


# --- no private names of other libraries outside compat/ -------------------------------------------------------

# Methods that a library documents as the way to extend its classes, though they start with an underscore.
EXTENSION_POINTS = {
    '_deserialize': fields.Field,  # a custom marshmallow field
    '_add_argparse_args': PipelineOptions,  # a job's own pipeline options
}
# The named tuple's own public methods: underscored so as not to clash with field names (collections docs).
NAMED_TUPLE_METHODS = {'_replace', '_asdict', '_make', '_fields'}


def _is_private(name: str) -> bool:
  return name.startswith('_') and not name.startswith('__')


def _is_other_library(module: str) -> bool:
  top = module.split('.')[0]
  return top != 'beam_pipeline' and top not in sys.stdlib_module_names


def defined_names(source: str) -> set:
  """The names ``source`` gives to its own things: functions, classes, variables, and what it sets on ``self``
  or ``cls``."""
  defined = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
      defined.add(node.name)
    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
      defined.add(node.id)
    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and ast.unparse(node.value) in (
        'self', 'cls'):
      defined.add(node.attr)
  return defined


def private_uses(source: str, package_names: frozenset = frozenset()) -> list:
  """Another library's private names in ``source``: imports of them, and attribute accesses ``x._name`` where
  ``x`` is another library's module, or where ``_name`` is not one of our own names: for ``self``, ``cls`` and
  ``super()`` one defined anywhere in ``package_names`` or ``source`` (a base class of ours may define it),
  for any other object one defined in ``source`` itself, other than an extension point."""
  tree = ast.parse(source)
  origins, defined = {}, defined_names(source)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        origins[alias.asname or alias.name.split('.')[0]] = alias.name
    elif isinstance(node, ast.ImportFrom):
      for alias in node.names:
        origins[alias.asname or alias.name] = 'beam_pipeline' if node.level else node.module
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found += [f'line {node.lineno}: import {a.name}' for a in node.names
                if _is_other_library(a.name) and any(_is_private(part) for part in a.name.split('.'))]
    elif isinstance(node, ast.ImportFrom) and not node.level and _is_other_library(node.module):
      found += [f'line {node.lineno}: from {node.module} import {a.name}' for a in node.names
                if _is_private(a.name) or any(_is_private(part) for part in node.module.split('.'))]
    elif isinstance(node, ast.Attribute) and _is_private(node.attr):
      base = ast.unparse(node.value)
      origin = origins.get(base)
      # An extension point is the library's name, though we define it: called on another object, it is theirs.
      own = defined | package_names if base in ('self', 'cls', 'super()') else defined - EXTENSION_POINTS.keys()
      if (origin is not None and _is_other_library(origin)) or (
          origin is None and node.attr not in own and node.attr not in NAMED_TUPLE_METHODS):
        found.append(f'line {node.lineno}: {ast.unparse(node)}')
  return found


def private_overrides(cls) -> list:
  """The private methods and attributes of another library's classes that the body of ``cls`` redefines, but
  for the documented extension points."""
  body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
  names = {node.name for node in body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
  names |= {target.id for node in body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)}
  found = []
  for name in sorted(name for name in names if _is_private(name)):
    if name in EXTENSION_POINTS and issubclass(cls, EXTENSION_POINTS[name]):
      continue
    found += [f'{cls.__qualname__}.{name} overrides {base.__module__}.{base.__qualname__}.{name}'
              for base in cls.__mro__[1:] if _is_other_library(base.__module__) and name in vars(base)]
  return found


def _package_modules():
  for path in sorted(PACKAGE.rglob('*.py')):
    if COMPAT not in path.parents:
      yield path, '.'.join(path.relative_to(PACKAGE.parent).with_suffix('').parts)


def test_the_check_finds_private_names_used_the_ways_compat_uses_them():
  assert private_uses('from apache_beam.options.pipeline_options import _BeamArgumentParser')
  assert private_uses('from kafka.consumer import group\ngroup._anything')
  assert private_uses('def f(consumer):\n  return consumer._client')
  assert private_uses('class R(Base):\n  def run(self):\n    return self._progress_frequency')
  assert private_uses('class F(Field):\n  def _deserialize(self, value):\n    return value\n'
                      'def load(field, value):\n  return field._deserialize(value)')
  assert not private_uses('import os\nos._exit(0)')
  assert not private_uses('class A:\n  def __init__(self):\n    self._x = 1\n  def same(self, other):\n'
                          '    return other._x == self._x')
  uses = private_uses((COMPAT / 'beam.py').read_text()) + private_uses((COMPAT / 'kafka.py').read_text())
  for name in ('_BeamArgumentParser', '_cache_token_generator', '_progress_frequency', '_client', '_metrics'):
    assert any(name in use for use in uses), name
  hooks = private_overrides(beam_compat.FnApiRunnerWithBundleHooks)
  assert any('_run_bundle' in hook for hook in hooks) and any('_get_bundle_manager' in hook for hook in hooks)


def test_no_module_outside_compat_uses_another_librarys_private_names():
  package_names = frozenset().union(*(defined_names(path.read_text()) for path, _ in _package_modules()))
  found = []
  for path, module_name in _package_modules():
    found += [f'{path.relative_to(PACKAGE.parent)} {use}' for use in private_uses(path.read_text(), package_names)]
    if path.name == '__main__.py':
      continue
    module = importlib.import_module(module_name)
    for cls in vars(module).values():
      if inspect.isclass(cls) and cls.__module__ == module_name:
        found += [f'{path.relative_to(PACKAGE.parent)} {use}' for use in private_overrides(cls)]
  assert not found, 'private names of other libraries outside beam_pipeline/compat/:\n' + '\n'.join(found)
