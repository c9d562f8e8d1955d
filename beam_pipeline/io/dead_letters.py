"""Dead letters: every refused message, with the stage and the reason, to Kafka and optionally to files.

The record itself (its fields, and how one too large for its topic is cut) is ``dead_letter_record.py``.
Files hold every record whole.
"""

import hashlib
import logging
import time
import uuid
from typing import Optional

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_pipeline import metrics
from beam_pipeline.records import DeadLetter
from beam_pipeline.io.dead_letter_producer import open_producer
from beam_pipeline.io.dead_letter_record import RECORD_OVERHEAD_BYTES, DeadLetterTooLarge, fitted_json, to_json
from beam_pipeline.io.kafka.admin import KAFKA_DEFAULT_MAX_MESSAGE_BYTES, TopicConfigError, topic_max_message_bytes
from beam_pipeline.io.kafka.fetch import KAFKA_CLIENTS, KAFKA_PYTHON
from beam_pipeline.io.security import KafkaSecurity
from beam_pipeline.errors import DeadLetterPublishError

_LOGGER = logging.getLogger(__name__)
_PRODUCER_TIMEOUT_S = 30


class _PublishDeadLettersFn(beam.DoFn):
  """Sends each dead letter to the topic; the bundle finishes only when Kafka has acknowledged all of them.

  The producer is kafka-python's or librdkafka's, as the job reads (dead_letter_producer.py)."""

  def __init__(self, bootstrap_servers: str, topic: str, security: KafkaSecurity, kafka_client: str):
    self._bootstrap_servers = bootstrap_servers
    self._topic = topic
    self._security = security
    self._kafka_client = kafka_client
    self._producer = None
    self._published = Metrics.counter(metrics.NAMESPACE, metrics.DEAD_LETTERS_PUBLISHED)

  def setup(self):
    self._max_record_bytes = self._topic_limit()
    self._producer = open_producer(self._kafka_client, self._bootstrap_servers, self._topic, self._security,
                                   self._max_record_bytes, _PRODUCER_TIMEOUT_S)

  def _topic_limit(self) -> int:
    """The topic's max.message.bytes; Kafka's default when the brokers will not say (then a topic set higher
    gets records cut shorter than they had to be, never a record it refuses, unless it is set lower)."""
    try:
      return topic_max_message_bytes(self._bootstrap_servers, self._topic, self._security, _PRODUCER_TIMEOUT_S)
    except TopicConfigError as error:
      _LOGGER.warning('could not read max.message.bytes of dead-letter topic %s (%s); dead letters are cut to '
                      "Kafka's default of %d bytes", self._topic, error, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)
      return KAFKA_DEFAULT_MAX_MESSAGE_BYTES

  def process(self, dead_letter: DeadLetter):
    key = dead_letter.source.key
    if key is not None and len(key) > self._max_record_bytes // 4:
      key = None  # a key this large would crowd out the record: it stays in the record, cut if need be
    try:
      value = fitted_json(dead_letter, self._max_record_bytes - RECORD_OVERHEAD_BYTES - len(key or b''))
    except DeadLetterTooLarge as error:
      raise DeadLetterPublishError(f'{error}: raise max.message.bytes of {self._topic!r}') from None
    self._producer.send(key, value)

  def finish_bundle(self):
    delivery = self._producer.flush()
    self._published.inc(delivery.acknowledged)
    not_acknowledged = len(delivery.failures) + delivery.unanswered
    if not_acknowledged:
      why = f'first: {delivery.failures[0]!r}' if delivery.failures else f'no answer within {_PRODUCER_TIMEOUT_S}s'
      raise DeadLetterPublishError(f'{not_acknowledged} dead letters were not acknowledged by {self._topic!r} '
                                   f'({why})')

  def teardown(self):
    if self._producer is not None:
      self._producer.close()
      self._producer = None


class _WriteDeadLetterFilesFn(beam.DoFn):
  """Writes each bundle's dead letters to one new JSON-lines file, closed before the bundle completes.

  One file per bundle (and none for a bundle without dead letters) needs no grouping, so files appear while a
  streaming job runs, on every runner; ``FileSystems`` makes the same code write to local disk or gs://. The file
  is written under a temporary name and renamed, so a reader never sees it partial; its name is derived from the
  messages it holds (the newest one's Kafka time and a digest of their offsets), so a bundle retried with the same
  messages replaces its file rather than leaving a second one.
  """

  def __init__(self, directory: str):
    self._directory = directory

  def start_bundle(self):
    self._letters = []

  def process(self, dead_letter: DeadLetter):
    self._letters.append(dead_letter)

  def finish_bundle(self):
    letters, self._letters = self._letters, []
    if not letters:
      return
    sources = sorted((letter.source.topic, letter.source.partition, letter.source.offset) for letter in letters)
    digest = hashlib.sha256(repr(sources).encode('utf-8')).hexdigest()[:24]
    newest_s = max(letter.source.timestamp_ms for letter in letters) / 1000
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(max(newest_s, 0)))
    path = FileSystems.join(self._directory, f'dead-letters-{stamp}-{digest}.jsonl')
    temporary = FileSystems.join(self._directory, f'.dead-letters-{digest}-{uuid.uuid4().hex}.tmp')
    with FileSystems.create(temporary, mime_type='application/x-ndjson') as out:
      out.write(''.join(to_json(letter) + '\n' for letter in letters).encode('utf-8'))
    FileSystems.rename([temporary], [path])


class WriteDeadLetters(beam.PTransform):
  """Publishes DeadLetters to a Kafka topic when ``topic`` is given and writes them as JSON lines into
  ``directory`` when that is given.

  Takes one PCollection, or a dict of them by the stage that refused them. Each is written in its own branch,
  never flattened first: a Flatten of several inputs is a stage of its own, which the local runner does not run
  while a streaming read goes on, and a branch fused with the reader makes the reader's bundle, and so its
  offset commit, wait until that bundle's dead letters are acknowledged.

  ``kafka_client`` names the client that publishes them (fetch.py's names, as ``--kafka_client``).
  """

  def __init__(self, bootstrap_servers: str, topic: Optional[str], directory: Optional[str] = None,
               security: KafkaSecurity = KafkaSecurity(), kafka_client: str = KAFKA_PYTHON):
    super().__init__()
    if not topic and not directory:
      raise ValueError('WriteDeadLetters needs a topic, a directory or both')
    if kafka_client not in KAFKA_CLIENTS:
      raise ValueError(f'WriteDeadLetters publishes with one of {", ".join(KAFKA_CLIENTS)}, not {kafka_client!r}')
    self._bootstrap_servers = bootstrap_servers
    self._topic = topic
    self._directory = directory
    self._security = security
    self._kafka_client = kafka_client

  def expand(self, dead_letters):
    """Returns the output of every writing step by its label, for stages that must run only after all of them."""
    by_stage = dead_letters if isinstance(dead_letters, dict) else {'': dead_letters}
    written = {}
    for stage, letters in by_stage.items():
      if self._topic:
        label = f'PublishToKafka{stage}'
        written[label] = letters | label >> beam.ParDo(
            _PublishDeadLettersFn(self._bootstrap_servers, self._topic, self._security, self._kafka_client))
      if self._directory:
        label = f'WriteJsonLines{stage}'
        written[label] = letters | label >> beam.ParDo(_WriteDeadLetterFilesFn(self._directory))
    return written

  def display_data(self):
    return {'dead_letter_topic': self._topic or '', 'dead_letter_path': self._directory or '',
            'dead_letter_kafka_client': self._kafka_client}
