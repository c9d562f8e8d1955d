"""What a Kafka read is configured with, and the kafka-python consumers it makes."""

import dataclasses
import uuid
from typing import Optional, Tuple

from beam_pipeline.compat.kafka import refresh_metadata
from beam_pipeline.errors import KafkaReadError
from beam_pipeline.io.kafka.consumer_settings import ConsumerSettings
from beam_pipeline.io.kafka.fetch import KAFKA_PYTHON
from beam_pipeline.io.kafka.placement import ReaderPlacement
from beam_pipeline.io.security import KafkaSecurity

# How long to wait, by default, for a broker or a topic's metadata before calling the source unreachable.
DEFAULT_CONNECT_TIMEOUT_S = 30.0
# What one partition reads into a bundle, by default, before checkpointing. The writer sums a bundle's increments
# per key, so larger bundles mean fewer writes (1 M messages over 4 partitions and 10 k keys: 131 k writes at
# 20 000, 30 k at 100 000, 10 k at 400 000), and less work for Cassandra. Memory grows with it: the writer holds
# each message's offset and increment until the bundle ends (about 18 bytes), not its bytes.
DEFAULT_MAX_RECORDS_PER_BUNDLE = 400000
# How long, at most by default, one partition reads into a bundle.
DEFAULT_MAX_BUNDLE_SECONDS = 5.0
# How long a broker holds a fetch that finds nothing new (Kafka's default is 500 ms). A reader reads its partitions
# in turn, and while a fetch of one is held, no other fetch goes to that broker: a caught-up partition held up the
# next one's reading for the whole wait.
FETCH_WAIT_MS = 100
# Streaming: partitions the topic may gain while the job runs and still be read without a restart.
DEFAULT_PARTITION_HEADROOM = 8
# Streaming with a topic pattern: how often to look for new matching topics.
DEFAULT_TOPIC_DISCOVERY_INTERVAL_S = 30.0
# Streaming: how often each reader logs the rate and lag of the partitions it reads (0: never).
DEFAULT_PROGRESS_INTERVAL_S = 10.0
# kafka-python waits retry_backoff_ms (100 by default) between two metadata requests, even the first few that any
# new client makes (bootstrap, then the partitions' leader, then the group's coordinator): a planner took 216 ms
# with 100 and 49 ms with 20, and a job makes several clients on its way to reading.
METADATA_RETRY_BACKOFF_MS = 20
# What to do with a committed (or --start_offsets) offset outside the partition's log (retention removed messages
# past it, or the topic was recreated): fail, like Kafka's auto.offset.reset=none, so that nobody loses or skips
# messages without deciding to; earliest and latest start at the log's beginning or end instead.
OFFSET_RESET_FAIL = 'fail'
OFFSET_RESETS = ('earliest', 'latest', OFFSET_RESET_FAIL)
DEFAULT_OFFSET_RESET = OFFSET_RESET_FAIL


