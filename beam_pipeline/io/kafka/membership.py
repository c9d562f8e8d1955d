"""Copies of a streaming job on the local runner share their consumer group's partitions, as subscribe() consumers do.

Each copy joins the group through one member, a consumer of the job's Kafka client in the launcher process
(group_protocol.py) that subscribes to the topics (or the pattern) and fetches nothing: it holds the partitions the
group assigns it, paused. The copy's
readers, in the launcher or in the runner's worker processes, ask the member over loopback HTTP which partitions
they may read; a reader of a partition the copy does not hold parks it (checkpoints, and looks again later).

Offsets are committed through the member as well: while a group has members, Kafka refuses commits from outside
it. A commit for a partition the copy no longer holds is dropped, so a late one never moves the new owner's offset.

On revoke, the member lets a partition go once its reader has parked it and everything read before is committed,
or after ``release_timeout_s`` (what misses the deadline the new owner reads again, and the offset ledger skips
what was counted). A copy that takes a partition starts at the group's committed offset, not where its own read of
the partition stopped earlier.
"""

import json
import logging
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, Optional, Set, Tuple

from beam_pipeline.io.kafka.config import KafkaReadConfig
from beam_pipeline.io.kafka.group_protocol import join_group

_LOGGER = logging.getLogger(__name__)
# How long one poll of the member waits; it bounds how late queued commits go out.
_POLL_TIMEOUT_S = 0.2
# How long a revoked partition may take to be parked and committed before the member lets it go anyway.
DEFAULT_RELEASE_TIMEOUT_S = 30.0
_COMMIT_TIMEOUT_S = 10.0
# How long a reader trusts the member's last answer.
_VIEW_TTL_S = 0.2
_REQUEST_TIMEOUT_S = 5.0

Partition = Tuple[str, int]


def _key(topic: str, partition: int) -> str:
  return f'{partition}:{topic}'


