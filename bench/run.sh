#!/usr/bin/env bash
# The benchmark against the local Kafka and Cassandra and the local Flink session cluster (started if needed);
# see --help.
set -euo pipefail
cd "$(dirname "$0")/.."
./run_local.sh up >&2
./run_local.sh flink-up >&2
exec .venv/bin/python -m bench.harness "$@"
