"""ParseJson and Validate, each on its own: the written data contract, one rule at a time."""

import datetime

import apache_beam as beam
import marshmallow
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_pipeline.transforms.parse import ParseJson
from beam_pipeline.launch.run import local_runner
from beam_pipeline.records import KafkaRecord, ParsedBatch, ParsedMessage, RecordBatch, SiteIncrement
from beam_pipeline.transforms.validate import SiteEventSchema, Validate


def record(value, offset=0):
  return KafkaRecord(b'k', value, 'events', 0, offset, 1486166400000)


class TestParseJson:
  GOOD = [record(b'{"date": "2017-02-04", "site_id": 3491, "views": 10, "clicks": 6}', 0),
          record('{"date": "2017-02-04", "site_id": 1, "note": "caf\u00e9"}'.encode('utf-8'), 1)]
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

  def test_objects_pass_and_everything_else_is_dead_lettered_with_the_reason(self):
    records = self.GOOD + [record(value, offset) for offset, (value, _) in self.BAD.items()]
    with TestPipeline(runner=local_runner()) as p:
      outputs = p | beam.Create([RecordBatch.of(records)]) | ParseJson()
      assert_that(outputs.parsed | beam.FlatMap(lambda batch: [(m.source.offset, m.fields) for m in batch]),
                  equal_to([(0, {'date': '2017-02-04', 'site_id': 3491, 'views': 10, 'clicks': 6}),
                            (1, {'date': '2017-02-04', 'site_id': 1, 'note': 'caf\u00e9'})]),
                  label='parsed')
      assert_that(outputs.dead_letters | beam.Map(lambda d: (d.source.offset, d.stage, d.reason)),
                  _reasons_contain({offset: text for offset, (_, text) in self.BAD.items()}, 'parse'),
                  label='dead letters')


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
