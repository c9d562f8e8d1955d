"""kafka-python's private names and details that the job relies on, each with the reason no public call does the job.

Checked against the kafka-python versions setup.py allows; tests/test_compat.py fails when they change.
The consumer's public metadata calls (``topics()``, ``partitions_for_topic()``) poll its client until an answer
comes, without a deadline: when every connection fails after the TCP handshake (a refused SASL login, a TLS
mismatch) no answer ever comes. So the metadata calls here poll the consumer's own client, with one.
"""

import logging
import time
from typing import Optional

from beam_pipeline.compat import require_version

KAFKA_PYTHON_VERSION = require_version('kafka-python', ('2.3.',))


def refresh_metadata(consumer, timeout_s: float) -> bool:
  """One metadata round trip for the consumer's topics, waited for at most ``timeout_s``; whether it succeeded.

  kafka-python's public metadata calls wait without a deadline when every connection fails after the TCP
  handshake (a refused SASL login, a TLS mismatch); the client's own update future can be awaited with one.
  The client is the consumer's private ``_client``."""
  client = consumer._client  # pylint: disable=protected-access
  update = client.cluster.request_update()
  deadline = time.monotonic() + timeout_s
  while not update.is_done and time.monotonic() < deadline:
    client.poll(timeout_ms=200, future=update)
  return update.succeeded()


def cluster_topics(consumer, timeout_s: float) -> Optional[set]:
  """The names of every topic the brokers report, from one metadata round trip waited for at most ``timeout_s``;
  None when no answer came. A topic missing from the answer does not exist (or may not be seen)."""
  consumer._client.cluster.need_all_topic_metadata = True  # pylint: disable=protected-access
  if not refresh_metadata(consumer, timeout_s):
    return None
  return consumer._client.cluster.topics()  # pylint: disable=protected-access


def broker_count(consumer) -> int:
  """How many brokers the consumer's last metadata answer named (for a default replication factor): the
  consumer has the answer already, where the public admin client would open connections of its own."""
  return len(consumer._client.cluster.brokers())  # pylint: disable=protected-access


# The logger, and the start of the DEBUG message, with which KafkaAdminClient logs its whole configuration.
ADMIN_CLIENT_LOGGER = 'kafka.admin.client'
ADMIN_CLIENT_CONFIGURATION_MESSAGE = 'Starting KafkaAdminClient with configuration'


class RedactAdminClientConfiguration(logging.Filter):
  """kafka-python's admin client logs its whole configuration at DEBUG, the SASL password included; the record
  keeps every setting but that one. kafka-python has no setting to leave the configuration out, so the filter
  recognises the record by the client's exact message text."""

  def filter(self, record):
    # logging keeps a lone mapping argument as the args themselves.
    if (isinstance(record.msg, str) and record.msg.startswith(ADMIN_CLIENT_CONFIGURATION_MESSAGE)
        and isinstance(record.args, dict)):
      record.args = ({key: '<redacted>' if 'password' in key else value for key, value in record.args.items()},)
    return True


def redact_admin_client_configuration() -> None:
  """Keeps the SASL password out of the admin client's configuration log record (once per process)."""
  logger = logging.getLogger(ADMIN_CLIENT_LOGGER)
  if not any(isinstance(existing, RedactAdminClientConfiguration) for existing in logger.filters):
    logger.addFilter(RedactAdminClientConfiguration())


def finish_rebalance(consumer) -> None:
  """Makes the consumer's next poll complete a rebalance that an earlier poll's deadline interrupted.

  kafka-python 2.3 tells whether to go on joining the group from its own flag, or from a changed subscription
  (a pattern that matches a new topic) or partition count. Once the JoinGroup request of a rejoin of the second
  kind is sent, the change no longer shows; if the poll's deadline passes before the SyncGroup answer, later polls
  find nothing to do and the member stays without partitions (its rebalance listener never hears of the
  assignment). Setting the flag makes the next poll take up the pending join, which completes it; while nothing is
  pending, it is a rebalance the group sees as any member's rejoin. The flag is set through the coordinator's
  ``request_rejoin``, on the consumer's private ``_coordinator``."""
  consumer._coordinator.request_rejoin()  # pylint: disable=protected-access
