"""What the fault cases share: the shared local services, restored after a case stopped one of them."""

import pytest

from beam_pipeline.testing.outages import wait_for_session


@pytest.fixture
def services_restored(local_stack, cassandra_session):
  yield local_stack
  local_stack.up()  # whatever a test stopped comes back for the tests after it
  wait_for_session(cassandra_session)