@dataclasses.dataclass(frozen=True)
class KafkaReadConfig:
  bootstrap_servers: str
  topics: Tuple[str, ...]  # read into one stream; a single name may be given as a string
  consumer_group: Optional[str]
  start_offset: str = 'earliest'
  start_time_ms: Optional[int] = None
  stop_time_ms: Optional[int] = None
  bounded: bool = False
  # A window backfill neither starts from nor moves the group's offsets.
  commit_offsets: bool = True
  use_committed_offsets: bool = True
  start_offsets: Tuple[Tuple[str, int, int], ...] = ()  # (topic, partition, offset)
  stop_offsets: Tuple[Tuple[str, int, int], ...] = ()
  max_records_per_bundle: int = DEFAULT_MAX_RECORDS_PER_BUNDLE
  max_bundle_seconds: float = DEFAULT_MAX_BUNDLE_SECONDS
  connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
  security: KafkaSecurity = KafkaSecurity()
  # Streaming: how many partitions the topic may gain while the job runs and still be read without a restart.
  partition_headroom: int = 0
  # Streaming: how often each reader logs the rate and lag of the partitions it reads (0: never).
  progress_interval_s: float = DEFAULT_PROGRESS_INTERVAL_S
  # kafka-python settings passed through to every consumer (checked by consumer_settings.parse_consumer_settings);
  # a client_id there prefixes each consumer's role.
  consumer_settings: ConsumerSettings = ()
  # Instead of topics: every topic whose whole name matches, resolved when the job plans its reads.
  topic_pattern: Optional[str] = None
  # Streaming with a topic pattern: how often to look for matching topics created since the job planned its reads.
  topic_discovery_interval_s: float = DEFAULT_TOPIC_DISCOVERY_INTERVAL_S
  # How the runner places the reads on its parallel readers, where it does so by a hash of each (placement.py);
  # None: the runner deals them out in turn.
  reader_placement: Optional[ReaderPlacement] = None
  # The client the reader fetches with (fetch.py): kafka-python, or confluent (librdkafka).
  kafka_client: str = KAFKA_PYTHON
  # A committed or given start offset outside the log: fail, or start at its beginning or end (OFFSET_RESETS).
  offset_reset: str = DEFAULT_OFFSET_RESET
  # Streaming on the local runner: host:port of the copy's member of the consumer group (membership.py), which
  # says which partitions the copy reads and commits their offsets; None: the job assigns itself every partition.
  group_member: Optional[str] = None
  # One run of the job (a graph built once; a restore from a checkpoint is the same run): what a process remembers
  # of its commits (commit.py) holds for this run only, so a later job in a reused worker starts from the group.
  run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex, compare=False)

  def __post_init__(self):
    if isinstance(self.topics, str):
      object.__setattr__(self, 'topics', (self.topics,))

  @property
  def commits_at_end(self) -> bool:
    """A bounded catch-up: the group's offsets move once, to where the read stopped, after the whole run."""
    return self.bounded and self.commit_offsets and bool(self.consumer_group)

  def consumer(self, client_role: str, **role_settings):
    """A kafka-python consumer that is assigned partitions by hand (it never joins the group), unless the role
    subscribes (membership.py); ``role_settings`` are the role's own defaults."""
    from kafka import KafkaConsumer
    from kafka.errors import NoBrokersAvailable
    # The job's own choices for settings a user may pass through (--kafka_consumer_config overrides them).
    settings = {
        'max_partition_fetch_bytes': 4 * 1024 * 1024,
        'fetch_max_bytes': 32 * 1024 * 1024,
        'fetch_max_wait_ms': FETCH_WAIT_MS,
        # A fetch response may be as large as fetch_max_bytes; kafka-python's 1 MB frame cap would drop it.
        'receive_message_max_bytes': 64 * 1024 * 1024,
        'request_timeout_ms': 30000,
        'retry_backoff_ms': METADATA_RETRY_BACKOFF_MS,
        'api_version_auto_timeout_ms': int(self.connect_timeout_s * 1000),
        **role_settings,
        **dict(self.consumer_settings)}
    client_prefix = settings.pop('client_id', 'site-stats')
    try:
      return KafkaConsumer(
          bootstrap_servers=self.bootstrap_servers.split(','),
          group_id=self.consumer_group,
          client_id=f'{client_prefix}-{client_role}',
          enable_auto_commit=False,
          # Where a stored position fell off the log (retention), continue from the oldest message left.
          auto_offset_reset='earliest',
          **settings,
          **self.security.client_config())
    except NoBrokersAvailable:
      raise KafkaReadError(
          f'no Kafka broker answered at {self.bootstrap_servers} within {self.connect_timeout_s:.0f}s '
          '(check --bootstrap_servers and that the brokers are reachable from the workers)') from None

  def connected_consumer(self, client_role: str):
    """A consumer that has fetched cluster metadata, or KafkaReadError after connect_timeout_s.

    kafka-python's metadata calls wait forever when every connection fails after the TCP handshake (a refused
    SASL login, a TLS mismatch), so the first metadata round trip is awaited here with a deadline.
    """
    consumer = self.consumer(client_role)
    if refresh_metadata(consumer, self.connect_timeout_s):
      return consumer
    consumer.close()
    raise self.no_metadata_error()

  def no_metadata_error(self, client_reason: str = '') -> KafkaReadError:
    """What a client that got no metadata within connect_timeout_s raises (``client_reason``: the client's own)."""
    reason = f' ({client_reason})' if client_reason else ''
    return KafkaReadError(
        f'the Kafka brokers at {self.bootstrap_servers} sent no metadata within {self.connect_timeout_s:.0f}s{reason}. '
        f'They answered a connection, so check {security_settings_hint(self.security)}: the kafka logger names the '
        'refused step')


def security_settings_hint(security: KafkaSecurity) -> str:
  """The options to check when brokers take a connection but never answer as Kafka (a refused login, TLS)."""
  return (f'the security settings (--kafka_security_protocol={security.protocol}, --kafka_sasl_mechanism, '
          '--kafka_username, the password\'s variable or file, --kafka_ssl_ca_file)')
