"""Properties of the data contract, checked on many generated documents (hypothesis; how many is the profile's
choice: tests/conftest.py)."""

import datetime
import json
import re

import marshmallow
import pytest
from hypothesis import given
from hypothesis import strategies as st

from beam_pipeline.transforms.parse import parse_value
from beam_pipeline.transforms.validate import CompiledContract, SiteEventSchema, describe_errors

SCHEMA = SiteEventSchema()
CONTRACT = CompiledContract(SCHEMA)

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
def test_the_compiled_contract_agrees_with_the_schema(document):
  assert CONTRACT.compiled
  assert CONTRACT.load(document) == _schema_result(document)


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
