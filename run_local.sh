#!/usr/bin/env bash
# Local development entry point.
#   ./run_local.sh            services up, schema, a demo dataset through the bounded job, the results
#   ./run_local.sh up         create .venv if needed, resolve jars if needed, start Kafka and Cassandra
#   ./run_local.sh down       stop them (add --wipe to delete their data too)
#   ./run_local.sh status     what runs where
#   add --secure to up/down/status for the secured pair (SASL_SSL/TLS Kafka, Cassandra auth + TLS)
#   add --kafka_version V or --cassandra_version V to up/down/status for another release (docs/compatibility.md)
#   ./run_local.sh venv       only create/refresh .venv
#   ./run_local.sh prometheus only install Prometheus and promtool (Debian's package) when they are missing
#   ./run_local.sh flink-up   a Flink session cluster: JobManager, TaskManager(s), Python SDK worker pool, job server
#                             (FLINK_TASKMANAGERS TaskManagers, default 1, of FLINK_TASK_SLOTS slots, default one per core)
#   ./run_local.sh flink-down stop it (add --wipe to delete its checkpoints too); flink-status: what runs where
#   ./run_local.sh prometheus-up|prometheus-down [--wipe]|prometheus-status   Prometheus with monitoring/'s rules
# Ports: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), CASSANDRA_PORT (9042), CASSANDRA_STORAGE_PORT (7000),
#        FLINK_REST_PORT (8081), FLINK_RPC_PORT (6123), FLINK_WORKER_POOL_PORT (50000), FLINK_JOB_SERVER_PORT (8099),
#        FLINK_PROMETHEUS_PORT (9249, +n for TaskManager n), PROMETHEUS_PORT (9090), METRICS_PORT (9300).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
PY="$ROOT/.venv/bin/python"

ensure_venv() {
  # Reinstall when setup.py changed since the last install, so a pulled pin takes effect.
  local stamp="$ROOT/.venv/.installed-from" want
  want=$(sha256sum setup.py | cut -d' ' -f1)
  if [ ! -x "$PY" ]; then
    echo "creating .venv" >&2
    python3 -m venv "$ROOT/.venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing the package into .venv (pip install -e '.[test,dataflow,bench,librdkafka]'; log in .local/logs/pip.log)" >&2
    mkdir -p "$ROOT/.local/logs"
    if ! { "$PY" -m pip install --upgrade pip && "$PY" -m pip install -e ".[test,dataflow,bench,librdkafka]"; } > "$ROOT/.local/logs/pip.log" 2>&1; then
      tail -n 30 "$ROOT/.local/logs/pip.log" >&2
      echo "error: pip install failed (full log: .local/logs/pip.log)" >&2
      exit 1
    fi
    echo "$want" > "$stamp"
  fi
}

ensure_prometheus() {
  # The monitoring tests and prometheus-up run Debian's Prometheus (promtool checks the rules).
  if command -v promtool > /dev/null && command -v prometheus > /dev/null; then
    return
  fi
  if ! command -v apt-get > /dev/null; then
    echo "error: prometheus and promtool are needed: install Prometheus and put both on PATH" >&2
    exit 1
  fi
  echo "installing Debian's prometheus (apt-get; log in .local/logs/apt.log)" >&2
  mkdir -p "$ROOT/.local/logs"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! { $sudo apt-get update && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y prometheus; } \
      > "$ROOT/.local/logs/apt.log" 2>&1; then
    tail -n 20 "$ROOT/.local/logs/apt.log" >&2
    echo "error: installing prometheus failed (full log: .local/logs/apt.log)" >&2
    exit 1
  fi
  # Only the binaries are used (prometheus-up runs its own server): stop the services the package started.
  $sudo systemctl stop prometheus prometheus-node-exporter > /dev/null 2>&1 || true
}

command=${1:-demo}
[ $# -gt 0 ] && shift
case "$command" in
  venv) ensure_venv ;;
  prometheus) ensure_prometheus ;;
  prometheus-up)
    ensure_venv
    ensure_prometheus
    exec "$PY" -m beam_pipeline.devservices "$command" --home "$ROOT" "$@" ;;
  up|down|status|flink-up|flink-down|flink-status|prometheus-down|prometheus-status)
    ensure_venv
    exec "$PY" -m beam_pipeline.devservices "$command" --home "$ROOT" "$@" ;;
  demo)
    ensure_venv
    "$PY" -m beam_pipeline.devservices up --home "$ROOT"
    exec "$PY" -m beam_pipeline.tools.demo \
      --bootstrap_servers "127.0.0.1:${KAFKA_PORT:-9092}" \
      --cassandra_hosts 127.0.0.1 --cassandra_port "${CASSANDRA_PORT:-9042}" "$@" ;;
  *) echo "usage: $0 [up|down [--wipe]|status|venv|prometheus|flink-up|flink-down [--wipe]|flink-status|prometheus-up|prometheus-down [--wipe]|prometheus-status]  (no argument: the demo)" >&2; exit 2 ;;
esac
