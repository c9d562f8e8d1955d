"""Which parallel reader of a streaming Flink job reads an element of the splittable Kafka read.

Neither Beam nor Flink offers this as an API; it follows from how the Java side works, redone here in Python for
the versions ``services/flink/pom.xml`` pins (``WRITTEN_FOR``; tests/test_placement.py fails when the pom moves
on, and checks this against the Java classes themselves; tests/test_flink.py against a running job):

- In streaming mode Beam's Flink runner keys the input of a splittable DoFn's stage by the element alone (its
  ``SdfByteBufferKeySelector``): the key is a ``ByteBuffer`` holding the element as the runner sees it. The Python
  SDK's element coder is unknown to Java, so the runner sees it length-prefixed: a varint of the length, then the
  element as the Python coder encodes it. Its residuals keep that key, so a partition stays where it started.
- Flink maps a key to a key group, ``murmurHash(key.hashCode()) % maxParallelism``, and a key group to a subtask,
  ``keyGroup * parallelism // maxParallelism`` (``KeyGroupRangeAssignment``).

In batch mode the runner does not key that stage: the reshuffle before it deals the elements out in turn, so a
bounded job needs no placement.
"""

import dataclasses

# The Java code this copies: Beam's Flink runner (its key) and Flink (its key groups).
WRITTEN_FOR = {'beam.version': '2.62.0', 'flink.minor': '1.19'}

_INT32 = 0xFFFFFFFF
_MAX_KEY_GROUPS = 32768
_MIN_DEFAULT_MAX_PARALLELISM = 128


def _signed32(value: int) -> int:
  value &= _INT32
  return value - (1 << 32) if value & 0x80000000 else value


def _rotate_left(value: int, bits: int) -> int:
  return ((value << bits) | (value >> (32 - bits))) & _INT32


def _byte_buffer_hash(data: bytes) -> int:
  """java.nio.ByteBuffer.hashCode(): from the last byte to the first, h = 31 * h + (signed byte), from 1."""
  code = 1
  for byte in reversed(data):
    code = _signed32(31 * code + (byte - 256 if byte > 127 else byte))
  return code


def _murmur_hash(code: int) -> int:
  """Flink's MathUtils.murmurHash(int): one round of Murmur3 and its finalizer, made non-negative."""
  code = (code & _INT32) * 0xcc9e2d51 & _INT32
  code = _rotate_left(code, 15) * 0x1b873593 & _INT32
  code = (_rotate_left(code, 13) * 5 + 0xe6546b64) & _INT32
  code ^= 4
  code ^= code >> 16
  code = code * 0x85ebca6b & _INT32
  code ^= code >> 13
  code = code * 0xc2b2ae35 & _INT32
  code = _signed32(code ^ (code >> 16))
  return abs(code) if code != -(1 << 31) else 0


def default_max_parallelism(parallelism: int) -> int:
  """Flink's max parallelism when the job names none: 1.5 x parallelism rounded up to a power of two, at least
  128 (KeyGroupRangeAssignment.computeDefaultMaxParallelism)."""
  wanted = parallelism + parallelism // 2
  power = 1
  while power < wanted:
    power <<= 1
  return min(max(power, _MIN_DEFAULT_MAX_PARALLELISM), _MAX_KEY_GROUPS)


def _varint(value: int) -> bytes:
  out = bytearray()
  while True:
    low, value = value & 0x7F, value >> 7
    out.append(low | (0x80 if value else 0))
    if not value:
      return bytes(out)


@dataclasses.dataclass(frozen=True)
class FlinkKeyedReaders:
  """The parallel readers of a streaming Flink job, which Flink gives each element by a hash of it: what the Kafka
  read's planning needs to spread the partitions evenly (``io/kafka/placement.py``)."""

  readers: int
  max_parallelism: int = 0  # 0: Flink's default for ``readers``

  def reader_of(self, encoded_element: bytes) -> int:
    """The subtask that reads the element the Python coder encodes as ``encoded_element``."""
    key = _varint(len(encoded_element)) + encoded_element
    max_parallelism = self.max_parallelism or default_max_parallelism(self.readers)
    return _murmur_hash(_byte_buffer_hash(key)) % max_parallelism * self.readers // max_parallelism
