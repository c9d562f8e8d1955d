#!/usr/bin/env bash
# The test command: real Kafka and Cassandra are started by the test fixtures when they are not running.
#   ./run_tests.sh                  the default suite
#   ./run_tests.sh -k schema        any pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")"
./run_local.sh venv
exec .venv/bin/python -m pytest "$@"
