#!/usr/bin/env bash
# Backfill or reconcile some event dates, for schedulers: one JSON line on stdout, exit 0 only on success.
#   ./run_backfill.sh --dates yesterday --mode reconcile --topic site-events --keyspace site_stats_ks
#   ./run_backfill.sh --help
set -euo pipefail
cd "$(dirname "$0")"
./run_local.sh venv >&2
exec .venv/bin/python -m beam_pipeline.launch.backfill "$@"
