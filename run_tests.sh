#!/usr/bin/env bash
# The test command: real Kafka and Cassandra (plain and secured) are started by the test fixtures when they are
# not running.
#   ./run_tests.sh                  the default suite (includes a short case of every fault kind)
#   ./run_tests.sh --slow           only the full-size fault cases: 100 000 hostile messages, a 5-minute overload
#   ./run_tests.sh -k schema        any pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")"
./run_local.sh venv
if [ "${1:-}" = "--slow" ]; then
  shift
  exec .venv/bin/python -m pytest -m slow -s "$@"
fi
exec .venv/bin/python -m pytest "$@"
