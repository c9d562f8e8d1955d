"""What the end-to-end tests share: producing a known dataset, running the job, reading back the outcome."""

import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

from kafka import KafkaConsumer, TopicPartition

from beam_pipeline import REPO_ROOT
from beam_pipeline.tools import produce
from beam_pipeline.launch.run import run
from beam_pipeline.io.security import KafkaSecurity


def produce_dataset(bootstrap_servers: str, topic: str, count: int, keys: int = 200, bad_ratio: float = 0.05,
                    seed: int = 1, security: KafkaSecurity = KafkaSecurity()) -> produce.ExpectedTotals:
  return produce.produce(bootstrap_servers, topic, produce.generate(count, keys, bad_ratio, seed), security)


def job_args(bootstrap_servers: str, topic: str, keyspace: str, cassandra_port: int, *extra: str) -> List[str]:
  return ['--bootstrap_servers', bootstrap_servers, '--topic', topic, '--keyspace', keyspace,
          '--cassandra_hosts', '127.0.0.1', '--cassandra_port', str(cassandra_port),
          '--consumer_group', f'{topic}-group', *extra]


def run_bounded(*args: str):
  """Runs the bounded job in this process on the local runner; returns its summary."""
  _, summary = run([*args, '--bounded'])
  return summary


def read_counters(session, keyspace: str, table: str = 'site_stats') -> Dict[Tuple, Tuple[int, int]]:
  return {(row.date.date(), row.site_id): (row.views, row.clicks)
          for row in session.execute(f'SELECT date, site_id, views, clicks FROM {keyspace}.{table}')}


def expected_counters(expected: produce.ExpectedTotals) -> Dict[Tuple, Tuple[int, int]]:
  return {key: (views, clicks) for key, (views, clicks) in expected.per_key.items()}


def add_counters(*parts: Dict[Tuple, Tuple[int, int]]) -> Dict[Tuple, Tuple[int, int]]:
  """Per-key sums of several expected-counter maps."""
  total: Dict[Tuple, Tuple[int, int]] = {}
  for part in parts:
    for key, (views, clicks) in part.items():
      old_views, old_clicks = total.get(key, (0, 0))
      total[key] = (old_views + views, old_clicks + clicks)
  return total


def read_topic(bootstrap_servers: str, topic: str, timeout_s: float = 30,
               security: KafkaSecurity = KafkaSecurity()) -> list:
  """Every record now in the topic, read from the beginning up to the end offsets."""
  consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                           receive_message_max_bytes=64 * 1024 * 1024, **security.client_config())
  try:
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    records, deadline = [], time.monotonic() + timeout_s
    while any(consumer.position(tp) < end[tp] for tp in partitions):
      if time.monotonic() > deadline:
        raise TimeoutError(f'could not read {topic} to its end within {timeout_s}s')
      for batch in consumer.poll(timeout_ms=500).values():
        records.extend(batch)
    return records
  finally:
    consumer.close()


def read_dead_letters(bootstrap_servers: str, topic: str, security: KafkaSecurity = KafkaSecurity()) -> List[dict]:
  return [json.loads(record.value) for record in read_topic(bootstrap_servers, f'{topic}-dlq', security=security)]


class TopicOffsets:
  """A topic's end offsets and a group's committed ones, through one consumer kept open while a test polls.

  Every call asks the broker afresh (partitions included, so a topic that grows is seen at once).
  """

  def __init__(self, bootstrap_servers: str, topic: str, group: Optional[str] = None):
    self._topic = topic
    self._consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False)

  def _partitions(self) -> List[TopicPartition]:
    self._consumer.topics()  # refreshes the metadata the partitions come from
    return [TopicPartition(self._topic, p) for p in self._consumer.partitions_for_topic(self._topic)]

  def end(self) -> Dict[int, int]:
    return {tp.partition: offset for tp, offset in self._consumer.end_offsets(self._partitions()).items()}

  def committed(self) -> Dict[int, Optional[int]]:
    return {tp.partition: self._consumer.committed(tp) for tp in self._partitions()}

  def all_committed(self) -> bool:
    return self.committed() == self.end()

  def close(self):
    self._consumer.close()

  def __enter__(self):
    return self

  def __exit__(self, *unused_exc_info):
    self.close()


def committed_offsets(bootstrap_servers: str, group: str, topic: str) -> Dict[int, Optional[int]]:
  with TopicOffsets(bootstrap_servers, topic, group) as offsets:
    return offsets.committed()


def end_offsets(bootstrap_servers: str, topic: str) -> Dict[int, int]:
  with TopicOffsets(bootstrap_servers, topic) as offsets:
    return offsets.end()


_CATCH_UP_TIMEOUT_S = 120


def start_streaming_job(args, log_path):
  log = open(log_path, 'ab')
  return subprocess.Popen([sys.executable, '-m', 'beam_pipeline', *args], stdout=log, stderr=subprocess.STDOUT,
                          cwd=REPO_ROOT, env={**os.environ, 'PYTHONUNBUFFERED': '1'})


def wait_until_caught_up(job, session, keyspace, want_counters, bootstrap_servers, group, topic, log_path):
  """Until the counters equal what was produced and the group has committed everything; fails on timeout."""
  deadline = time.monotonic() + _CATCH_UP_TIMEOUT_S
  with TopicOffsets(bootstrap_servers, topic, group) as offsets:
    while time.monotonic() < deadline:
      assert job.poll() is None, f'the streaming job exited early:\n{open(log_path).read()[-3000:]}'
      if read_counters(session, keyspace) == want_counters and offsets.all_committed():
        return
      time.sleep(1)
  raise AssertionError(f'not caught up after {_CATCH_UP_TIMEOUT_S}s:\n{open(log_path).read()[-3000:]}')


def wait_until_committed(job, bootstrap_servers, group, topic, log_path, timeout_s: float = 180):
  """Until the group has committed the whole topic (whatever the counters say); fails on timeout or exit."""
  deadline = time.monotonic() + timeout_s
  with TopicOffsets(bootstrap_servers, topic, group) as offsets:
    while not offsets.all_committed():
      assert time.monotonic() < deadline and job.poll() is None, open(log_path, errors='replace').read()[-3000:]
      time.sleep(0.5)


def stop_streaming_job(job):
  job.send_signal(signal.SIGTERM)
  job.wait(timeout=30)


def flink_job_counters(rest_address: str, job_name: str) -> Dict[str, int]:
  """The site_stats counters of the Flink job named ``job_name``, as Flink's REST API shows them while it runs:
  each operator's ``<subtask>.<operator>.site_stats_<counter>`` metrics, summed per counter."""
  from beam_pipeline.runners.flink.rest import rest_get
  job = next(j for j in rest_get(rest_address, '/jobs/overview')['jobs'] if j['name'] == job_name)
  totals: Dict[str, int] = {}
  for vertex in rest_get(rest_address, f'/jobs/{job["jid"]}')['vertices']:
    path = f'/jobs/{job["jid"]}/vertices/{vertex["id"]}/metrics'
    names = [m['id'] for m in rest_get(rest_address, path) if '.site_stats_' in m['id']]
    if names:
      for metric in rest_get(rest_address, f'{path}?get={",".join(names)}'):
        counter = metric['id'].rsplit('.site_stats_', 1)[1]
        try:
          totals[counter] = totals.get(counter, 0) + int(metric['value'])
        except ValueError:
          pass  # a distribution, not a counter
  return totals
