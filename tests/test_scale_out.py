"""Copies of the streaming job in one consumer group, on the local runner against the real Kafka and Cassandra:
they share the topic's partitions (each read by one copy at a time, from the copies' own metrics), take over from
a copy that stops or dies, and the counters end exact."""

import signal
import threading
import time
from typing import List

import pytest

from beam_pipeline.devservices.prometheus import scrape
from beam_pipeline.errors import BadSetting
from beam_pipeline.processes.ports import free_port
from beam_pipeline.testing.counters import add_counters, expected_counters, read_counters
from beam_pipeline.testing.datasets import TEST_PARTITIONS, produce_dataset
from beam_pipeline.testing.jobs import (job_args, repair_uncertain, run_bounded, start_streaming_job,
                                        stop_streaming_job, wait_until_caught_up, wait_until_committed)
from beam_pipeline.testing.topics import committed_offsets

_TIMEOUT_S = 120


class Copy:
  """One copy of the streaming job, with its metrics endpoint and log."""

  def __init__(self, args: List[str], tmp_path, name: str):
    self.port, self.log = free_port(), tmp_path / f'{name}.log'
    self.job = start_streaming_job([*args, '--metrics_port', str(self.port)], self.log)

  def samples(self) -> dict:
    assert self.job.poll() is None, f'a copy exited:\n{self.log.read_text()[-3000:]}'
    try:
      return scrape(f'127.0.0.1:{self.port}')
    except OSError:
      return {}  # not serving yet

  def held(self, topic: str) -> set:
    gauges = self.samples().get('site_stats_partition_held', {})
    return {int(dict(labels)['partition']) for labels, value in gauges.items()
            if dict(labels)['topic'] == topic and value == 1}

  def read(self) -> int:
    return int(self.samples().get('site_stats_messages_read_total', {}).get((), 0))


def _until(what: str, done, copies: List[Copy]):
  deadline = time.monotonic() + _TIMEOUT_S
  while not done():
    assert time.monotonic() < deadline, f'{what} after {_TIMEOUT_S}s:\n' + '\n'.join(
        c.log.read_text()[-2000:] for c in copies)
    time.sleep(0.5)


def _holdings(copies: List[Copy], topic: str) -> List[set]:
  return [copy.held(topic) for copy in copies]


def _each_partition_held_once(copies: List[Copy], topic: str) -> bool:
  held = _holdings(copies, topic)
  return all(held) and sorted(p for h in held for p in h) == list(range(TEST_PARTITIONS))


def _stop(copies: List[Copy]) -> None:
  """Stops every copy still running, even when one of them does not stop."""
  failures = []
  for copy in copies:
    if copy.job.poll() is None:
      try:
        stop_streaming_job(copy.job)
      except AssertionError as failure:
        failures.append(f'{failure}:\n{copy.log.read_text()[-2000:]}')
  assert not failures, failures


def test_copies_started_under_load_share_the_partitions_and_count_each_message_once(
    bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path, kafka_client):
  # kafka-python's group protocol is eager (each rebalance revokes every partition), librdkafka's cooperative.
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_records_per_bundle', '500',
                  '--kafka_client', kafka_client)
  group = f'{topic}-group'
  produced = expected_counters(produce_dataset(bootstrap_servers, topic, count=6000, keys=80, seed=341))
  total = 6000
  copies = [Copy(args, tmp_path, 'first')]
  try:
    _until('the first copy holds every partition', lambda: copies[0].held(topic) == set(range(TEST_PARTITIONS)),
           copies)
    for number, name in enumerate(('second', 'third'), start=2):
      copies.append(Copy(args, tmp_path, name))
      batch = produce_dataset(bootstrap_servers, topic, count=3000, keys=80, seed=341 + number)
      produced, total = add_counters(produced, expected_counters(batch)), total + 3000
      _until(f'{number} copies do not share the partitions', lambda: _each_partition_held_once(copies, topic),
             copies)
      wait_until_caught_up(copies[0].job, cassandra_session, keyspace, produced, bootstrap_servers, group, topic,
                           copies[0].log)
      # Every message read by one copy only: a partition changes hands at the committed offset.
      _until('the copies\' reads do not add up to the topic', lambda: sum(c.read() for c in copies) == total,
             copies)
    assert read_counters(cassandra_session, keyspace) == produced
    assert all(len(held) >= 1 for held in _holdings(copies, topic))
    # The first copy took part in the group's rebalance as each other copy joined.
    rebalances = copies[0].samples()
    assert rebalances['site_stats_rebalances_total'][()] >= 2
    assert rebalances['site_stats_rebalance_seconds_count'][()] == rebalances['site_stats_rebalances_total'][()]
  finally:
    _stop(copies)
  assert all(copy.job.returncode == 0 for copy in copies), [c.log.read_text()[-2000:] for c in copies]


