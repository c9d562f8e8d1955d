"""Properties of the data contract, checked on many generated documents (hypothesis; how many is the profile's
choice: tests/conftest.py)."""

import datetime
import json
import re

import apache_beam as beam
import marshmallow
import msgspec
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from beam_pipeline.launch.run import local_runner
from beam_pipeline.records import KafkaRecord, RecordBatch
from beam_pipeline.transforms.contract_decoder import MAX_NESTING, ContractDecoder
from beam_pipeline.transforms.parse import ParseJson, parse_value
from beam_pipeline.transforms.validate import MAX_COUNT, MAX_SITE_ID, SiteEventSchema, Validate, describe_errors

SCHEMA = SiteEventSchema()
DECODER = ContractDecoder(SiteEventSchema)

_edge_integers = st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -2**63])
_dates = st.one_of(st.dates().map(lambda d: d.isoformat()), st.sampled_from(
    ['2017-02-30', '2017-2-4', '2017-02-04T00:00', '20170204', '2017-02-04 ', '\u0662017-02-04', '']))
_values = st.one_of(st.integers(), _edge_integers, st.booleans(), st.none(), st.floats(allow_nan=False),
                    st.text(max_size=12), _dates, st.lists(st.integers(), max_size=2))
_documents = st.fixed_dictionaries({}, optional={
    'date': st.one_of(_dates, _values), 'site_id': _values, 'views': _values, 'clicks': _values,
    'extra': _values})


_MAX = {'site_id': 2**31 - 1, 'views': 2**63 - 1, 'clicks': 2**63 - 1}


def _broken_rule(name: str, document: dict):
  """The rule of the contract (as validate.py's docstring states it) that the field breaks, or None."""
  if name not in document:
    return 'Missing data for required field.' if name in ('date', 'site_id') else None
  value = document[name]
  if value is None:
    return 'Field may not be null.'
  if name == 'date':
    if not isinstance(value, str) or not re.fullmatch(r'[0-9]{4}-[0-9]{2}-[0-9]{2}', value, re.ASCII):
      return 'Not a date in YYYY-MM-DD form.'
    try:
      datetime.date.fromisoformat(value)
    except ValueError:
      return 'Not a real calendar date.'
    return None
  if type(value) is not int:
    return 'Not a JSON integer.'
  if not 0 <= value <= _MAX[name]:
    return f'Must be greater than or equal to 0 and less than or equal to {_MAX[name]}.'
  return None


def _schema_result(document):
  try:
    return SCHEMA.load(document)
  except marshmallow.ValidationError:
    return None


@given(_documents)
def test_a_valid_event_keeps_its_values_and_an_invalid_one_names_each_bad_field_and_its_rule(document):
  problems = {name: problem for name in ('date', 'site_id', 'views', 'clicks')
              if (problem := _broken_rule(name, document)) is not None}
  result = _schema_result(document)
  if result is None:
    with pytest.raises(marshmallow.ValidationError) as refused:
      SCHEMA.load(document)
    assert problems, document
    assert describe_errors(refused.value.normalized_messages()) == '; '.join(
        f'{name}: {problems[name]}' for name in sorted(problems))
    return
  assert not problems, (document, problems)
  for field in ('site_id', 'views', 'clicks'):
    assert type(result[field]) is int and result[field] >= 0
    assert result[field] == document.get(field, 0)
  assert result['date'].isoformat() == document['date']


@given(st.binary(max_size=200))
def test_parsing_arbitrary_bytes_gives_the_object_or_says_which_rule_the_bytes_break(raw):
  try:
    document = parse_value(raw)
  except ValueError as error:
    assert str(error).startswith(_broken_parse_rule(raw)), (raw, str(error))
    return
  assert isinstance(document, dict) and json.loads(raw.decode('utf-8')) == document


def _refuse(constant):
  raise ValueError(f'{constant} is not JSON')


def _broken_parse_rule(raw: bytes) -> str:
  """The start of the reason a message value must be refused with: not UTF-8, not JSON, or JSON but no object."""
  try:
    text = raw.decode('utf-8')
  except UnicodeDecodeError:
    return 'value is not UTF-8 text: '
  try:
    value = json.loads(text, parse_constant=_refuse)
  except (ValueError, RecursionError):
    return 'value is not valid JSON'
  assert not isinstance(value, dict), f'{raw!r} holds a JSON object, yet it was refused'
  return f'value is JSON {type(value).__name__}, not an object'


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children,
                                                                                max_size=3)),
    max_leaves=10)


@given(_json_values, st.sampled_from(['', ' ', '\n', '\t ']), st.sampled_from(['', ' ', '\r\n', ' x', ',', '}']),
       st.booleans())
