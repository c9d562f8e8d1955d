"""ParseJson and Validate, each on its own: the written data contract, one rule at a time."""

import datetime
import subprocess
import sys

import apache_beam as beam
import marshmallow
import msgspec
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from marshmallow import fields, validate

from beam_pipeline.transforms import parse
from beam_pipeline.transforms.contract_decoder import MAX_NESTING, ContractDecoder
from beam_pipeline.transforms.parse import ParseJson, parse_value
from beam_pipeline.launch.run import local_runner
from beam_pipeline.records import (KafkaRecord, MessageBatchCoder, ParsedBatch, ParsedMessage, RecordBatch,
                                   SiteIncrement)
from beam_pipeline.transforms.validate import CalendarDay, SiteEventSchema, StrictInteger, Validate


def record(value, offset=0):
  return KafkaRecord(b'k', value, 'events', 0, offset, 1486166400000)


class TestParseJson:
  GOOD = [record(b'{"date": "2017-02-04", "site_id": 3491, "views": 10, "clicks": 6}', 0),
          record('{"date": "2017-02-04", "site_id": 1, "note": "caf\u00e9"}'.encode('utf-8'), 1),
          record(b'{"site_id": "3491", "note": null}', 12)]
  BAD = {
      2: (b'\xff\xfe{}', 'not UTF-8'),
      3: (b'{"date": "2017-02-04", "site_id": 1', 'not valid JSON'),
      4: (b'[1, 2]', 'JSON list, not an object'),
      5: (b'"text"', 'JSON str, not an object'),
      6: (b'', 'not valid JSON'),
      7: (None, 'no value'),
      8: (b'{"views": NaN}', 'NaN is not valid JSON'),
      9: (b'{"views": Infinity}', 'Infinity is not valid JSON'),
      10: (b'[' * 100000 + b']' * 100000, 'nested too deeply'),
      11: (b'{"views": ' + b'9' * 5000 + b'}', 'not valid JSON'),
  }

  def test_objects_pass_those_meeting_the_contract_already_checked_and_the_rest_are_dead_lettered_with_the_reason(
      self):
    records = self.GOOD + [record(value, offset) for offset, (value, _) in self.BAD.items()]
    with TestPipeline(runner=local_runner()) as p:
      outputs = p | beam.Create([RecordBatch.of(records)]) | ParseJson()
      assert_that(outputs.parsed | beam.FlatMap(lambda batch: [_kind_and_fields(m) for m in batch]),
                  equal_to([(0, 'checked', {'date': datetime.date(2017, 2, 4), 'site_id': 3491, 'views': 10,
                                            'clicks': 6}),
                            (1, 'checked', {'date': datetime.date(2017, 2, 4), 'site_id': 1, 'views': 0, 'clicks': 0}),
                            (12, 'object', {'site_id': '3491', 'note': None})]),
                  label='parsed')
      assert_that(outputs.dead_letters | beam.Map(lambda d: (d.source.offset, d.stage, d.reason)),
                  _reasons_contain({offset: text for offset, (_, text) in self.BAD.items()}, 'parse'),
                  label='dead letters')


def _kind_and_fields(message: ParsedMessage):
  if type(message.fields) is dict:
    return message.source.offset, 'object', message.fields
  return message.source.offset, 'checked', msgspec.structs.asdict(message.fields)


def _reasons_contain(expected_text_by_offset, stage):
  def check(actual):
    assert sorted(offset for offset, _, _ in actual) == sorted(expected_text_by_offset)
    for offset, actual_stage, reason in actual:
      assert actual_stage == stage
      assert expected_text_by_offset[offset] in reason, (offset, reason)
  return check


VALID = [
    ({'date': '2017-02-04', 'site_id': 3491, 'views': 10, 'clicks': 6}, (datetime.date(2017, 2, 4), 3491, 10, 6)),
    ({'date': '2016-02-29', 'site_id': 0}, (datetime.date(2016, 2, 29), 0, 0, 0)),
    ({'date': '2017-02-04', 'site_id': 2147483647, 'views': 9223372036854775807, 'clicks': 0},
     (datetime.date(2017, 2, 4), 2147483647, 9223372036854775807, 0)),
    ({'date': '2017-02-04', 'site_id': 7, 'clicks': 3, 'unknown': {'x': [1]}}, (datetime.date(2017, 2, 4), 7, 0, 3)),
]

