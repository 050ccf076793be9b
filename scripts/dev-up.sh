#!/usr/bin/env bash
# Runs the whole Steadfast stack locally, in the foreground, with interleaved logs.
#
#   scripts/dev-up.sh
#
# Ensures RabbitMQ, Redis and PostgreSQL, builds every binary, then starts each process
# described by scripts/dev/*.env (in name order), prefixing its log lines with its name.
# Prints every URL and a curl to try. Ctrl-C stops everything.
#
# A scripts/dev/<name>.env file is sourced in the process's own environment; it sets
#   DEV_CMD   the command line (required), e.g. "target/debug/webhook-receiver"
#   DEV_URLS  lines "label url" printed at start (optional)
#   DEV_HINT  a ready-to-paste command printed at start (optional)
# and any environment variables the process reads (HTTP_LISTEN, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

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
for hint in "${hints[@]}"; do printf '[dev-up] try:\n%s\n' "$hint"; done
echo "[dev-up] Ctrl-C stops everything"
wait
