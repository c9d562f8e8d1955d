"""The dead-letter record: a refused message, the stage and the reason, as one JSON object.

``{"stage", "reason", "payload", ["payload_encoding": "base64"], "key", ["key_encoding"], "topic",
"partition", "offset", "timestamp"}`` where payload/key are the original bytes, as text when they are UTF-8.

A record published to Kafka must fit the dead-letter topic's ``max.message.bytes``, which is smaller than a
source topic may allow (and base64 makes binary payloads a third larger). A record that would not fit carries a
prefix of its payload (then of its key, then of its reason) and, for each cut field, ``<field>_truncated: true``,
``<field>_length`` (the original's length in bytes) and ``<field>_sha256`` (of the original bytes); topic,
partition and offset say where the whole message can be read again.
"""

import base64
import hashlib
import json
from typing import Optional

from beam_pipeline.records import DeadLetter

# What a Kafka record batch adds around one record's key and value (61 bytes of batch header, a few dozen of
# record framing), with room to spare.
RECORD_OVERHEAD_BYTES = 512
# A topic that takes records of this size takes every dead letter, cut if need be: a record with its payload, key
# and reason cut to nothing holds the source's topic name (at most 249 characters) and a few numbers.
SMALLEST_DEAD_LETTER_TOPIC_LIMIT = 2048
_CUT_ORDER = ('payload', 'key', 'reason')  # the reason is cut only when the rest alone is too large
# One encoder for every record: json.dumps given options builds a new one per call, a fifth of the encoding.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


class DeadLetterTooLarge(ValueError):
  """Even with payload, key and reason cut to nothing, the record would not fit."""


def _bytes_field(document: dict, name: str, value: Optional[bytes]) -> None:
  if value is None:
    document[name] = None
    return
  try:
    document[name] = value.decode('utf-8')
  except UnicodeDecodeError:
    document[name] = base64.b64encode(value).decode('ascii')
    document[f'{name}_encoding'] = 'base64'


def to_document(dead_letter: DeadLetter) -> dict:
  source = dead_letter.source
  document = {'stage': dead_letter.stage, 'reason': dead_letter.reason}
  _bytes_field(document, 'payload', source.value)
  _bytes_field(document, 'key', source.key)
  document.update(topic=source.topic, partition=source.partition, offset=source.offset,
                  timestamp=source.timestamp_ms)
  return document


def _encoded(document: dict) -> bytes:
  return _ENCODER.encode(document).encode('utf-8')


def to_json(dead_letter: DeadLetter) -> str:
  return _encoded(to_document(dead_letter)).decode('utf-8')


def _original_bytes(document: dict, name: str) -> bytes:
  value = document[name]
  if document.get(f'{name}_encoding') == 'base64':
    return base64.b64decode(value)
  return value.encode('utf-8')


def _prefix(document: dict, name: str, original: bytes, length: int) -> str:
  """The field's text for the first ``length`` bytes of the original (a partial UTF-8 character at the cut is
  dropped, so text stays text)."""
  if document.get(f'{name}_encoding') == 'base64':
    return base64.b64encode(original[:length]).decode('ascii')
  return original[:length].decode('utf-8', errors='ignore')


def _cut(document: dict, name: str, max_bytes: int) -> None:
  """Shortens the field ``name`` until the document encodes to at most ``max_bytes`` (possibly to nothing)."""
  original = _original_bytes(document, name)
  document.update({name: '', f'{name}_truncated': True, f'{name}_length': len(original),
                   f'{name}_sha256': hashlib.sha256(original).hexdigest()})
  room = max_bytes - len(_encoded(document))
  if room <= 0:
    return
  # JSON escaping and base64 make the field longer than the bytes it holds: shrink the prefix in proportion
  # until it fits (escapes spread unevenly, hence the loop).
  length = min(len(original), room)
  while length > 0:
    text = document[name] = _prefix(document, name, original, length)
    excess = len(_encoded(document)) - max_bytes
    if excess <= 0:
      return
    field_bytes = len(json.dumps(text, ensure_ascii=False).encode('utf-8'))
    length = min(length - 1, length * (field_bytes - excess) // field_bytes)
  document[name] = ''


def fitted_json(dead_letter: DeadLetter, max_bytes: int) -> bytes:
  """The record as UTF-8 JSON of at most ``max_bytes``: whole when it fits, else cut as the module says.
  Raises DeadLetterTooLarge when even the cut record does not fit."""
  document = to_document(dead_letter)
  encoded = _encoded(document)
  for name in _CUT_ORDER:
    if len(encoded) <= max_bytes:
      return encoded
    if document[name]:
      _cut(document, name, max_bytes)
      encoded = _encoded(document)
  if len(encoded) > max_bytes:
    raise DeadLetterTooLarge(f'a dead letter of {dead_letter.source.topic}[{dead_letter.source.partition}] at '
                             f'offset {dead_letter.source.offset} does not fit in {max_bytes} bytes even cut short')
  return encoded