INVALID = [
    ({'site_id': 1}, 'date'),
    ({'date': '2017-02-04'}, 'site_id'),
    ({'date': '2017-02-30', 'site_id': 1}, 'date'),
    ({'date': '2017-13-01', 'site_id': 1}, 'date'),
    ({'date': '2017-02-29', 'site_id': 1}, 'date'),
    ({'date': '2017-2-4', 'site_id': 1}, 'date'),
    ({'date': '2017-02-04T00:00', 'site_id': 1}, 'date'),
    ({'date': '20170204', 'site_id': 1}, 'date'),
    ({'date': '\u0662\u0660\u0661\u0667-02-04', 'site_id': 1}, 'date'),  # Arabic-Indic digits
    ({'date': 20170204, 'site_id': 1}, 'date'),
    ({'date': None, 'site_id': 1}, 'date'),
    ({'date': '2017-02-04', 'site_id': '3491'}, 'site_id'),
    ({'date': '2017-02-04', 'site_id': 1.0}, 'site_id'),
    ({'date': '2017-02-04', 'site_id': True}, 'site_id'),
    ({'date': '2017-02-04', 'site_id': -1}, 'site_id'),
    ({'date': '2017-02-04', 'site_id': 2147483648}, 'site_id'),
    ({'date': '2017-02-04', 'site_id': 1, 'views': None}, 'views'),
    ({'date': '2017-02-04', 'site_id': 1, 'views': '10'}, 'views'),
    ({'date': '2017-02-04', 'site_id': 1, 'views': 1.5}, 'views'),
    ({'date': '2017-02-04', 'site_id': 1, 'views': 1e3}, 'views'),
    ({'date': '2017-02-04', 'site_id': 1, 'views': False}, 'views'),
    ({'date': '2017-02-04', 'site_id': 1, 'views': -1}, 'views'),
    ({'date': '2017-02-04', 'site_id': 1, 'views': 9223372036854775808}, 'views'),
    ({'date': '2017-02-04', 'site_id': 1, 'clicks': [1]}, 'clicks'),
    ({'date': '2017-02-04', 'site_id': 1, 'clicks': -5}, 'clicks'),
]


@pytest.mark.parametrize('fields,expected', VALID)
def test_the_contract_accepts(fields, expected):
  event = SiteEventSchema().load(fields)
  assert (event['date'], event['site_id'], event['views'], event['clicks']) == expected


@pytest.mark.parametrize('fields,bad_field', INVALID)
def test_the_contract_refuses_naming_the_field(fields, bad_field):
  with pytest.raises(marshmallow.ValidationError) as refused:
    SiteEventSchema().load(fields)
  assert list(refused.value.normalized_messages()) == [bad_field]


def test_validate_routes_valid_events_on_and_invalid_ones_to_dead_letters():
  valid_messages = [ParsedMessage(fields, record(b'', offset)) for offset, (fields, _) in enumerate(VALID)]
  invalid_messages = [ParsedMessage(fields, record(b'', 100 + i)) for i, (fields, _) in enumerate(INVALID)]
  with TestPipeline(runner=local_runner()) as p:
    outputs = p | beam.Create([ParsedBatch.of(valid_messages + invalid_messages)]) | Validate()
    assert_that(outputs.valid | beam.FlatMap(lambda batch: [(e.date, e.site_id, e.views, e.clicks) for e in batch]),
                equal_to([expected for _, expected in VALID]), label='valid')
    assert_that(outputs.dead_letters | beam.Map(lambda d: (d.source.offset, d.stage, d.reason)),
                _reasons_contain({100 + i: f'{field}:' for i, (_, field) in enumerate(INVALID)}, 'validate'),
                label='dead letters')


