#!/usr/bin/env bash
# Benchmarks the sentinel on fleets of 1,000, 10,000 and 100,000 clusters in fleet-api.
#
#   scripts/bench/sentinel.sh                 # all three sizes
#   SIZES="1000 10000" scripts/bench/sentinel.sh
#
# Per size: a fresh database seeded with N clusters reconciled 5 minutes ago (a fleet at
# rest, the steady state: every cluster is evaluated, none is due), fleet-api and the sentinel
# (release builds) started, and CYCLES poll cycles run back to back (page size 100, the API's
# maximum). Reported: the mean poll-cycle time, the sentinel's own CPU time per cycle
# (utime+stime from /proc), and its peak RSS (VmHWM). The baseline, measured in the same run,
# is a bare client paging through the same list with one keep-alive connection and no
# decisions: the ratio shows what deciding and the sentinel's own work add to fetching.
# Targets: peak RSS under 64 MiB at 100,000 (HyperFleet's Sentinel: 96 MiB at 5,000).
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZES="${SIZES:-1000 10000 100000}"
CYCLES="${CYCLES:-3}"
log() { printf '[bench/sentinel] %s\n' "$*" >&2; }

scripts/ensure-services.sh
log "building release binaries"
cargo build --release --quiet -p sentinel -p fleet-api

ADMIN_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
AMQP="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
MGMT="${RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:15672}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
metric() { curl -fsS "$1/metrics" | awk -v m="$2" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'; }
work=$(mktemp -d)
pids=()
dbs=()
exchanges=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for db in "${dbs[@]}"; do psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true; done
  for ex in "${exchanges[@]}"; do curl -fsS -u guest:guest -X DELETE "$MGMT/api/exchanges/%2f/$ex" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

results=()
for size in $SIZES; do
  db="bench_sentinel_${size}_$$"
  dbs+=("$db")
  psql "$ADMIN_URL" -qc "CREATE DATABASE \"$db\"" >/dev/null
  db_url="${ADMIN_URL%/*}/$db"
  log "seeding $size clusters"
  DATABASE_URL="$db_url" HYPERFLEET_CLUSTER_ADAPTERS=validator LOG_LEVEL=warn \
    target/release/fleet-api seed --clusters "$size" --shards 4 --prefix bench --reconciled-ago 5m >/dev/null

  api_port=$(free_port)
  DATABASE_URL="$db_url" HYPERFLEET_CLUSTER_ADAPTERS=validator LOG_LEVEL=warn \
    HTTP_LISTEN="127.0.0.1:$api_port" METRICS_LISTEN="127.0.0.1:$(free_port)" \
    target/release/fleet-api >"$work/fleet-api-$size.log" 2>&1 &
  api_pid=$!
  pids+=("$api_pid")
  until curl -fsS "http://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; do sleep 0.2; done

  # Baseline: page through the list with no decisions (one keep-alive connection).
  baseline=$(python3 - "$api_port" "$size" <<'EOF'
import http.client, json, sys, time
port, size = int(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port)
start = time.monotonic()
page, seen = 1, 0
while seen < size:
    conn.request("GET", f"/api/hyperfleet/v1/clusters?page={page}&size=100")
    body = conn.getresponse().read()
    seen += body.count(b'"kind":"Cluster"')
    page += 1
print(f"{time.monotonic() - start:.3f}")
EOF
)

  exchange="bench-sentinel-$$-$size"
  exchanges+=("$exchange")
  cat >"$work/sentinel-$size.yaml" <<EOF
sentinel:
  name: bench-sentinel
tracing_enabled: false
resource_type: clusters
poll_interval: 1s
clients:
  hyperfleet_api:
    base_url: http://127.0.0.1:$api_port
    page_size: 100
  broker:
    topic: $exchange
message_data:
  id: "resource.id"
  kind: "resource.kind"
  href: "resource.href"
  generation: "resource.generation"
EOF
  metrics_port=$(free_port)
  AMQP_URL="$AMQP" LOG_LEVEL=warn HTTP_LISTEN="127.0.0.1:$(free_port)" METRICS_LISTEN="127.0.0.1:$metrics_port" \
    target/release/sentinel serve --config "$work/sentinel-$size.yaml" >"$work/sentinel-$size.log" 2>&1 &
  sentinel_pid=$!
  pids+=("$sentinel_pid")
  murl="http://127.0.0.1:$metrics_port"
  until curl -fsS "$murl/metrics" >/dev/null 2>&1; do
    kill -0 "$sentinel_pid" 2>/dev/null || { cat "$work/sentinel-$size.log" >&2; exit 1; }
    sleep 0.1
  done
  # Skip the first cycle (warm-up: connections, allocator), then time CYCLES more.
  count_name='hyperfleet_sentinel_poll_duration_seconds_count'
  sum_name='hyperfleet_sentinel_poll_duration_seconds_sum'
  until [ "$(metric "$murl" "$count_name")" -ge 1 ]; do sleep 0.2; done
  ticks=$(getconf CLK_TCK)
  read -r cpu0 < <(awk '{ print $14 + $15 }' "/proc/$sentinel_pid/stat")
  count0=$(metric "$murl" "$count_name"); sum0=$(metric "$murl" "$sum_name")
  until [ "$(metric "$murl" "$count_name")" -ge $((count0 + CYCLES)) ]; do sleep 0.2; done
  read -r cpu1 < <(awk '{ print $14 + $15 }' "/proc/$sentinel_pid/stat")
  count1=$(metric "$murl" "$count_name"); sum1=$(metric "$murl" "$sum_name")
  rss_kib=$(awk '/^VmHWM/ { print $2 }' "/proc/$sentinel_pid/status")
  skipped=$(metric "$murl" 'hyperfleet_sentinel_resources_skipped_total')
  results+=("$(python3 - "$size" "$baseline" "$sum0" "$sum1" "$count0" "$count1" "$cpu0" "$cpu1" "$ticks" "$rss_kib" "$skipped" <<'EOF'
import sys
size, base, s0, s1, c0, c1, u0, u1, ticks, rss, skipped = sys.argv[1:]
cycles = float(c1) - float(c0)
cycle = (float(s1) - float(s0)) / cycles
cpu = (float(u1) - float(u0)) / float(ticks) / cycles
rss_mib = float(rss) / 1024
print(f"{int(size):>7} | {cycle:8.3f} s | {float(base):8.3f} s | {cycle / float(base):5.2f}x | {cpu:7.3f} s | {int(size) / max(cpu, 1e-9):9.0f}/s | {rss_mib:6.1f} MiB | {int(float(skipped)):>9}")
EOF
)")
  kill -TERM "$sentinel_pid" "$api_pid" 2>/dev/null || true
  wait "$sentinel_pid" "$api_pid" 2>/dev/null || true
done

echo
echo "sentinel poll cycle over a fleet at rest (page size 100, $CYCLES cycles after a warm-up)"
echo "    size |  cycle     | baseline   | ratio | CPU/cycle | CPU rate     | peak RSS   | evaluations (all cycles)"
echo "---------+------------+------------+-------+-----------+--------------+------------+----------"
printf '%s\n' "${results[@]}"
echo "baseline: paging the same list with a bare keep-alive client, no decisions; ratio = cycle / baseline"
echo "target: peak RSS < 64 MiB at 100000 clusters"
