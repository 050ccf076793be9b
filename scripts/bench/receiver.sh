#!/usr/bin/env bash
# webhook-receiver under sustained load of 2 KiB GitLab Job Hooks on loopback, next to bare
# confirmed publishing (libs/messaging's baseline) measured in the same run.
#
#   scripts/bench/receiver.sh                 20 s per phase
#   BENCH_SECONDS=60 BENCH_RATE=1000 BENCH_CONCURRENCY=64 scripts/bench/receiver.sh
#
# Phases:
#   1. baseline  bare lapin: confirmed persistent 2 KiB messages into a quorum queue
#                (cargo run --example bare_publish), BENCH_CONCURRENCY publishes in flight;
#                the target's reference. A second baseline publishes messages shaped like the
#                receiver's events (their size, routing key, properties and headers, read off
#                one event the receiver published), to tell what the broker spends on the
#                events themselves from what the receiver spends;
#   2. capacity  the receiver (release build, spool enabled) with a quorum queue bound to its
#                exchange; BENCH_CONCURRENCY connections POST as fast as answers come back,
#                from `wrk` (scripts/bench/receiver-job-hook.lua; it costs the shared CPU a
#                third of what a Rust HTTP client does), or from loadgen if wrk is missing;
#                then the same load on the floor (examples/http_floor.rs): an HTTP server that
#                only publishes a message like the receiver's with bare lapin, the most any
#                receiver could do here with these events and this load generator;
#   3. latency   a fixed offered rate of BENCH_RATE requests/s, open loop (loadgen, latency
#                from the scheduled send time, so stalls are not hidden), p50/p99.
# All processes share the machine's cores: run it on a quiet machine.
# Prints, last, `summary: receiver R req/s = X of bare B msg/s (= Y of bare publishing of the
# same events); receiver CPU per request; floor F req/s; at N req/s p50 .. p99 ..`.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${BENCH_SECONDS:-20}
rate=${BENCH_RATE:-1000}
concurrency=${BENCH_CONCURRENCY:-64}
size=2048
amqp_url=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
mgmt=${RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:15672}
ns="bench-receiver-$$"
queue="$ns.probe"
db="bench_receiver_$$"
token="bench-token"
port=18081
metrics_port=19091
floor_port=18082

scripts/ensure-services.sh
echo "[bench] building (release)"
cargo build --release --quiet -p steadfast-messaging --example bare_publish
cargo build --release --quiet -p webhook-receiver --bin webhook-receiver --example loadgen --example http_floor

receiver_pid=""
floor_pid=""
cleanup() {
  [ -n "$receiver_pid" ] && kill -TERM "$receiver_pid" 2>/dev/null && wait "$receiver_pid" 2>/dev/null || true
  [ -n "$floor_pid" ] && kill -TERM "$floor_pid" 2>/dev/null && wait "$floor_pid" 2>/dev/null || true
  for path in "queues/%2f/$queue" "queues/%2f/$ns.webhook-receiver.unrouted" \
              "exchanges/%2f/$ns.webhooks" "exchanges/%2f/$ns.webhooks.unrouted"; do
    curl -s -o /dev/null -u guest:guest -X DELETE "$mgmt/api/$path" || true
  done
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The baseline runs before and after the receiver phases; the mean is the reference, so a
# neighbour's load during one of them shows as a gap between the two instead of a skewed ratio.
# It publishes about as many messages as the capacity phase does (BENCH_BASELINE_COUNT), so
# both fill a quorum queue to a similar depth: a short burst into an empty queue is faster.
baseline_count=${BENCH_BASELINE_COUNT:-$((seconds * 12000))}
baseline() {
  local line
  line=$(AMQP_URL="$amqp_url" target/release/examples/bare_publish \
    --count "$baseline_count" --concurrency "$concurrency" --size "$size" "$@" | tail -n1)
  echo "$line" >&2
  sed -n 's/.*rate=\([0-9.]*\).*/\1/p' <<<"$line"
}
echo "[bench] starting the receiver (namespace $ns, spool database $db)"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null
STEADFAST_NAMESPACE="$ns" AMQP_URL="$amqp_url" GITLAB_WEBHOOK_SECRET="$token" \
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" \
  HTTP_LISTEN="127.0.0.1:$port" METRICS_LISTEN="127.0.0.1:$metrics_port" \
  LOG_LEVEL=warn LOG_FORMAT=json \
  target/release/webhook-receiver >/dev/null &
receiver_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "[bench] receiver did not become ready" >&2; exit 1; }
# The same broker work as the baseline: every event lands in one quorum queue.
curl -sf -o /dev/null -u guest:guest -X PUT "$mgmt/api/queues/%2f/$queue" \
  -H 'content-type: application/json' -d '{"durable":true,"arguments":{"x-queue-type":"quorum"}}'
curl -sf -o /dev/null -u guest:guest -X POST "$mgmt/api/bindings/%2f/e/$ns.webhooks/q/$queue" \
  -H 'content-type: application/json' -d '{"routing_key":"#"}'