class GroupMember:
  """The copy's member of the consumer group; ``address`` is what its readers are given (KafkaReadConfig)."""

  def __init__(self, config: KafkaReadConfig, release_timeout_s: float = DEFAULT_RELEASE_TIMEOUT_S,
               on_rebalanced: Callable[[float], None] = lambda took_s: None):
    """``on_rebalanced`` hears how long each rebalance took, from the revoke to holding the new partitions."""
    self._config = config
    self._on_rebalanced = on_rebalanced
    self._release_timeout_s = release_timeout_s
    self._group = None
    self._state = threading.Condition()
    self._held: Set[Partition] = set()
    self._assigned: Set[Partition] = set()  # assigned, not held yet: the group's offsets are read first
    self._assignment_due = False  # an assignment came: hold its partitions (and count the rebalance)
    self._start_offsets: Dict[Partition, int] = {}  # the group's offset when the copy was given the partition
    self._pending: Dict[Partition, int] = {}  # commits not sent yet
    self._committed: Dict[Partition, int] = {}
    self._releasing: Set[Partition] = set()
    self._parked: Dict[Partition, int] = {}  # where the reader of each partition being let go stopped
    self._generation = 0
    self._rebalanced_at: Optional[float] = None
    self._stopping = threading.Event()
    self._server = ThreadingHTTPServer(('127.0.0.1', 0), _handler_for(self))
    self._threads = [threading.Thread(target=self._server.serve_forever, name='group-member-http', daemon=True),
                     threading.Thread(target=self._run, name='group-member', daemon=True)]

  @property
  def address(self) -> str:
    host, port = self._server.server_address[:2]
    return f'{host}:{port}'

  def start(self) -> 'GroupMember':
    self._group = join_group(self._config, self._on_revoked, self._on_assigned)
    for thread in self._threads:
      thread.start()
    _LOGGER.info('joining consumer group %r as %s (%s rebalancing)', self._config.consumer_group,
                 self._group.client_id, self._group.protocol)
    return self

  def close(self, readers_running: bool = False) -> None:
    """Leaves the group, so that the other copies take its partitions at once rather than after the session
    timeout; while ``readers_running``, first lets each partition go as a revoke does (parked and committed)."""
    if self._stopping.is_set():
      return
    self._stopping.set()
    self._threads[1].join()  # from here on only this thread uses the group's client
    with self._state:
      held = self._held | self._assigned
    if held and readers_running:
      self._release(held, 'this copy stops')
    self._server.shutdown()
    self._server.server_close()
    self._send_commits()
    self._group.close()
    _LOGGER.info('left consumer group %r', self._config.consumer_group)

  # The group's side: the member thread polls, which runs the rebalance callbacks, and sends queued commits.

  def _run(self) -> None:
    while not self._stopping.is_set():
      try:
        self._group.poll(_POLL_TIMEOUT_S)
        if self._assignment_due:
          self._hold_assigned()
        self._send_commits()
      except Exception as error:  # pylint: disable=broad-except
        # The coordinator moved or a broker restarts: the client rejoins on its next poll.
        _LOGGER.warning('consumer group %r: %s', self._config.consumer_group, error)
        time.sleep(1)

  def _on_revoked(self, revoked: Set[Partition]) -> None:
    self._rebalanced_at = time.monotonic()
    with self._state:
      # Not those let go already: librdkafka revokes every partition again when the member leaves.
      revoked &= self._held | self._assigned
    if revoked:
      self._release(revoked, 'the group rebalances')

  def _release(self, partitions: Set[Partition], why: str) -> None:
    """Stops the readers of ``partitions`` at a bundle boundary and commits what they read, then lets them go."""
    deadline = time.monotonic() + self._release_timeout_s
    with self._state:
      read = partitions & self._held  # the others' readers have not started: nothing to wait for
      self._held -= partitions
      self._assigned -= partitions
      self._releasing |= partitions
      self._generation += 1
      for partition in partitions:
        self._parked.pop(partition, None)
      while True:
        waiting = {p for p in read if not self._released(p)}
        if not waiting or time.monotonic() >= deadline:
          break
        self._state.wait(min(0.2, max(deadline - time.monotonic(), 0)))
    self._send_commits(partitions)
    if waiting:
      _LOGGER.warning('released %s (%s) before their readers stopped within %.0fs: the next holder may read some '
                      'of their messages again (the offset ledger skips what was counted)',
                      _names(waiting), why, self._release_timeout_s)
    _LOGGER.info('released %s (%s)', _names(partitions), why)
    with self._state:
      self._releasing -= partitions
      for partition in partitions:
        self._pending.pop(partition, None)
        self._start_offsets.pop(partition, None)

  def _released(self, partition: Partition) -> bool:
    """Whether the partition's reader parked it and what it read before is committed or queued."""
    if partition not in self._parked:
      return False
    done = max(self._committed.get(partition, -1), self._pending.get(partition, -1),
               self._start_offsets.get(partition, -1))
    return done >= self._parked[partition]

  def _on_assigned(self, assigned: Set[Partition]) -> None:
    # Held once the group's offsets are read, after this callback: a request here would hold up the rebalance.
    self._assigned |= assigned
    self._assignment_due = True
    if self._rebalanced_at is None:
      self._rebalanced_at = time.monotonic()

  def _hold_assigned(self) -> None:
    """Reads the group's offsets of the partitions just assigned, then lets their readers start."""
    committed = self._group.committed(sorted(self._assigned), _COMMIT_TIMEOUT_S) if self._assigned else {}
    self._assignment_due = False
    with self._state:
      self._held |= set(committed)
      self._assigned -= set(committed)
      self._start_offsets.update({p: -1 if offset is None else offset for p, offset in committed.items()})
      self._generation += 1
      held = set(self._held)
    took = ''
    if self._rebalanced_at is not None:
      took_s, self._rebalanced_at = time.monotonic() - self._rebalanced_at, None
      self._on_rebalanced(took_s)
      took = f' (the rebalance took {took_s:.1f}s)'
    _LOGGER.info('consumer group %r: this copy holds %d partition(s): %s%s', self._config.consumer_group,
                 len(held), _names(held) or 'none', took)

  def _send_commits(self, only: Optional[Set[Partition]] = None) -> None:
    with self._state:
      due = {p: offset for p, offset in self._pending.items()
             if (only is None or p in only) and offset > self._committed.get(p, -1)}
    if not due:
      return
    try:
      self._group.commit(due, _COMMIT_TIMEOUT_S)
    except Exception as error:  # pylint: disable=broad-except
      # Losing a commit only means the next holder reads a little again; the ledger skips what was counted.
      _LOGGER.warning('committing %s to group %r failed: %s', due, self._config.consumer_group, error)
      return
    with self._state:
      for partition, offset in due.items():
        self._committed[partition] = max(offset, self._committed.get(partition, -1))
      self._state.notify_all()

  # The readers' side, through HTTP.

  def view(self) -> dict:
    with self._state:
      return {'generation': self._generation,
              'held': {_key(*p): self._start_offsets.get(p, -1) for p in sorted(self._held)}}

  def queue_commit(self, partition: Partition, offset: int) -> bool:
    """Whether the commit was taken: not for a partition the copy does not hold, whose offset is its holder's."""
    with self._state:
      if partition not in self._held and partition not in self._releasing:
        return False
      self._pending[partition] = max(offset, self._pending.get(partition, -1))
      self._state.notify_all()
      return True

  def parked(self, partition: Partition, offset: int) -> None:
    with self._state:
      if partition in self._releasing:
        self._parked[partition] = offset
        self._state.notify_all()


