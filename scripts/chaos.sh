#!/usr/bin/env bash
# The chaos suite's front door (docs/runbooks/chaos.md): builds the binaries, then runs
# steadfast-chaos, which starts a RabbitMQ (one node, or three with --cluster), a Redis and a
# PostgreSQL of its own, the whole stack on them as real processes (two receivers, two
# reconcilers, one of each other service, fleet-api and the fakes), loads it, injects faults on a
# seeded schedule, and checks that nothing accepted was lost. Every argument is passed on, e.g.
#
#   scripts/chaos.sh --duration 10m --faults kill,broker,postgres,redis,proxy,fake-5xx
#   scripts/chaos.sh --duration 10m --cluster --json > report.json
#   scripts/chaos.sh --duration 45s --sabotage all        # must FAIL every invariant
#   STEADFAST_CHAOS_PROFILE=dev scripts/chaos.sh --duration 60s     # a debug build, faster to build
#
# The machine's own RabbitMQ, Redis and PostgreSQL are never touched (--infra shared uses them,
# isolated by names, without the faults that would disturb them). Logs and generated files:
# .dev/chaos/<run>/. Exit 0 only if every invariant holds.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-services.sh

profile="${STEADFAST_CHAOS_PROFILE:-release}"
case "$profile" in
  dev | debug) profile=dev dir=target/debug ;;
  release) dir=target/release ;;
  *) dir="target/$profile" ;;
esac

echo "[chaos] building (cargo build --workspace --bins --profile $profile)" >&2
cargo build --workspace --bins --profile "$profile" --quiet

exec "$dir/steadfast-chaos" run --bin-dir "$dir" "$@"