load() { target/release/examples/loadgen --url "http://127.0.0.1:$port/gitlab" --token "$token" --size "$size" "$@"; }
load --concurrency 8 --duration 2 >/dev/null   # warm-up: connections and the publishing channel
# Empties the bound queue between phases, so a backlog of earlier messages does not weigh on the next.
purge() { curl -s -o /dev/null -u guest:guest -X DELETE "$mgmt/api/queues/%2f/$queue/contents"; }
# One event as the receiver published it: its size and routing key shape the second baseline.
sample=$(curl -sf -u guest:guest -X POST "$mgmt/api/queues/%2f/$queue/get" -H 'content-type: application/json' \
  -d '{"count":1,"ackmode":"ack_requeue_false","encoding":"base64"}')
event_size=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["payload_bytes"])' <<<"$sample")
event_key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["routing_key"])' <<<"$sample")
purge
same_events() { baseline --size "$event_size" --cloudevent-key "$event_key"; }

echo "[bench] 1/3 baseline: bare confirmed publish, ${size} B, ${concurrency} in flight"
bare_before=$(baseline)
echo "[bench]     and bare publishing of the receiver's events: ${event_size} B, key $event_key, the same properties"
shaped_before=$(same_events)

# CPU seconds (user + system) a process has used, from /proc: cost per request.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
# capacity URL PID: closed-loop load on URL; prints the load line with ` cpu_s=<PID's CPU seconds>`.
capacity() {
  local url=$1 pid=$2 before line
  before=$(cpu_seconds "$pid")
  if command -v wrk >/dev/null; then
    local body_file
    body_file=$(mktemp)
    target/release/examples/loadgen --print-body --size "$size" >"$body_file"
    line=$(BODY_FILE="$body_file" TOKEN="$token" wrk -t1 -c"$concurrency" -d"${seconds}s" \
      -s scripts/bench/receiver-job-hook.lua "$url" | tail -n1)
    rm -f "$body_file"
  else
    line=$(target/release/examples/loadgen --url "$url" --token "$token" --size "$size" \
      --concurrency "$concurrency" --duration "$seconds")
  fi
  echo "$line cpu_s=$(awk -v a="$before" -v b="$(cpu_seconds "$pid")" 'BEGIN { print b - a }')"
}

echo "[bench] 2/3 capacity: ${concurrency} connections, ${seconds} s"
capacity_line=$(capacity "http://127.0.0.1:$port/gitlab" "$receiver_pid")
echo "$capacity_line"
purge

# The floor: an HTTP server that only publishes a message like the receiver's with bare lapin
# (examples/http_floor.rs), loaded the same way. No receiver can beat it on this machine.
echo "[bench]     floor: HTTP + bare confirmed publish of the same events, same load"
target/release/examples/http_floor --listen "127.0.0.1:$floor_port" --size "$event_size" \
  --cloudevent-key "$event_key" >/dev/null &
floor_pid=$!
for _ in $(seq 100); do
  curl -s -o /dev/null -X POST "http://127.0.0.1:$floor_port/gitlab" && break
  sleep 0.1
done
floor_line=$(capacity "http://127.0.0.1:$floor_port/gitlab" "$floor_pid")
echo "$floor_line"
kill -TERM "$floor_pid" && wait "$floor_pid" || true
floor_pid=""

echo "[bench] 3/3 latency: ${rate} requests/s offered, ${seconds} s"
latency_line=$(load --rate "$rate" --duration "$seconds")
echo "$latency_line"
purge

echo "[bench] baselines again"
bare_after=$(baseline)
shaped_after=$(same_events)
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (a + b) / 2 }'; }
bare_rate=$(mean "$bare_before" "$bare_after")
shaped_rate=$(mean "$shaped_before" "$shaped_after")

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
capacity_rate=$(field rate "$capacity_line")
per_request() { awk -v cpu="$(field cpu_s "$1")" -v n="$(field requests "$1")" 'BEGIN { printf "%.1f", cpu * 1e6 / n }'; }
floor_rate=$(field rate "$floor_line")
floor_ratio=$(awk -v a="$floor_rate" -v b="$bare_rate" 'BEGIN { printf "%.2f", a / b }')
of_floor=$(awk -v a="$capacity_rate" -v b="$floor_rate" 'BEGIN { printf "%.2f", a / b }')
ratio=$(awk -v a="$capacity_rate" -v b="$bare_rate" 'BEGIN { printf "%.2f", a / b }')
shaped_ratio=$(awk -v a="$capacity_rate" -v b="$shaped_rate" 'BEGIN { printf "%.2f", a / b }')
spooled=$(curl -s "http://127.0.0.1:$metrics_port/metrics" | awk '/^webhook_receiver_events_spooled_total/ { s += $2 } END { print s + 0 }')
echo "summary: receiver $capacity_rate req/s = $ratio of bare $bare_rate msg/s ($bare_before before, $bare_after after; target >= 0.60)" \
  "= $shaped_ratio of bare publishing of the same events $shaped_rate msg/s ($shaped_before before, $shaped_after after);" \
  "receiver CPU $(per_request "$capacity_line") us/request;" \
  "floor $floor_rate req/s = $floor_ratio of bare, $(per_request "$floor_line") us/request; receiver = $of_floor of the floor;" \
  "at $(field rate "$latency_line") req/s p50 $(field p50_ms "$latency_line") ms p99 $(field p99_ms "$latency_line") ms (target < 25 ms);" \
  "errors capacity $(field errors "$capacity_line") latency $(field errors "$latency_line") (statuses $(field statuses "$latency_line")); spooled $spooled"