def _names(partitions) -> str:
  return ', '.join(f'{topic}/{partition}' for topic, partition in sorted(partitions))


def _handler_for(member: GroupMember):

  class _Handler(BaseHTTPRequestHandler):

    def do_GET(self):  # pylint: disable=invalid-name
      self._answer(member.view())

    def do_POST(self):  # pylint: disable=invalid-name
      body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
      partition = (body['topic'], body['partition'])
      if self.path == '/commit':
        self._answer({'taken': member.queue_commit(partition, body['offset'])})
        return
      if self.path == '/parked':
        member.parked(partition, body['offset'])
      self._answer({})

    def _answer(self, value):
      data = json.dumps(value).encode()
      self.send_response(200)
      self.send_header('Content-Type', 'application/json')
      self.send_header('Content-Length', str(len(data)))
      self.end_headers()
      self.wfile.write(data)

    def log_message(self, *args):  # pylint: disable=arguments-differ
      pass  # one request per bundle: not worth a log line

  return _Handler


class MemberClient:
  """What a reader asks of its copy's GroupMember."""

  def __init__(self, address: str):
    self._url = f'http://{address}'
    self._view = None
    self._viewed_at = float('-inf')
    self._parked_sent: Dict[Tuple[str, int], Tuple[Optional[int], int]] = {}  # (generation, offset) last told

  def start_offset(self, topic: str, partition: int) -> Optional[int]:
    """None if the copy does not hold the partition; else the group's offset when it was given it (-1: none)."""
    if time.monotonic() - self._viewed_at > _VIEW_TTL_S:
      try:
        with urllib.request.urlopen(self._url + '/', timeout=_REQUEST_TIMEOUT_S) as response:
          self._view = json.loads(response.read())
      except OSError:
        # The member has left: the copy is stopping, and holds nothing.
        self._view = {'held': {}}
      self._viewed_at = time.monotonic()
    return self._view['held'].get(_key(topic, partition))

  def commit(self, topic: str, partition: int, offset: int) -> bool:
    """Whether the member took the commit (False: the copy does not hold the partition now)."""
    return self._post('/commit', topic, partition, offset)['taken']

  def parked(self, topic: str, partition: int, offset: int) -> None:
    # The member waits for a park only while it lets the partition go, and letting go starts a new generation of
    # its view: a reader that parks an unheld partition at each bundle tells the member once per generation.
    generation = (self._view or {}).get('generation')
    if generation is not None and self._parked_sent.get((topic, partition)) == (generation, offset):
      return
    self._viewed_at = float('-inf')
    try:
      self._post('/parked', topic, partition, offset)
    except OSError:
      return  # the member has left: nobody waits for the partition any more
    self._parked_sent[(topic, partition)] = (generation, offset)

  def _post(self, path: str, topic: str, partition: int, offset: int) -> dict:
    data = json.dumps({'topic': topic, 'partition': partition, 'offset': offset}).encode()
    request = urllib.request.Request(self._url + path, data=data, method='POST',
                                     headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=_REQUEST_TIMEOUT_S) as response:
      return json.loads(response.read())