def test_parsing_json_text_agrees_with_the_standard_decoder(value, before, after, indent):
  """The parser's fast path (no whitespace around the document) and its slow path give json's answers."""
  text = before + json.dumps(value, indent=1 if indent else None, ensure_ascii=False) + after
  try:
    expected = json.loads(text)
  except ValueError:
    expected = None
  if isinstance(expected, dict):
    assert parse_value(text.encode('utf-8')) == expected
  else:
    with pytest.raises(ValueError):
      parse_value(text.encode('utf-8'))


# --- the compiled fast path (transforms/contract_decoder.py) against json and the schema ----------------------

def _slow_outcome(value):
  """What json and the schema alone make of a message value: the event's values, or the stage and the reason
  that refuse it."""
  try:
    document = parse_value(value)
  except ValueError as error:
    return 'parse', str(error)
  try:
    event = SCHEMA.load(document)
  except marshmallow.ValidationError as error:
    return 'validate', describe_errors(error.normalized_messages())
  return 'valid', (event['date'], event['site_id'], event['views'], event['clicks'])


def _typed(fields: dict) -> dict:
  """Each field's type and value: 1 == 1.0 == True, but an event holds ints and dates only."""
  return {name: (type(value), value) for name, value in fields.items()}


def _mostly(usual, unusual):
  """Draws from ``usual`` three times in four, else from ``unusual``."""
  return st.sampled_from([False, False, False, True]).flatmap(lambda odd: unusual if odd else usual)


# Message values as JSON text is written and miswritten: the contract's keys, escaped or not, and others, in any
# order and repeated; integers past 64 bits and past Python's digit limit, floats (1.0, 1e3), booleans, null,
# strings of digits, escapes (\u0041, \/), lone surrogates, deep nesting, NaN and Infinity; whitespace inside and
# around, a UTF-8 BOM, bytes that are not UTF-8.
_WHITESPACE = st.sampled_from(['', '', ' ', '\n', '\t', '\r\n  '])
_KEYS = st.sampled_from(['"date"', '"site_id"', '"views"', '"clicks"', '"d\\u0061te"', '"site\\u005fid"', '"x"',
                         '"note"', '"caf\u00e9"', '"\\ud800"', '"\\/"', '"\udcff"'])
_LITERALS = st.sampled_from([
    '-0', '1.0', '1e3', '1E3', '0.0', '-0.0', '1.5', '1e400', '18446744073709551616', '-9223372036854775809', '9' * 40,
    'true', 'false', 'null', '"10"', '"3491"',
    '"\\u0041"', '"a\\/b"', '"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"2017\\u002d02-04"', '"\\u0032017-02-04"'])
# What msgspec alone would take in an unknown field though json refuses it: an integer past Python's digit limit, a
# surrogate's UTF-8 encoding (the text is encoded with surrogatepass).
_HAZARDS = st.sampled_from(['9' * 4400, '"caf\udcff"'])
_NOT_JSON = st.sampled_from(['NaN', 'Infinity', '-Infinity', '01', '1.', '+1', '.5', '"\\x41"', '[1,]'])
_SCALARS = st.one_of(st.integers(min_value=-2**70, max_value=2**70).map(str), _edge_integers.map(str), _LITERALS,
                     _dates.map(json.dumps), st.text(max_size=8).map(lambda text: json.dumps(text, ensure_ascii=False)),
                     _NOT_JSON)
_NESTED = st.sampled_from([1, 2, MAX_NESTING - 1, MAX_NESTING, MAX_NESTING + 1, 400, 990, 1200]).flatmap(
    lambda depth: st.sampled_from(['[' * depth + ']' * depth, '{"a":' * depth + '0' + '}' * depth]))
_VALUES = _mostly(
    st.one_of(_SCALARS, _NESTED, st.lists(_SCALARS, max_size=3).map(lambda items: '[' + ', '.join(items) + ']')),
    _HAZARDS)
_MEMBERS = st.one_of(
    st.tuples(_WHITESPACE, _KEYS, _WHITESPACE, _VALUES, _WHITESPACE).map(
        lambda m: f'{m[0]}{m[1]}{m[2]}:{m[2]}{m[3]}{m[4]}'),
    st.tuples(st.sampled_from(['views', 'clicks']), st.integers(0, MAX_COUNT)).map(lambda m: f'"{m[0]}": {m[1]}'))
_VALID_MEMBERS = st.tuples(st.dates().map(lambda day: f'"date": "{day.isoformat()}"'),
                           st.integers(0, MAX_SITE_ID).map(lambda site_id: f'"site_id": {site_id}'))
# Members in any order, duplicates included; often with a valid date and site_id among them.
_OBJECTS = st.tuples(_mostly(_VALID_MEMBERS, st.just(())), st.lists(_MEMBERS, max_size=4)).flatmap(
    lambda parts: st.permutations([*parts[0], *parts[1]])).map(lambda members: '{' + ','.join(members) + '}')