@pytest.mark.parametrize('stop_signal', [signal.SIGTERM, signal.SIGKILL], ids=['sigterm', 'sigkill'])
def test_a_copy_that_stops_or_dies_leaves_its_partitions_to_the_other_and_the_counters_end_exact(
    stop_signal, bootstrap_servers, topic, keyspace, cassandra_port, cassandra_session, tmp_path):
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port, '--max_records_per_bundle', '500')
  group = f'{topic}-group'
  before = produce_dataset(bootstrap_servers, topic, count=4000, keys=80, seed=351)
  copies = [Copy(args, tmp_path, 'staying'), Copy(args, tmp_path, 'leaving')]
  staying, leaving = copies
  try:
    _until('two copies do not share the partitions', lambda: _each_partition_held_once(copies, topic), copies)
    # Messages keep arriving while the second copy goes.
    during = {}
    producing = threading.Thread(target=lambda: during.update(totals=produce_dataset(
        bootstrap_servers, topic, count=20000, keys=80, seed=352)))
    producing.start()
    time.sleep(1)
    leaving.job.send_signal(stop_signal)
    leaving.job.wait(timeout=60)
    left_at = time.monotonic()
    _until('the staying copy does not hold every partition',
           lambda: staying.held(topic) == set(range(TEST_PARTITIONS)), [staying])
    took_over_s = time.monotonic() - left_at
    producing.join()
    produced = add_counters(expected_counters(before), expected_counters(during['totals']))
    if stop_signal == signal.SIGTERM:
      assert leaving.job.returncode == 0, leaving.log.read_text()[-3000:]
      # A stop lets the partitions go at once (a death: after the group's session timeout, 10 s).
      assert took_over_s < 10
      wait_until_caught_up(staying.job, cassandra_session, keyspace, produced, bootstrap_servers, group, topic,
                           staying.log)
    else:
      wait_until_committed(staying.job, bootstrap_servers, group, topic, staying.log)
      # What the dead copy claimed but never marked counted is uncertain, never counted twice: the repair
      # settles it.
      repair_uncertain(*args)
      assert read_counters(cassandra_session, keyspace) == produced
  finally:
    _stop(copies)


def test_a_copy_stopped_while_its_partitions_are_empty_lets_them_go_at_once_from_their_start(
    bootstrap_servers, topic, keyspace, cassandra_port, tmp_path):
  # Nothing was ever written to the partitions, so the group has no offset for them: the copy commits their start
  # (0) while it holds them, and letting them go waits for nothing else.
  copy = Copy(job_args(bootstrap_servers, topic, keyspace, cassandra_port), tmp_path, 'idle')
  try:
    _until('the copy does not hold every partition', lambda: copy.held(topic) == set(range(TEST_PARTITIONS)), [copy])
  finally:
    _stop([copy])
  log = copy.log.read_text()
  assert 'released' in log and 'before their readers stopped' not in log, log[-3000:]
  assert committed_offsets(bootstrap_servers, f'{topic}-group', topic) == {p: 0 for p in range(TEST_PARTITIONS)}


def test_a_catch_up_of_a_group_with_running_copies_refuses_to_start_naming_them(
    bootstrap_servers, topic, keyspace, cassandra_port, tmp_path):
  args = job_args(bootstrap_servers, topic, keyspace, cassandra_port)
  produce_dataset(bootstrap_servers, topic, count=200, keys=10, seed=361)
  copy = Copy(args, tmp_path, 'streaming')
  try:
    _until('the copy holds no partition', lambda: copy.held(topic), [copy])
    with pytest.raises(BadSetting, match=r"consumer group '.*' has active members \(site-stats-member on "):
      run_bounded(*args)
  finally:
    _stop([copy])
