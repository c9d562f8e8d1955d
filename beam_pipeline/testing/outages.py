"""Service outages in the fault cases: how long Cassandra stays down, and waiting for a session to come back."""

import time

CASSANDRA_OUTAGE_S = 30


def wait_for_session(session, timeout_s: float = 180):
  """The shared driver session reconnects on its own schedule after an outage; wait until it has."""
  from cassandra.cluster import NoHostAvailable
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      session.execute('SELECT release_version FROM system.local')
      return
    except NoHostAvailable:
      if time.monotonic() > deadline:
        raise
      time.sleep(1)
