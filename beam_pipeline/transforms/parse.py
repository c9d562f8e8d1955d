"""ParseJson: a message's value must be UTF-8 text holding one JSON object.

A value that surely meets the data contract too is decoded straight into a checked event, in one compiled pass
(contract_decoder.py), which Validate takes as it is; any other value is decoded here with json into a dict, and
Validate's schema decides it.
"""

import json
import re
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_pipeline import metrics
from beam_pipeline.records import DeadLetter, ParsedBatch, RecordBatch
from beam_pipeline.transforms.contract_decoder import ContractDecoder
from beam_pipeline.transforms.validate import SiteEventSchema

STAGE = 'parse'


def _refuse_constant(name: str) -> Any:
  # Python's json accepts NaN and Infinity; JSON does not.
  raise ValueError(f'{name} is not valid JSON')


# One decoder for every message: json.loads builds a new one per call when given options.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
# The decoder's scanner, called directly for the common case of a value with no whitespace around it: decode()
# matches a whitespace pattern on each side of the document, which cost as much as the scan itself.
_SCAN_FROM = _DECODER.scan_once


# json recurses once per level of nesting. Near the interpreter's recursion limit any finalizer the garbage
# collector runs fails ("Exception ignored"), whoever owns it: deeper documents are refused before json sees them.
MAX_NESTING = 256
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r'[\[\]{}]')


def _nesting(text: str) -> int:
  """How deep the arrays and objects of ``text`` nest, brackets inside strings aside (an unterminated string's
  count: it is refused either way). Only the brackets are visited, not every character."""
  depth = deepest = 0
  for bracket in _BRACKET.findall(_STRING.sub('""', text)):
    if bracket in '[{':
      depth += 1
      deepest = max(deepest, depth)
    else:
      depth -= 1
  return deepest


def parse_value(value) -> dict:
  """The JSON object held by a message value; raises ValueError with a readable reason otherwise."""
  if value is None:
    raise ValueError('message has no value (null/tombstone)')
  try:
    text = value.decode('utf-8')
  except UnicodeDecodeError as error:
    raise ValueError(f'value is not UTF-8 text: {error}') from None
  # Counting the brackets is enough for nearly every value; only one with many is measured.
  if text.count('[') + text.count('{') > MAX_NESTING and _nesting(text) > MAX_NESTING:
    raise ValueError('value is not valid JSON: nested too deeply')
  try:
    document, end = _SCAN_FROM(text, 0)
    if end == len(text) and type(document) is dict:
      return document
  except (StopIteration, ValueError, RecursionError):
    pass  # decoded again below, for the reason
  try:
    document = _DECODER.decode(text)
  except RecursionError:
    raise ValueError('value is not valid JSON: nested too deeply') from None
  except ValueError as error:  # JSONDecodeError, and integers longer than Python will convert
    raise ValueError(f'value is not valid JSON: {error}') from None
  if not isinstance(document, dict):
    raise ValueError(f'value is JSON {type(document).__name__}, not an object')
  return document


class ParseJsonFn(beam.DoFn):
  DEAD_LETTERS = 'dead_letters'

  def __init__(self):
    self._contract_decoder = None
    self._parsed = Metrics.counter(metrics.NAMESPACE, metrics.MESSAGES_PARSED)
    self._refused = Metrics.counter(metrics.NAMESPACE, metrics.dead_lettered(STAGE))

  def setup(self):
    self._contract_decoder = ContractDecoder(SiteEventSchema)

  def start_bundle(self):
    # Counted once per bundle: a metric update per message costs more.
    self._parsed_in_bundle = self._refused_in_bundle = 0

  def process(self, records: RecordBatch):
    decode_checked = self._contract_decoder.decode
    positions, documents = [], []
    for position, value in enumerate(records.values):
      document = decode_checked(value)
      if document is None:
        try:
          document = parse_value(value)
        except ValueError as error:
          self._refused_in_bundle += 1
          yield beam.pvalue.TaggedOutput(self.DEAD_LETTERS, DeadLetter(STAGE, str(error), records.record(position)))
          continue
      positions.append(position)
      documents.append(document)
    if documents:
      self._parsed_in_bundle += len(documents)
      yield ParsedBatch(records, positions, documents)

  def finish_bundle(self):
    self._parsed.inc(self._parsed_in_bundle)
    if self._refused_in_bundle:  # a stage that refused nothing has no dead-letter count (the summary lists those)
      self._refused.inc(self._refused_in_bundle)


class ParseJson(beam.PTransform):
  """RecordBatches in; ParsedBatches on the main output, one DeadLetter per refused message on ``dead_letters``."""

  def expand(self, records):
    return records | 'ParseJsonObjects' >> beam.ParDo(ParseJsonFn()).with_output_types(ParsedBatch).with_outputs(
        ParseJsonFn.DEAD_LETTERS, main='parsed')
