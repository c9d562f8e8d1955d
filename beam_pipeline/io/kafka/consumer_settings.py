"""Consumer settings passed through from the command line (``--kafka_consumer_config key=value``).

Keys are kafka-python's (``fetch_min_bytes``; Java's dotted spelling ``fetch.min.bytes`` is accepted too). The
settings the job owns are refused with what to use instead, and each value becomes the type kafka-python expects,
taken from the type of its default. A value is never repeated in an error: a setting may hold a secret.
"""

import difflib
from typing import Any, Dict, Iterable, Tuple

ConsumerSettings = Tuple[Tuple[str, Any], ...]

_SECURITY_OPTIONS = ('--kafka_security_protocol, --kafka_sasl_mechanism, --kafka_username, --kafka_password_env '
                     'or --kafka_password_file, --kafka_ssl_ca_file (see docs/security.md)')
# Settings the job sets itself, and what to use instead of passing them through.
OWNED_SETTINGS = {
    'bootstrap_servers': 'use --bootstrap_servers',
    'group_id': 'use --consumer_group',
    'enable_auto_commit': 'it commits offsets itself, only past what is durable',
    'auto_commit_interval_ms': 'it commits offsets itself, only past what is durable',
    'auto_offset_reset': 'use --start_offset (or --start_time)',
    'key_deserializer': 'it reads the raw bytes',
    'value_deserializer': 'it reads the raw bytes',
    'security_protocol': 'use --kafka_security_protocol',
    'sasl_mechanism': 'use --kafka_sasl_mechanism',
    'sasl_plain_username': 'use --kafka_username',
    'sasl_plain_password': 'use --kafka_password_env or --kafka_password_file',
    'ssl_cafile': 'use --kafka_ssl_ca_file',
}
# Every other sasl_* and ssl_* setting belongs to the security options too.
_SECURITY_PREFIXES = ('sasl_', 'ssl_')
# Settings whose default is None, with the type of the value they take.
_TYPES_OF_UNSET = {'group_instance_id': str, 'receive_buffer_bytes': int, 'send_buffer_bytes': int,
                   'socks5_proxy': str, 'api_version': tuple}
# Settings that take one of a few words.
_CHOICES = {'isolation_level': ('read_uncommitted', 'read_committed')}
_TRUE, _FALSE = ('true', '1', 'yes'), ('false', '0', 'no')


class ConsumerSettingError(ValueError):
  """A passed-through setting that cannot be used; the message names the key, never the value."""


def _consumer_defaults() -> Dict[str, Any]:
  from kafka import KafkaConsumer
  return KafkaConsumer.DEFAULT_CONFIG


def _value_type(key: str, defaults: Dict[str, Any]):
  if key in _TYPES_OF_UNSET:
    return _TYPES_OF_UNSET[key]
  default = defaults[key]
  if isinstance(default, (bool, int, float, str)):
    return type(default)
  raise ConsumerSettingError(f'{key} takes a Python object, which a command line cannot give')


def _converted(key: str, text: str, value_type):
  text = text.strip()
  if value_type is bool:
    if text.lower() not in _TRUE + _FALSE:
      raise ConsumerSettingError(f'{key} takes true or false')
    return text.lower() in _TRUE
  if value_type is tuple:  # api_version: a broker version such as 2.5.0
    parts = text.split('.')
    if not all(part.isdigit() for part in parts):
      raise ConsumerSettingError(f'{key} takes a broker version such as 2.5.0')
    return tuple(int(part) for part in parts)
  try:
    value = value_type(text)
  except ValueError:
    raise ConsumerSettingError(f'{key} takes {"an integer" if value_type is int else "a number"}') from None
  if key in _CHOICES and value not in _CHOICES[key]:
    raise ConsumerSettingError(f'{key} takes one of {", ".join(_CHOICES[key])}')
  return value


def _checked_key(key: str, defaults: Dict[str, Any]) -> str:
  if key in OWNED_SETTINGS:
    raise ConsumerSettingError(f'{key} is set by the job: {OWNED_SETTINGS[key]}')
  if key.startswith(_SECURITY_PREFIXES):
    raise ConsumerSettingError(f'{key} is a security setting: use {_SECURITY_OPTIONS}')
  if key not in defaults and key not in _TYPES_OF_UNSET:
    close = difflib.get_close_matches(key, list(defaults), n=1)
    hint = f' (did you mean {close[0]}?)' if close else ''
    raise ConsumerSettingError(f'{key} is not a kafka-python consumer setting{hint}')
  return key


def parse_consumer_settings(pairs: Iterable[str]) -> ConsumerSettings:
  """``key=value`` pairs as (key, typed value), sorted by key; ConsumerSettingError for the first bad one."""
  defaults = _consumer_defaults()
  settings = {}
  for pair in pairs:
    key, separator, text = pair.partition('=')
    key = key.strip().replace('.', '_')
    if not separator or not key:
      raise ConsumerSettingError('takes key=value, with kafka-python\'s setting names')
    key = _checked_key(key, defaults)
    if key in settings:
      raise ConsumerSettingError(f'{key} is given twice')
    settings[key] = _converted(key, text, _value_type(key, defaults))
  return tuple(sorted(settings.items()))


# The passed-through settings librdkafka has an equivalent of (--kafka_client confluent), by kafka-python name.
_LIBRDKAFKA_NAMES = {
    'client_id': 'client.id',
    'isolation_level': 'isolation.level',
    'fetch_min_bytes': 'fetch.min.bytes',
    'fetch_max_wait_ms': 'fetch.wait.max.ms',
    'fetch_max_bytes': 'fetch.max.bytes',
    'max_partition_fetch_bytes': 'max.partition.fetch.bytes',
    'request_timeout_ms': 'socket.timeout.ms',
    'receive_buffer_bytes': 'socket.receive.buffer.bytes',
    'send_buffer_bytes': 'socket.send.buffer.bytes',
    'reconnect_backoff_ms': 'reconnect.backoff.ms',
    'reconnect_backoff_max_ms': 'reconnect.backoff.max.ms',
    'metadata_max_age_ms': 'metadata.max.age.ms',
    'check_crcs': 'check.crcs',
}


def librdkafka_settings(settings: ConsumerSettings) -> Dict[str, Any]:
  """The passed-through settings under librdkafka's names; ConsumerSettingError for one it has no equivalent of."""
  translated = {}
  for key, value in settings:
    if key not in _LIBRDKAFKA_NAMES:
      raise ConsumerSettingError(
          f'{key} has no librdkafka equivalent that the job passes on; with --kafka_client confluent use one of '
          f'{", ".join(sorted(_LIBRDKAFKA_NAMES))}')
    translated[_LIBRDKAFKA_NAMES[key]] = value
  return translated
