#!/usr/bin/env bash
# The chaos suite against a deployment (`steadfast-chaos run --target`, docs/runbooks/chaos.md):
# `steadfast-chaos stack` holds a stack up as a deployment would be (it starts again whatever
# dies, like an orchestrator) and writes the deployment file; two short runs follow, one after
# the other, against that one stack — the second proves a run judges only what it sent itself,
# beside what an earlier run left (incidents, clusters, the herder's ledger, the fake GitLab's
# jobs). Each run must PASS. Uses the binaries of STEADFAST_CHAOS_PROFILE (default dev), built
# by scripts/chaos.sh before.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${STEADFAST_CHAOS_PROFILE:-dev}"
case "$profile" in
  dev | debug) dir=target/debug ;;
  *) dir="target/$profile" ;;
esac
seed="${STEADFAST_CHAOS_SEED:-$(date +%Y%m%d)}"
work=.dev/chaos
mkdir -p "$work"
target="$work/held-stack-$$.yaml"
log="$work/held-stack-$$.log"
rm -f "$target"

"$dir/steadfast-chaos" stack --write-target "$target" --bin-dir "$dir" >"$log" 2>&1 &
holder=$!
stop_holder() {
  if kill -0 "$holder" 2>/dev/null; then
    kill -INT "$holder"
    wait "$holder" || true
  fi
}
trap stop_holder EXIT

# The deployment file appears once every process is ready (or the holder gives up).
deadline=$((SECONDS + 240))
until [ -s "$target" ]; do
  if ! kill -0 "$holder" 2>/dev/null; then
    echo "steadfast-chaos stack exited before the stack was up:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "the held stack was not up within 240 s:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  sleep 1
done
echo "[chaos-target] stack held ($(grep -m1 '^namespace' "$target")); two runs against it"

for n in 1 2; do
  echo "[chaos-target] run $n of 2"
  "$dir/steadfast-chaos" run --target "$target" --duration 40s --seed "$((seed + n))" \
    --faults kill,fake-5xx --fault-interval 8s --gitlab-rate 10 --alert-rate 2 \
    --clusters 20 --quiet-timeout 60s --quiet-max 120s
done
stop_holder
trap - EXIT
echo "[chaos-target] both runs passed; the held stack is down"
