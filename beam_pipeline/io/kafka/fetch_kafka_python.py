"""The reader's fetches through kafka-python: the default client."""

from typing import Dict, Optional

from beam_pipeline.io.kafka.fetch import OffsetsError, PartitionFetcher
from beam_pipeline.records import RecordBatch


class KafkaPythonFetcher(PartitionFetcher):

  def __init__(self, config, client_role: str):
    self._consumer = config.connected_consumer(client_role)

  def assign(self, positions: Dict) -> None:
    self._consumer.assign(list(positions))
    for tp, offset in positions.items():
      self._consumer.seek(tp, offset)

  def fetch(self, max_records: int, timeout_s: float) -> Dict:
    fetched = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
    return {tp: RecordBatch(tp.topic, tp.partition, [r.offset for r in records], [r.timestamp for r in records],
                            [r.key for r in records], [r.value for r in records])
            for tp, records in fetched.items() if records}

  def position(self, tp) -> int:
    return self._consumer.position(tp)

  def highwater(self, tp) -> Optional[int]:
    return self._consumer.highwater(tp)

  def commit(self, tp, next_offset: int) -> None:
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata
    try:
      self._consumer.commit({tp: OffsetAndMetadata(next_offset, '', -1)})
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