def test_parse_and_validate_on_a_stream_keep_every_message():
  """The same stages under a streaming runner: each message comes out on exactly one side."""
  options = PipelineOptions()
  options.view_as(StandardOptions).streaming = True
  stream = (TestStream()
            .add_elements([RecordBatch.of([record(b'{"date": "2017-02-04", "site_id": 1, "views": 2}', 0)])])
            .advance_watermark_to(10)
            .add_elements([RecordBatch.of([record(b'not json', 1),
                                           record(b'{"date": "2017-02-04", "site_id": -4}', 2)])])
            .advance_watermark_to_infinity())
  with TestPipeline(runner='BundleBasedDirectRunner', options=options) as p:
    parsed = p | stream | ParseJson()
    validated = parsed.parsed | Validate()
    first = record(b'{"date": "2017-02-04", "site_id": 1, "views": 2}', 0)
    assert_that(validated.valid | beam.FlatMap(list),
                equal_to([SiteIncrement(datetime.date(2017, 2, 4), 1, 2, 0, first)]), label='valid')
    dead = (parsed.dead_letters, validated.dead_letters) | beam.Flatten() | beam.Map(
        lambda d: (d.source.offset, d.stage))
    assert_that(dead, equal_to([(1, 'parse'), (2, 'validate')]), label='dead letters')


# --- the fast path: ParseJson checks what surely meets the contract (transforms/contract_decoder.py) -----------

DECODER = ContractDecoder(SiteEventSchema)
# msgspec's own decoder for the same events, without the checks ContractDecoder adds around it.
MSGSPEC_ALONE = msgspec.json.Decoder(DECODER.event_type)


def _outcome_of_both_paths(value: bytes):
  """The fast path's event and the slow path's (json, then the schema), as field dicts."""
  return msgspec.structs.asdict(DECODER.decode(value)), SiteEventSchema().load(parse_value(value))


# Values msgspec alone accepts and json refuses: the fast path leaves each to the slow way, which gives the reason.
MSGSPEC_ALONE_ACCEPTS = {
    'byte not UTF-8 in an unknown value': b'{"date": "2017-02-04", "site_id": 1, "note": "\xff"}',
    'byte not UTF-8 in an unknown key': b'{"date": "2017-02-04", "site_id": 1, "\xff": 0}',
    'overlong UTF-8 encoding': b'{"date": "2017-02-04", "site_id": 1, "note": "\xc0\xaf"}',
    'UTF-8 encoding of a surrogate': b'{"date": "2017-02-04", "site_id": 1, "note": "\xed\xa0\x80"}',
    'integer past Python\'s digit limit': b'{"date": "2017-02-04", "site_id": 1, "x": ' + b'9' * 5000 + b'}',
}


@pytest.mark.parametrize('value', MSGSPEC_ALONE_ACCEPTS.values(), ids=MSGSPEC_ALONE_ACCEPTS.keys())
def test_what_msgspec_alone_accepts_and_json_refuses_goes_the_slow_way(value):
  MSGSPEC_ALONE.decode(value)
  with pytest.raises(ValueError, match='^value is not (UTF-8 text|valid JSON): '):
    parse_value(value)
  assert DECODER.decode(value) is None


def _nested(depth: int) -> bytes:
  return b'{"date": "2017-02-04", "site_id": 1, "x": ' + b'[' * depth + b']' * depth + b'}'


def _msgspec_alone_decodes(value: bytes) -> bool:
  try:
    MSGSPEC_ALONE.decode(value)
  except RecursionError:
    return False
  return True


def test_nesting_json_refuses_goes_the_slow_way_though_msgspec_alone_decodes_it():
  deepest = MAX_NESTING
  while _msgspec_alone_decodes(_nested(deepest + 1)):
    deepest += 1
  with pytest.raises(ValueError, match='nested too deeply'):
    parse_value(_nested(deepest))
  assert DECODER.decode(_nested(deepest)) is None
  assert DECODER.decode(_nested(MAX_NESTING)) is None  # with the object around it, MAX_NESTING + 1 levels
  fast, slow = _outcome_of_both_paths(_nested(MAX_NESTING - 1))
  assert fast == slow


def test_of_duplicate_keys_both_paths_keep_the_last():
  fast, slow = _outcome_of_both_paths(b'{"site_id": 5, "date": "2017-02-04", "site_id": 7, "views": 1, "views": 2}')
  assert fast == slow == {'date': datetime.date(2017, 2, 4), 'site_id': 7, 'views': 2, 'clicks': 0}


