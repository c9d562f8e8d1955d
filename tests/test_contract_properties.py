"""Properties of the data contract, checked on many generated documents (hypothesis)."""

import json

import marshmallow
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_pipeline.transforms.parse import parse_value
from beam_pipeline.transforms.validate import CompiledContract, SiteEventSchema

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


def _schema_result(document):
  try:
    return SCHEMA.load(document)
  except marshmallow.ValidationError:
    return None


@settings(max_examples=3000, deadline=None)
@given(_documents)
def test_the_compiled_contract_agrees_with_the_schema(document):
  assert CONTRACT.compiled
  assert CONTRACT.load(document) == _schema_result(document)


@settings(max_examples=1000, deadline=None)
@given(_documents)
def test_a_valid_event_keeps_its_values_and_an_invalid_one_names_its_fields(document):
  result = _schema_result(document)
  if result is None:
    try:
      SCHEMA.load(document)
    except marshmallow.ValidationError as error:
      assert set(error.normalized_messages()) <= {'date', 'site_id', 'views', 'clicks'}
    return
  for field in ('site_id', 'views', 'clicks'):
    assert type(result[field]) is int and result[field] >= 0
    assert result[field] == document.get(field, 0)
  assert result['date'].isoformat() == document['date']


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_parsing_arbitrary_bytes_either_gives_an_object_or_a_reason(raw):
  try:
    document = parse_value(raw)
  except ValueError as error:
    assert str(error)
    return
  assert isinstance(document, dict) and json.loads(raw.decode('utf-8')) == document


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children,
                                                                                max_size=3)),
    max_leaves=10)


@settings(max_examples=2000, deadline=None)
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
