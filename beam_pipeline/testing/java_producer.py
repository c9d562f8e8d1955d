"""Messages sent with Kafka's own Java producer (``java/ProduceEvents.java``), so that tests read record batches
exactly as Java clients write them, compressed with any codec Kafka has.

The program runs as a single source file (JDK 11+) on the broker's own jars and java: nothing to build.
"""

import subprocess
from pathlib import Path
from typing import Iterable

from beam_pipeline.devservices.kafka import KafkaBroker
from beam_pipeline.processes import jvm
from beam_pipeline.tools.produce import ExpectedTotals, SyntheticMessage

PRODUCE_EVENTS = Path(__file__).resolve().parent / 'java' / 'ProduceEvents.java'
# Every codec a Kafka producer can compress with (besides none).
CODECS = ('gzip', 'snappy', 'lz4', 'zstd')
_TIMEOUT_S = 180


def _line(message: SyntheticMessage) -> bytes:
  """The message as ProduceEvents reads it with --keys: key, tab, value; a key alone for a null value."""
  if b'\t' in message.key or b'\n' in message.key or (message.value is not None and b'\n' in message.value):
    raise ValueError(f'ProduceEvents cannot send a key with a tab or newline, nor a value with a newline: {message}')
  return message.key if message.value is None else message.key + b'\t' + message.value


def produce_with_java(broker: KafkaBroker, topic: str, messages: Iterable[SyntheticMessage],
                      compression: str = 'none') -> ExpectedTotals:
  """Sends every message (acks=all) with the Java producer compressing with ``compression``; returns what the
  counters must add up to, with the partition and offset of each invalid message, as ``produce.produce`` does."""
  expected = ExpectedTotals()
  sent = []
  for message in messages:
    expected.add(message)
    sent.append(message)
  command = [broker.java(), '-cp', jvm.classpath(broker.jars_dir), str(PRODUCE_EVENTS),
             '--bootstrap-servers', broker.address, '--topic', topic, '--compression', compression, '--keys']
  stdin = b''.join(_line(message) + b'\n' for message in sent)
  result = subprocess.run(command, input=stdin, capture_output=True, timeout=_TIMEOUT_S)
  if result.returncode != 0:
    raise RuntimeError(f'ProduceEvents.java exited with {result.returncode}:\n{result.stderr.decode(errors="replace")}')
  try:
    positions = [tuple(int(field) for field in line.split(' ')) for line in result.stdout.decode().splitlines()]
  except ValueError:
    raise RuntimeError(f'ProduceEvents.java printed more than partitions and offsets:\n{result.stdout!r}') from None
  if len(positions) != len(sent) or any(len(position) != 2 for position in positions):
    raise RuntimeError(f'ProduceEvents.java acknowledged {len(positions)} of {len(sent)} messages')
  for message, position in zip(sent, positions):
    if message.invalid_kind is not None:
      expected.invalid_offsets[position] = message.invalid_kind
  return expected
