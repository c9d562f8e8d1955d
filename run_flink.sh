#!/usr/bin/env bash
# Submits the job to a Flink session cluster: the local one (./run_local.sh flink-up, REST on FLINK_REST_PORT)
# unless --flink_master HOST:PORT names another. A streaming job returns once Flink runs it; a bounded one
# (--bounded) is waited for and ends with the summary. Every job option passes through:
#   ./run_flink.sh --topic site-events --keyspace site_stats_ks [--bounded] [--checkpointing_interval 10000]
set -euo pipefail
cd "$(dirname "$0")"
./run_local.sh venv
# A later --flink_master in "$@" wins over this default.
exec .venv/bin/python -m beam_pipeline --runner FlinkRunner --flink_master "localhost:${FLINK_REST_PORT:-8081}" "$@"
