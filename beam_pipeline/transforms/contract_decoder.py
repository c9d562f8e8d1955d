"""The data contract's fast path: a message value decoded and checked in one compiled pass (msgspec), with a
decoder derived at start-up from the marshmallow schema's own fields.

``ContractDecoder.decode`` returns a checked event only for a value that json and the schema would both accept,
with the same result; for any other value it returns None, and the slow path (json in ParseJson, the schema in
Validate) decides and gives the reason. So the rules stay in the schema alone, and a schema this module does not
understand (other field types or validators, hooks, unknown fields not excluded, optional fields without a
fixed default) gets no fast path: every message goes the slow way.

Where msgspec alone would accept a value the slow path refuses, the value is kept from it (each case is a test in
tests/test_parse_validate.py, and an example of the property in tests/test_contract_properties.py):

- bytes that are not UTF-8 inside a string msgspec skips (an unknown field's key or value): a value that is not
  ASCII is checked with Python's UTF-8 decoder first;
- an integer longer than Python converts (``sys.get_int_max_str_digits()``) in an unknown field: a value longer
  than that limit goes the slow way;
- nesting a few levels deeper than json reaches before its RecursionError: a value that could nest deeper than
  ``MAX_NESTING`` goes the slow way.

What msgspec refuses and the slow path accepts (a lone surrogate escape, a duplicate key whose first value breaks a
rule, ``null`` for a field that allows it) simply goes the slow way. Of duplicate keys msgspec keeps the last, as
json's dict does.
"""

import datetime
import functools
import sys
from typing import Annotated, Optional

import marshmallow
import msgspec
from marshmallow import validate

from beam_pipeline.transforms.validate import CalendarDay, StrictInteger

# The deepest nesting the fast path takes: below parse.MAX_NESTING (256), past which the slow path refuses a value
# (and json, near the interpreter's recursion limit, a few levels before msgspec would).
MAX_NESTING = 64
# A value this short cannot nest deeper than MAX_NESTING (each level takes two brackets), so its brackets need
# no counting. It is below the smallest integer-digits limit Python allows (640), so no integer in it is too long.
_SHALLOW_BYTES = 2 * MAX_NESTING

# msgspec checks integer bounds only within a signed 64-bit range.
_INT64 = range(-2**63, 2**63)


class ContractDecoder:
  """Decodes a message value straight into a checked event of ``schema_class``, when it surely meets the contract.

  Built where it runs (a DoFn's ``setup``): it reads the interpreter's integer-digits limit, as json will.
  """

  def __init__(self, schema_class):
    self.event_type = checked_event_type(schema_class)
    self._decode = None if self.event_type is None else msgspec.json.Decoder(self.event_type).decode
    # json refuses an integer longer than this; 0 means no limit.
    self._max_bytes = sys.get_int_max_str_digits() or sys.maxsize

  @property
  def compiled(self) -> bool:
    return self._decode is not None

  def decode(self, value):
    """The checked event ``value`` holds, or None when the slow path must decide."""
    if self._decode is None or type(value) is not bytes or not (value.isascii() or _is_utf8(value)):
      return None
    if len(value) > _SHALLOW_BYTES and (
        len(value) > self._max_bytes or value.count(b'[') + value.count(b'{') > MAX_NESTING):
      return None
    try:
      return self._decode(value)
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
      return None


def _is_utf8(value: bytes) -> bool:
  try:
    value.decode('utf-8')
  except UnicodeDecodeError:
    return False
  return True


@functools.lru_cache(maxsize=None)
def checked_event_type(schema_class) -> Optional[type]:
  """A msgspec Struct type whose JSON decoder accepts what ``schema_class`` accepts and refuses the rest, or None
  when the schema holds anything this reading does not understand.

  Each field becomes a Struct field under the schema's attribute name, read from its data key: a StrictInteger
  with inclusive Range validators an ``int`` with msgspec's ``ge``/``le`` (msgspec's JSON decoding is strict: no
  floats, booleans or strings for an int), a CalendarDay a ``datetime.date`` (msgspec takes exactly
  ``YYYY-MM-DD`` naming a real day), a field that is not required its default. Unknown fields are ignored.
  """
  schema = schema_class()
  # resolve_hooks lists the schema class's decorated hooks (pre_load, validates_schema, ...) publicly.
  if schema.unknown != marshmallow.EXCLUDE or any(schema_class.resolve_hooks().values()):
    return None
  required, optional = [], []
  for name, field in schema.load_fields.items():
    value_type = _value_type(field)
    if value_type is None:
      return None
    if field.required:
      required.append((field.attribute or name, value_type, msgspec.field(name=field.data_key)))
    elif field.load_default is marshmallow.missing or callable(field.load_default):
      return None  # marshmallow leaves the field out, or computes its default per message
    else:
      optional.append((field.attribute or name, value_type,
                       msgspec.field(default=field.load_default, name=field.data_key)))

  def rebuilt_elsewhere(event):
    # A type made at run time has no importable name: pickle names the schema, and the unpickling process
    # derives the same type from it.
    return _rebuild_checked_event, (schema_class, msgspec.structs.astuple(event))

  # Events hold numbers and dates only, so the garbage collector need not track them.
  name = 'Checked' + schema_class.__name__.removesuffix('Schema')
  return msgspec.defstruct(name, required + optional, module=__name__, namespace={'__reduce__': rebuilt_elsewhere},
                           frozen=True, gc=False)


def _rebuild_checked_event(schema_class, values):
  return checked_event_type(schema_class)(*values)


def _value_type(field):
  """The msgspec type that decodes what ``field`` accepts, or None."""
  if type(field) is CalendarDay and not field.validators:
    return datetime.date
  if type(field) is not StrictInteger or not field.validators or not all(
      type(v) is validate.Range and v.min_inclusive and v.max_inclusive for v in field.validators):
    return None
  lows = [v.min for v in field.validators if v.min is not None]
  highs = [v.max for v in field.validators if v.max is not None]
  if not all(type(bound) is int and bound in _INT64 for bound in lows + highs):
    return None
  return Annotated[int, msgspec.Meta(ge=max(lows, default=None), le=min(highs, default=None))]
