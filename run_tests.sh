#!/usr/bin/env bash
# The test command: real Kafka and Cassandra (plain and secured) are started by the test fixtures when they are
# not running.
#   ./run_tests.sh                  the default suite (includes a short case of every fault kind); at the end it
#                                   lists the local services left running and the commands that stop them
#   ./run_tests.sh --quick          only the tests that need no service (under a minute)
#   ./run_tests.sh --slow           only the full-size cases: 100 000 hostile messages, a 5-minute overload, the
#                                   benchmark with every contender (the default run has a short case of each), the
#                                   second runner or client of a fault the default run has once, and the memory of
#                                   a job that sends one statement per Cassandra request
#   ./run_tests.sh -k schema        any pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")"
./run_local.sh venv
case "${1:-}" in
  --slow)
    shift
    exec .venv/bin/python -m pytest -m slow -s "$@" ;;
  --quick)
    shift
    exec .venv/bin/python -m pytest -m "not slow and not needs_services" --hypothesis-profile=quick "$@" ;;
esac
./run_local.sh prometheus  # the monitoring tests run promtool and a Prometheus server
exec .venv/bin/python -m pytest "$@"
