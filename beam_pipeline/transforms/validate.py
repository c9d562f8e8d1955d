"""Validate: the data contract, as one marshmallow schema, applied to each parsed message.

The contract (also in the README):
- ``date``: required string ``YYYY-MM-DD`` naming a real calendar day;
- ``site_id``: required JSON integer, 0 <= site_id <= 2147483647 (a Cassandra ``int``);
- ``views``, ``clicks``: JSON integers, 0 <= n <= 9223372036854775807, absent means 0; ``null``, strings,
  floats and booleans are refused;
- unknown fields are ignored.
"""

import datetime
import re

import apache_beam as beam
import marshmallow
from apache_beam.metrics import Metrics
from marshmallow import fields, validate

from beam_pipeline import metrics
from beam_pipeline.records import DeadLetter, IncrementBatch, ParsedBatch

STAGE = 'validate'

MAX_SITE_ID = 2**31 - 1
MAX_COUNT = 2**63 - 1
_ISO_DAY = re.compile(r'[0-9]{4}-[0-9]{2}-[0-9]{2}')


class StrictInteger(fields.Integer):
  """A JSON integer and nothing else: no floats (1.0, 1e3), strings ("10") or booleans."""

  default_error_messages = {'invalid': 'Not a JSON integer.'}

  def _deserialize(self, value, attr, data, **kwargs):
    if type(value) is not int:  # bool is a subclass of int, and JSON true is not a number
      raise self.make_error('invalid')
    return value


class CalendarDay(fields.Field):
  """A ``YYYY-MM-DD`` string naming a real day; ``2017-2-4`` and ``2017-02-04T00:00`` are refused."""

  default_error_messages = {
      'format': 'Not a date in YYYY-MM-DD form.',
      'invalid': 'Not a real calendar date.',
  }

  def _deserialize(self, value, attr, data, **kwargs):
    if not isinstance(value, str) or not _ISO_DAY.fullmatch(value):
      raise self.make_error('format')
    try:
      return datetime.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    except ValueError:
      raise self.make_error('invalid') from None


class SiteEventSchema(marshmallow.Schema):
  """The data contract of one web-traffic event."""

  class Meta:
    unknown = marshmallow.EXCLUDE

  date = CalendarDay(required=True)
  site_id = StrictInteger(required=True, validate=validate.Range(min=0, max=MAX_SITE_ID))
  views = StrictInteger(load_default=0, validate=validate.Range(min=0, max=MAX_COUNT))
  clicks = StrictInteger(load_default=0, validate=validate.Range(min=0, max=MAX_COUNT))


class CompiledContract:
  """A fast reading of SiteEventSchema, derived from the schema's own fields at start-up.

  ``load`` returns exactly what ``schema.load`` would for a document the schema accepts, or None when it is not
  sure; the caller then asks the schema itself, which accepts it or says why not. So the rules stay in the
  schema alone, and the common case skips marshmallow's per-call machinery. A schema this reading does not
  understand (other field types or validators, hooks, unknown=RAISE) is not compiled: every call goes to it.
  """

  _INTEGER, _DAY = 'integer', 'day'

  def __init__(self, schema: marshmallow.Schema):
    self._plan = self._compile(schema)
    self._days = {}

  @property
  def compiled(self) -> bool:
    return self._plan is not None

  @classmethod
  def _compile(cls, schema: marshmallow.Schema):
    # resolve_hooks lists the schema class's decorated hooks (pre_load, validates_schema, ...) publicly.
    if schema.unknown != marshmallow.EXCLUDE or any(type(schema).resolve_hooks().values()):
      return None
    plan = []
    for name, field in schema.load_fields.items():
      default = field.load_default
      if not field.required and (default is marshmallow.missing or callable(default)):
        return None
      if type(field) is StrictInteger and field.validators and all(
          type(v) is validate.Range and v.min_inclusive and v.max_inclusive for v in field.validators):
        low = max(v.min if v.min is not None else -float('inf') for v in field.validators)
        high = min(v.max if v.max is not None else float('inf') for v in field.validators)
        plan.append((field.data_key or name, field.attribute or name, cls._INTEGER, field.required, default,
                     low, high, field))
      elif type(field) is CalendarDay and not field.validators:
        plan.append((field.data_key or name, field.attribute or name, cls._DAY, field.required, default,
                     None, None, field))
      else:
        return None
    return plan

  def load(self, document: dict):
    if self._plan is None:
      return None
    event = {}
    for key, attribute, kind, required, default, low, high, field in self._plan:
      value = document.get(key, _ABSENT)
      if value is _ABSENT:
        if required:
          return None
        event[attribute] = default
      elif kind is self._INTEGER:
        if type(value) is not int or not low <= value <= high:
          return None
        event[attribute] = value
      else:
        # Few distinct days arrive in any stretch of traffic: remember what each string meant.
        day = self._days.get(value, _ABSENT) if type(value) is str else None
        if day is _ABSENT:
          try:
            day = field.deserialize(value, key, document)
          except marshmallow.ValidationError:
            return None
          if len(self._days) < _MAX_REMEMBERED_DAYS:
            self._days[value] = day
        elif day is None:
          return None
        event[attribute] = day
    return event


_ABSENT = object()
_MAX_REMEMBERED_DAYS = 4096


def describe_errors(messages: dict) -> str:
  """marshmallow's messages as one line: ``site_id: Missing data for required field.; views: ...``."""
  parts = []
  for field_name in sorted(messages):
    problems = messages[field_name]
    text = ' '.join(problems) if isinstance(problems, list) else str(problems)
    parts.append(f'{field_name}: {text}')
  return '; '.join(parts)


class ValidateFn(beam.DoFn):
  DEAD_LETTERS = 'dead_letters'

  def __init__(self):
    self._schema = None
    self._contract = None
    self._valid = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_VALID)
    self._refused = Metrics.counter(metrics.NAMESPACE, metrics.dead_lettered(STAGE))

  def setup(self):
    self._schema = SiteEventSchema()
    self._contract = CompiledContract(self._schema)

  def start_bundle(self):
    # Counted once per bundle: a metric update per message costs more.
    self._valid_in_bundle = self._refused_in_bundle = 0

  def finish_bundle(self):
    self._valid.inc(self._valid_in_bundle)
    if self._refused_in_bundle:  # a stage that refused nothing has no dead-letter count (the summary lists those)
      self._refused.inc(self._refused_in_bundle)

  def process(self, messages: ParsedBatch):
    contract, schema, records = self._contract, self._schema, messages.records
    positions, dates, site_ids, views, clicks = [], [], [], [], []
    for position, document in zip(messages.positions, messages.documents):
      event = contract.load(document)
      if event is None:
        try:
          event = schema.load(document)
        except marshmallow.ValidationError as error:
          self._refused_in_bundle += 1
          yield beam.pvalue.TaggedOutput(self.DEAD_LETTERS, DeadLetter(
              STAGE, describe_errors(error.normalized_messages()), records.record(position)))
          continue
      positions.append(position)
      dates.append(event['date'])
      site_ids.append(event['site_id'])
      views.append(event['views'])
      clicks.append(event['clicks'])
    if positions:
      self._valid_in_bundle += len(positions)
      yield IncrementBatch(records, positions, dates, site_ids, views, clicks)


class Validate(beam.PTransform):
  """ParsedBatches in; IncrementBatches on the main output, one DeadLetter per refused message on ``dead_letters``."""

  def expand(self, parsed):
    return parsed | 'CheckContract' >> beam.ParDo(ValidateFn()).with_output_types(IncrementBatch).with_outputs(
        ValidateFn.DEAD_LETTERS, main='valid')
