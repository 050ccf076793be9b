#!/usr/bin/env bash
# Runs the whole Steadfast stack locally, in the foreground, with interleaved logs.
#
#   scripts/dev-up.sh
#
# Ensures RabbitMQ, Redis and PostgreSQL, builds every binary, then starts each process
# described by scripts/dev/*.env (in name order), prefixing its log lines with its name.
# Prints every URL and a curl to try, and how to point a local Prometheus at the processes
# (it writes .dev/prometheus.yml). Ctrl-C stops everything.
#
#   scripts/dev-up.sh --prometheus-config   only writes .dev/prometheus.yml and prints how to
#                                           run Prometheus with it (for a stack already up)
#
# A scripts/dev/<name>.env file is sourced in the process's own environment; it sets
#   DEV_CMD   the command line (required), e.g. "target/debug/webhook-receiver"
#   DEV_URLS  lines "label url" printed at start (optional)
#   DEV_HINT  a ready-to-paste command printed at start (optional)
# and any environment variables the process reads (HTTP_LISTEN, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# .dev/prometheus.yml: one job per process with a METRICS_LISTEN in scripts/dev/*.env, named
# like the process (the job names of compose's Prometheus, the alert rules and the dashboards
# of k8s/components/monitoring), plus RabbitMQ's rabbitmq_prometheus plugin if it is enabled.
prometheus_config() {
  local config=.dev/prometheus.yml rules=k8s/components/monitoring/rules/steadfast.rules.yml
  local env_file name listen
  mkdir -p .dev
  {
    echo "# Written by scripts/dev-up.sh for the processes of scripts/dev/*.env; rewritten at each start."
    echo "global:"
    echo "  scrape_interval: 5s"
    echo "  evaluation_interval: 5s"
    if [ -f "$rules" ]; then
      echo "rule_files:"
      echo "  - $root/$rules"
    fi
    echo "scrape_configs:"
    for env_file in scripts/dev/*.env; do
      [ -e "$env_file" ] || continue
      name=$(basename "$env_file" .env)
      name=${name#[0-9][0-9]-}
      listen=$( (set +u; set -a; . "$root/$env_file"; printf '%s' "${METRICS_LISTEN:-}") )
      [ -n "$listen" ] || continue
      printf '  - job_name: %s\n    static_configs:\n      - targets: ["%s"]\n' "$name" "${listen/0.0.0.0/127.0.0.1}"
    done
    echo "  # Down unless the broker has the plugin: rabbitmq-plugins enable rabbitmq_prometheus"
    printf '  - job_name: rabbitmq\n    metrics_path: /metrics/per-object\n    static_configs:\n      - targets: ["127.0.0.1:15692"]\n'
  } >"$config"
  echo "[dev-up] Prometheus for these processes (config written to $config):"
  echo "  prometheus --config.file=$config --storage.tsdb.path=.dev/prometheus --web.listen-address=127.0.0.1:9090"
  echo "  # prometheus and promtool come with Debian's package \`prometheus\` (apt-get install prometheus);"
  echo "  # the Grafana dashboards are k8s/components/monitoring/dashboards/ (import them; they ask for a Prometheus and a Loki datasource)"
}

if [ "${1:-}" = "--prometheus-config" ]; then
  prometheus_config
  exit 0
fi

scripts/ensure-services.sh

echo "[dev-up] building (cargo build --workspace --bins)"
cargo build --workspace --bins --quiet

export STEADFAST_NAMESPACE="${STEADFAST_NAMESPACE:-steadfast}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
export DEV_DATABASE_BASE="${DEV_DATABASE_BASE:-postgres://postgres@127.0.0.1:5432}"
mkdir -p .dev

# Each service that keeps state gets its own database, created on first start.
ensure_database() {
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$1'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$1\"" >/dev/null
}
export -f ensure_database

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "[dev-up] stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

hints=()
for env_file in scripts/dev/*.env; do
  [ -e "$env_file" ] || continue
  name=$(basename "$env_file" .env)
  name=${name#[0-9][0-9]-}
  (
    set -a
    # shellcheck disable=SC1090
    . "$root/$env_file"
    set +a
    [ -n "${DEV_DATABASE:-}" ] && ensure_database "$DEV_DATABASE"
    exec $DEV_CMD
  ) 2>&1 | sed -u "s/^/[$name] /" &
  pids+=($!)
  urls=$( (set -a; . "$root/$env_file"; printf '%s' "${DEV_URLS:-}") )
  hint=$( (set -a; . "$root/$env_file"; printf '%s' "${DEV_HINT:-}") )
  [ -n "$urls" ] && while IFS= read -r line; do printf '[dev-up] %-18s %s\n' "$name" "$line"; done <<<"$urls"
  [ -n "$hint" ] && hints+=("$hint")
done

if [ ${#pids[@]} -eq 0 ]; then
  echo "[dev-up] no processes in scripts/dev/*.env"
  exit 1
fi
echo "[dev-up] RabbitMQ management UI: http://127.0.0.1:15672 (guest/guest)"
prometheus_config
for hint in "${hints[@]}"; do printf '[dev-up] try:\n%s\n' "$hint"; done
echo "[dev-up] Ctrl-C stops everything"
wait
