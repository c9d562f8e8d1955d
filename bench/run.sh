#!/usr/bin/env bash
# The benchmark against the local Kafka and Cassandra (started if needed); see --help.
set -euo pipefail
cd "$(dirname "$0")/.."
./run_local.sh up >&2
exec .venv/bin/python -m bench.harness "$@"
