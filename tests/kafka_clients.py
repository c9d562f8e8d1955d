"""Which Kafka clients a reading test runs with (``--kafka_client``).

Every test that takes the ``kafka_client`` fixture runs with each client. A long case whose client-specific paths
other default cases already take runs with the default client by default, and with the other in the slow run.
"""

import pytest

from beam_pipeline.io.kafka.fetch import KAFKA_CLIENTS, KAFKA_PYTHON

DEFAULT_CLIENT_THEN_THE_OTHER_IN_THE_SLOW_RUN = [
    client if client == KAFKA_PYTHON else pytest.param(client, marks=pytest.mark.slow) for client in KAFKA_CLIENTS]
