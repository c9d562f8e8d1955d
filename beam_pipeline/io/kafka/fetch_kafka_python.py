"""The reader's fetches through kafka-python: the default client."""

import re
from typing import Dict, Optional, Tuple

from beam_pipeline.errors import KafkaReadError
from beam_pipeline.io.kafka.fetch import OffsetsError, PartitionFetcher
from beam_pipeline.records import RecordBatch

# kafka-python decodes these codecs only with an optional package (gzip needs none); setup.py installs them all, so
# this names what to install on a machine that lost one.
CODEC_PACKAGES = {'lz4': 'lz4', 'snappy': 'python-snappy', 'zstd': 'zstandard'}
_MISSING_CODEC = re.compile(r'Libraries for (\w+) compression codec not found')


class KafkaPythonFetcher(PartitionFetcher):

  def __init__(self, config, client_role: str):
    self._consumer = config.connected_consumer(client_role)

  def assign(self, positions: Dict) -> None:
    self._consumer.assign(list(positions))
    for tp, offset in positions.items():
      self._consumer.seek(tp, offset)

  def fetch(self, max_records: int, timeout_s: float) -> Dict:
    from kafka.errors import UnsupportedCodecError
    try:
      fetched = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
    except UnsupportedCodecError as error:
      # Retrying cannot help and skipping would lose the batch: the job stops, saying what to install.
      raise KafkaReadError(self._undecodable(error)) from None
    return {tp: RecordBatch(tp.topic, tp.partition, [r.offset for r in records], [r.timestamp for r in records],
                            [r.key for r in records], [r.value for r in records])
            for tp, records in fetched.items() if records}

  def _undecodable(self, error) -> str:
    """One line for a batch kafka-python cannot decompress: its codec, where it is, and what to install."""
    # The batch is the next one of a partition assigned: the positions stop before it (kafka-python raises only
    # once the records before it are returned).
    where = ', '.join(f'topic {tp.topic} partition {tp.partition} offset {self._consumer.position(tp)}'
                      for tp in sorted(self._consumer.assignment()))
    if len(self._consumer.assignment()) > 1:
      where = f'one of: {where}'
    missing = _MISSING_CODEC.search(str(error))
    if missing is None:
      return f'cannot decode a record batch at {where}: kafka-python says {error}; --kafka_client confluent may read it'
    codec = missing.group(1)
    package = CODEC_PACKAGES.get(codec, codec)
    return (f'the record batch at {where} is {codec}-compressed and kafka-python cannot decompress {codec} without '
            f'the {package} package: pip install {package} (or read with --kafka_client confluent)')

  def position(self, tp) -> int:
    return self._consumer.position(tp)

  def highwater(self, tp) -> Optional[int]:
    return self._consumer.highwater(tp)

  def log_range(self, tp) -> Tuple[int, int]:
    return self._consumer.beginning_offsets([tp])[tp], self._consumer.end_offsets([tp])[tp]

  def commit(self, tp, next_offset: int, timeout_s: float) -> None:
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata
    try:
      # Without a deadline kafka-python retries for as long as the group's coordinator does not answer.
      self._consumer.commit({tp: OffsetAndMetadata(next_offset, '', -1)}, timeout_ms=int(timeout_s * 1000))
    except KafkaError as error:
      raise OffsetsError(str(error)) from error

  def committed(self, tp, timeout_s: float) -> Optional[int]:
    from kafka.errors import KafkaError
    try:
      return self._consumer.committed(tp, timeout_ms=int(timeout_s * 1000))
    except KafkaError as error:
      raise OffsetsError(str(error)) from error

  def metadata_consumer(self):
    return self._consumer

  def close(self) -> None:
    self._consumer.close(autocommit=False)