def test_a_duplicate_key_whose_first_value_breaks_a_rule_goes_the_slow_way():
  value = b'{"site_id": -1, "date": "2017-02-04", "site_id": 7}'
  assert DECODER.decode(value) is None
  assert SiteEventSchema().load(parse_value(value))['site_id'] == 7


@pytest.mark.parametrize('value', [
    b'{"d\\u0061te": "2017-02-04", "site\\u005fid": 1}',
    b'{"date": "2017\\u002d02-04", "site_id": 1, "site\\u005fid": 2, "note": "a\\/b\\u0041"}',
    b' \r\n\t{ "date" :\n"2017-02-04" ,\t"site_id"\r: 0 , "views" : -0 }\n ',
], ids=['escaped keys', 'escapes in values', 'whitespace around and inside'])
def test_escapes_and_whitespace_give_the_same_event_on_both_paths(value):
  fast, slow = _outcome_of_both_paths(value)
  assert fast == slow


@pytest.mark.parametrize('value', [
    b'{"date": "2017-02-04", "site_id": 1, "note": "\\ud800"}',  # a lone surrogate escape: json accepts it
    b'{"date": "2017-02-04", "site_id": 1.0}',
    b'{"date": "2017-02-04", "site_id": true}',
    b'{"date": "2017-02-04", "site_id": 1, "views": 1e3}',
    b'{"date": "2017-02-04", "site_id": 1, "views": 18446744073709551616}',
    b'{"date": "2017-02-04", "site_id": "1"}',
    b'{"date": "2017-02-30", "site_id": 1}',
    b'{"date": "2017-02-04T00:00", "site_id": 1}',
    b'{"date": "0000-01-01", "site_id": 1}',
    b'{"date": null, "site_id": 1}',
    b'\xef\xbb\xbf{"date": "2017-02-04", "site_id": 1}',
    b'{"date": "2017-02-04", "site_id": 1, "views": NaN}',
    b'[{"date": "2017-02-04", "site_id": 1}]',
])
def test_the_fast_path_leaves_to_the_slow_way_what_it_refuses(value):
  assert DECODER.decode(value) is None


class _HookedSchema(SiteEventSchema):
  @marshmallow.pre_load
  def rename(self, data, **kwargs):
    return data


class _UnknownFieldsRefusedSchema(SiteEventSchema):
  class Meta:
    unknown = marshmallow.RAISE


class _TextSiteIdSchema(SiteEventSchema):
  site_id = fields.String(required=True)


class _ExclusiveRangeSchema(SiteEventSchema):
  views = StrictInteger(load_default=0, validate=validate.Range(min=0, max=10, max_inclusive=False))


class _NoDefaultSchema(SiteEventSchema):
  views = StrictInteger(validate=validate.Range(min=0))


class _ComputedDefaultSchema(SiteEventSchema):
  views = StrictInteger(load_default=lambda: 0, validate=validate.Range(min=0))


class _BoundPast64BitsSchema(SiteEventSchema):
  views = StrictInteger(load_default=0, validate=validate.Range(min=0, max=2**64))


class _CheckedDaySchema(SiteEventSchema):
  date = CalendarDay(required=True, validate=validate.NoneOf([datetime.date(2017, 2, 4)]))


@pytest.mark.parametrize('schema_class', [
    _HookedSchema, _UnknownFieldsRefusedSchema, _TextSiteIdSchema, _ExclusiveRangeSchema, _NoDefaultSchema,
    _ComputedDefaultSchema, _BoundPast64BitsSchema, _CheckedDaySchema])
def test_a_schema_the_fast_path_does_not_understand_gets_none(schema_class):
  decoder = ContractDecoder(schema_class)
  assert not decoder.compiled
  assert decoder.decode(b'{"date": "2017-02-04", "site_id": 1}') is None
  assert DECODER.compiled


class _RenamedSchema(marshmallow.Schema):
  class Meta:
    unknown = marshmallow.EXCLUDE

  day = CalendarDay(required=True, data_key='d')
  site = StrictInteger(required=True, data_key='s', attribute='site_id', validate=[
      validate.Range(min=1), validate.Range(max=10)])
  hits = StrictInteger(load_default=3, validate=validate.Range(max=5))


