"""Validate: the data contract, as one marshmallow schema, applied to each parsed message.

The contract (also in the README):
- ``date``: required string ``YYYY-MM-DD`` naming a real calendar day;
- ``site_id``: required JSON integer, 0 <= site_id <= 2147483647 (a Cassandra ``int``);
- ``views``, ``clicks``: JSON integers, 0 <= n <= 9223372036854775807, absent means 0; ``null``, strings,
  floats and booleans are refused;
- unknown fields are ignored.

Most events arrive already checked: ParseJson decodes a value that surely meets this schema straight into an
event, with a decoder derived from the schema's fields (contract_decoder.py). The schema itself decides every
other message, and its messages are the dead letters' reasons.
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
    self._valid = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_VALID)
    self._refused = Metrics.counter(metrics.NAMESPACE, metrics.dead_lettered(STAGE))

  def setup(self):
    self._schema = SiteEventSchema()

  def start_bundle(self):
    # Counted once per bundle: a metric update per message costs more.
    self._valid_in_bundle = self._refused_in_bundle = 0

  def finish_bundle(self):
    self._valid.inc(self._valid_in_bundle)
    if self._refused_in_bundle:  # a stage that refused nothing has no dead-letter count (the summary lists those)
      self._refused.inc(self._refused_in_bundle)

  def process(self, messages: ParsedBatch):
    schema, records = self._schema, messages.records
    positions, dates, site_ids, views, clicks = [], [], [], [], []
    for position, document in zip(messages.positions, messages.documents):
      if type(document) is dict:
        try:
          event = schema.load(document)
        except marshmallow.ValidationError as error:
          self._refused_in_bundle += 1
          yield beam.pvalue.TaggedOutput(self.DEAD_LETTERS, DeadLetter(
              STAGE, describe_errors(error.normalized_messages()), records.record(position)))
          continue
        dates.append(event['date'])
        site_ids.append(event['site_id'])
        views.append(event['views'])
        clicks.append(event['clicks'])
      else:  # an event ParseJson decoded and checked against this schema already (contract_decoder.py)
        dates.append(document.date)
        site_ids.append(document.site_id)
        views.append(document.views)
        clicks.append(document.clicks)
      positions.append(position)
    if positions:
      self._valid_in_bundle += len(positions)
      yield IncrementBatch(records, positions, dates, site_ids, views, clicks)


class Validate(beam.PTransform):
  """ParsedBatches in; IncrementBatches on the main output, one DeadLetter per refused message on ``dead_letters``."""

  def expand(self, parsed):
    return parsed | 'CheckContract' >> beam.ParDo(ValidateFn()).with_output_types(IncrementBatch).with_outputs(
        ValidateFn.DEAD_LETTERS, main='valid')
