"""The local services are real: messages round-trip through the broker, and the script is idempotent."""

import subprocess
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from beam_pipeline import REPO_ROOT
from beam_pipeline.testing.datasets import TEST_PARTITIONS


def test_a_message_produced_with_kafka_python_is_read_back(bootstrap_servers, topic):
  payload = f'{{"probe": "{uuid.uuid4()}"}}'.encode()
  producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks='all')
  metadata = producer.send(topic, value=payload, key=b'k', partition=2).get(timeout=30)
  producer.close()

  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                           consumer_timeout_ms=10000)
  partition = TopicPartition(topic, 2)
  consumer.assign([partition])
  consumer.seek(partition, metadata.offset)
  received = next(iter(consumer))
  consumer.close()

  assert (received.key, received.value, received.offset) == (b'k', payload, metadata.offset)
  assert len(KafkaConsumer(bootstrap_servers=bootstrap_servers).partitions_for_topic(topic)) == TEST_PARTITIONS


def test_up_while_running_says_so_and_succeeds(local_stack):
  result = subprocess.run([str(REPO_ROOT / 'run_local.sh'), 'up'], capture_output=True, text=True, timeout=300)

  assert result.returncode == 0, result.stderr
  assert 'kafka: already running' in result.stdout
  assert 'cassandra: already running' in result.stdout


def test_status_reports_both_services_answering(local_stack):
  result = subprocess.run([str(REPO_ROOT / 'run_local.sh'), 'status'], capture_output=True, text=True, timeout=120)

  assert result.returncode == 0, result.stderr
  assert result.stdout.count('answering;') == 2 and 'NOT answering' not in result.stdout
