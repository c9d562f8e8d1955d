"""Sending a bundle's counter UPDATEs, and telling a refused write from a failed one.

The UPDATEs of one date (one partition) travel together as counter batches of up to ``statements_per_batch``,
at most ``max_concurrent_writes`` requests in flight. A refused write (Cassandra or the driver rejected it for
good: the table dropped or altered under the job, a permission revoked) applied nothing. A failed write (timeout,
connection lost) may have been applied. Neither is resent here: counter UPDATEs are not idempotent, and what a
refusal means is the caller's to say.
"""

import dataclasses
from typing import List, Tuple

from beam_pipeline.io.cassandra.counter_sums import CounterKey, CounterWrite


def counter_retry_policy():
  from cassandra.policies import RetryPolicy

  class CounterRetryPolicy(RetryPolicy):
    """Retries only what certainly was not applied: a counter write that may have landed is never resent."""

    def on_unavailable(self, query, consistency, required_replicas, alive_replicas, retry_num):
      # Unavailable is answered before the write is attempted, so another coordinator may try it once.
      return (self.RETRY_NEXT_HOST, None) if retry_num == 0 else (self.RETHROW, None)

    def on_write_timeout(self, *args, **kwargs):
      return self.RETHROW, None

    def on_read_timeout(self, *args, **kwargs):
      return self.RETHROW, None

    def on_request_error(self, *args, **kwargs):
      return self.RETHROW, None

  return CounterRetryPolicy()


def is_refusal(error) -> bool:
  """Cassandra refused the write for good (InvalidRequest: the table is gone or changed; Unauthorized: the role
  may no longer modify it), or the driver could not encode the values for the table's columns (TypeError and the
  like, for a value out of a column's range), as opposed to a failure that may have applied them."""
  from cassandra import InvalidRequest, Unauthorized
  return isinstance(error, (InvalidRequest, Unauthorized, TypeError, ValueError, OverflowError))


@dataclasses.dataclass
class WriteOutcome:
  counted: int = 0  # messages whose increments Cassandra acknowledged
  requests: int = 0  # round trips: single UPDATEs and counter batches
  refused: List[Tuple[CounterKey, Exception]] = dataclasses.field(default_factory=list)
  failed: List[Tuple[CounterKey, Exception]] = dataclasses.field(default_factory=list)


class CounterRequests:
  """Sends counter writes through one session with the prepared increment UPDATE."""

  def __init__(self, session, update, statements_per_batch: int, max_concurrent_writes: int):
    self._session = session
    self._update = update
    self._statements_per_batch = statements_per_batch
    self._max_concurrent_writes = max_concurrent_writes

  def send(self, writes: List[CounterWrite]) -> WriteOutcome:
    from cassandra.concurrent import execute_concurrent
    outcome = WriteOutcome()
    sent, statements = [], []
    for group in self._group_by_partition(writes):
      try:
        statements.append((self._statement_for(group), ()))
        sent.append(group)
      except Exception as error:  # pylint: disable=broad-except
        if not is_refusal(error):
          raise
        outcome.refused.extend((key, error) for key, _ in group)  # a value the driver cannot encode: not sent
    results = execute_concurrent(self._session, statements, concurrency=self._max_concurrent_writes,
                                 raise_on_first_error=False)
    outcome.requests += len(statements)
    for group, (success, result) in zip(sent, results):
      if success:
        outcome.counted += sum(key_sum.messages for _, key_sum in group)
      else:
        (outcome.refused if is_refusal(result) else outcome.failed).extend((key, result) for key, _ in group)
    return outcome

  def _group_by_partition(self, writes: List[CounterWrite]) -> List[List[CounterWrite]]:
    by_date = {}
    for key, key_sum in writes:
      by_date.setdefault(key[0], []).append((key, key_sum))
    size = self._statements_per_batch
    return [group[i:i + size] for group in by_date.values() for i in range(0, len(group), size)]

  def _statement_for(self, group: List[CounterWrite]):
    if len(group) == 1:
      (day, site_id), key_sum = group[0]
      return self._update.bind((key_sum.views, key_sum.clicks, day, site_id))
    from cassandra.query import BatchStatement, BatchType
    # One partition per batch: Cassandra applies it as a single mutation, without the batch log. No consistency
    # of its own, which would override the session's default profile (the write level).
    batch = BatchStatement(batch_type=BatchType.COUNTER, retry_policy=self._update.retry_policy)
    for (day, site_id), key_sum in group:
      batch.add(self._update, (key_sum.views, key_sum.clicks, day, site_id))
    return batch
