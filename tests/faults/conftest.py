"""What the fault cases share: the shared local services, restored after a case stopped one of them."""

import time

import pytest

CASSANDRA_OUTAGE_S = 30


@pytest.fixture
def services_restored(local_stack, cassandra_session):
  yield local_stack
  local_stack.up()  # whatever a test stopped comes back for the tests after it
  wait_for_session(cassandra_session)


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