# JSON whitespace, a UTF-8 BOM, whitespace JSON does not allow, extra data.
_BEFORE = _mostly(st.just(''), st.sampled_from([' ', '\r\n', '\t', '\ufeff', '\x0c', '\u00a0']))
_AFTER = _mostly(st.just(''), st.sampled_from([' ', '\r\n', '\t', '\x0c', '\u00a0', 'x', '}']))
# A byte that is not UTF-8, an overlong or a surrogate's encoding, NUL, a UTF-8 BOM.
_INSERTED = _mostly(st.just(b''), st.sampled_from([b'\xff', b'\xc0\xaf', b'\xed\xa0\x80', b'\x00', b'\xef\xbb\xbf']))
# A valid event with one more field, whose value is anything above.
_EVENTS_WITH_ONE_MORE_FIELD = st.tuples(_VALID_MEMBERS, _KEYS, _VALUES).map(
    lambda parts: '{' + ', '.join(parts[0]) + f', {parts[1]}: {parts[2]}' + '}')
# Objects, else any other JSON text.
_BODIES = _mostly(st.one_of(_OBJECTS, _EVENTS_WITH_ONE_MORE_FIELD, _documents.map(json.dumps)), _VALUES)


@st.composite
def _composed_values(draw) -> bytes:
  text = draw(_BEFORE) + draw(_BODIES) + draw(_AFTER)
  value = text.encode('utf-8', 'surrogatepass')  # a lone surrogate in the text becomes bytes that are not UTF-8
  inserted = draw(_INSERTED)
  at = draw(st.integers(0, len(value))) if inserted else 0
  return value[:at] + inserted + value[at:]


_message_values = _mostly(_composed_values(), st.binary(max_size=80))


_EVENT = b'{"date": "2017-02-04", "site_id": 1, '


@given(_message_values)
@example(_EVENT + b'"x": "\xff"}')
@example(_EVENT + b'"\xed\xa0\x80": 0}')
@example(_EVENT + b'"x": ' + b'9' * 5000 + b'}')
@example(_EVENT + b'"x": ' + b'[' * 990 + b']' * 990 + b'}')
@example(_EVENT + b'"site_id": 2, "site_id": 3}')
@example(b'\xef\xbb\xbf' + _EVENT + b'"views": 1}')
def test_the_fast_path_takes_a_message_only_as_json_and_the_schema_would(value):
  event = DECODER.decode(value)
  if event is not None:
    assert _typed(msgspec.structs.asdict(event)) == _typed(SCHEMA.load(parse_value(value)))


_extras = st.dictionaries(st.sampled_from(['note', 'x', 'caf\u00e9', 'views\u00e9']), st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(exclude_categories=('Cs',)), max_size=8)), max_size=3)


@given(st.dates(), st.integers(0, MAX_SITE_ID), st.one_of(st.none(), st.integers(0, MAX_COUNT)),
       st.one_of(st.none(), st.integers(0, MAX_COUNT)), _extras, st.booleans())
def test_every_valid_event_json_writes_takes_the_fast_path(day, site_id, views, clicks, extras, ensure_ascii):
  document = dict(extras, date=day.isoformat(), site_id=site_id)
  document.update({name: count for name, count in (('views', views), ('clicks', clicks)) if count is not None})
  event = DECODER.decode(json.dumps(document, ensure_ascii=ensure_ascii).encode('utf-8'))
  assert (event.date, event.site_id, event.views, event.clicks) == (day, site_id, views or 0, clicks or 0)


# One pipeline per example: a few batches of many messages each, not shrunk (each run takes a second); the test
# above shrinks a disagreement of the decoder's own.
@settings(max_examples=max(2, settings.default.max_examples // 40),
          phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(st.lists(_message_values, min_size=1, max_size=100))
def test_parse_then_validate_give_each_message_the_outcome_of_json_and_the_schema_alone(values):
  records = [KafkaRecord(b'k', value, 'events', 0, offset, 0) for offset, value in enumerate(values)]
  with TestPipeline(runner=local_runner()) as p:
    parsed = p | beam.Create([RecordBatch.of(records)]) | ParseJson()
    validated = parsed.parsed | Validate()
    valid = validated.valid | beam.FlatMap(
        lambda batch: [(e.source.offset, 'valid', (e.date, e.site_id, e.views, e.clicks)) for e in batch])
    refused = (parsed.dead_letters, validated.dead_letters) | 'DeadLetters' >> beam.Flatten() | beam.Map(
        lambda letter: (letter.source.offset, letter.stage, letter.reason))
    assert_that((valid, refused) | 'Outcomes' >> beam.Flatten(),
                equal_to([(offset, *_slow_outcome(value)) for offset, value in enumerate(values)]))