@pytest.mark.parametrize('value', [b'{"d": "2017-02-04", "s": 10}', b'{"d": "2017-02-04", "s": 1, "hits": -9}',
                                   b'{"d": "2017-02-04", "s": 11}', b'{"d": "2017-02-04", "s": 0}',
                                   b'{"day": "2017-02-04", "s": 2}', b'{"d": "2017-02-04", "site_id": 2}'])
def test_the_fast_path_reads_each_fields_data_key_attribute_default_and_ranges(value):
  decoder = ContractDecoder(_RenamedSchema)
  event = decoder.decode(value)
  try:
    expected = _RenamedSchema().load(parse_value(value))
  except marshmallow.ValidationError:
    assert event is None
    return
  assert msgspec.structs.asdict(event) == expected


def test_checked_events_keep_their_values_through_the_batch_coder_between_stages_not_fused():
  values = [b'{"date": "2017-02-04", "site_id": 3491, "views": 10, "clicks": 6}',
            b'{"date": "2017-02-04", "site_id": -1}', b'{"site_id": 2, "date": "2016-02-29"}']
  with TestPipeline(runner=local_runner()) as p:
    parsed = p | beam.Create([RecordBatch.of([record(value, offset) for offset, value in enumerate(values)])])
    parsed = parsed | ParseJson()
    # A reshuffle encodes each batch with its registered coder, as a runner does between stages it does not fuse.
    validated = parsed.parsed | beam.Reshuffle() | Validate()
    assert_that(validated.valid | beam.FlatMap(
        lambda batch: [(e.source.offset, e.date, e.site_id, e.views, e.clicks) for e in batch]),
                equal_to([(0, datetime.date(2017, 2, 4), 3491, 10, 6), (2, datetime.date(2016, 2, 29), 2, 0, 0)]),
                label='valid')
    assert_that(validated.dead_letters | beam.Map(lambda d: (d.source.offset, d.stage, d.reason)),
                equal_to([(1, 'validate', 'site_id: Must be greater than or equal to 0 and less than or equal to '
                                          '2147483647.')]), label='dead letters')


_DECODE_BATCH = '''
import sys
from beam_pipeline.records import MessageBatchCoder
from beam_pipeline.transforms.contract_decoder import ContractDecoder
from beam_pipeline.transforms.validate import SiteEventSchema
batch = MessageBatchCoder().decode(sys.stdin.buffer.read())
event_type = ContractDecoder(SiteEventSchema).event_type
print([(type(event) is event_type, event.date.isoformat(), event.site_id, event.views, event.clicks)
       for event in batch.documents])
'''


def test_a_batch_of_checked_events_decodes_in_a_process_that_has_derived_no_decoder_yet():
  value = b'{"date": "2017-02-04", "site_id": 3491, "views": 10}'
  batch = ParsedBatch(RecordBatch.of([record(value)]), [0], [DECODER.decode(value)])
  done = subprocess.run([sys.executable, '-c', _DECODE_BATCH], input=MessageBatchCoder().encode(batch),
                        capture_output=True, timeout=120, check=True)
  assert done.stdout.decode().strip() == "[(True, '2017-02-04', 3491, 10, 0)]"


def test_a_value_nested_deeper_than_the_limit_is_refused_before_json_recurses_through_it():
  # json would decode it, but near the interpreter's recursion limit, where the garbage collector's finalizers fail.
  # The object itself is the first level.
  deep = '{"date": "2017-02-04", "site_id": 1, "extra": ' + '[' * (parse.MAX_NESTING - 1) + ']' * (parse.MAX_NESTING - 1) + '}'
  too_deep = '{"date": "2017-02-04", "site_id": 1, "extra": ' + '[' * parse.MAX_NESTING + ']' * parse.MAX_NESTING + '}'
  assert parse_value(deep.encode())['site_id'] == 1
  with pytest.raises(ValueError, match='^value is not valid JSON: nested too deeply$'):
    parse_value(too_deep.encode())
  # Brackets inside strings are text, not nesting.
  assert parse_value(('{"date": "2017-02-04", "site_id": 1, "note": "' + '[' * 5000 + '"}').encode())['site_id'] == 1
