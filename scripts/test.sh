#!/usr/bin/env bash
# Runs every check and test of the workspace: the README's test command, and what CI runs.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    skip clippy, the deployment checks, the chaos suite and the container stack
#
# Tests talk to the real local RabbitMQ, Redis and PostgreSQL (started here if down). Tests
# that take the whole broker down (names containing `outage_`) run last, one at a time, so
# they never disturb the others.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=""
[ "${1:-}" = "--quick" ] && quick=1

step() { printf '\n=== %s\n' "$*"; }

step "services"
scripts/ensure-services.sh
# Test namespaces (`t-<hex>`) are removed when each test ends; an interrupted run can leave
# some behind, and quorum queues cost the broker memory, so sweep them before starting.
python3 - <<'PY' || echo "(could not sweep old test queues; continuing)"
import base64, json, urllib.parse, urllib.request
base = "http://127.0.0.1:15672/api"
auth = "Basic " + base64.b64encode(b"guest:guest").decode()
def call(method, path):
    req = urllib.request.Request(base + path, method=method, headers={"Authorization": auth})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r) if method == "GET" else None
swept = 0
for kind in ("queues", "exchanges"):
    for item in call("GET", f"/{kind}/%2f?columns=name"):
        if item["name"].startswith("t-"):
            call("DELETE", f"/{kind}/%2f/" + urllib.parse.quote(item["name"], safe=""))
            swept += 1
print(f"swept {swept} leftover test queues and exchanges")
PY
for db in $(psql -h 127.0.0.1 -U postgres -tAc "SELECT datname FROM pg_database WHERE datname LIKE 't\_%'" 2>/dev/null); do
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
done

# The console's UI tests drive a real browser: Debian's chromium and chromium-driver,
# installed here when root can. With them, a missing browser fails those tests instead of
# letting them skip (STEADFAST_REQUIRE_BROWSER).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing Debian's chromium and chromium-driver (the console's browser tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium chromium-driver >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
  fi
fi
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  export STEADFAST_REQUIRE_BROWSER=1
else
  step "SKIPPING the console's browser tests: no chromium/chromedriver, and they cannot be installed here (not root)"
fi

# The tests find the local services at their default addresses (libs/test-support); set
# AMQP_URL, DATABASE_URL or REDIS_URL only to point them elsewhere.

# HyperFleet's peer cases (OpenAPI spec, Sentinel and Adapter configs) are read from ../shared,
# which a plain clone does not have: then the conformance checks that need them skip, and say
# so. CI sets STEADFAST_REQUIRE_SHARED=1 (.ci/run), which turns their absence into a failure.
SHARED="${STEADFAST_SHARED_DIR:-$(cd .. && pwd)/shared}"
have_shared=""
if [ -d "$SHARED/peer-cases" ]; then
  have_shared=1
elif [ -n "${STEADFAST_REQUIRE_SHARED:-}" ] && [ "${STEADFAST_REQUIRE_SHARED}" != 0 ]; then
  echo "HyperFleet's peer cases are not at $SHARED/peer-cases, and STEADFAST_REQUIRE_SHARED is set" >&2
  echo "(CI must run the conformance checks): put shared/ beside the repository or set STEADFAST_SHARED_DIR" >&2
  exit 1
else
  peer_tests=$(git grep -c 'skip_without_peer_cases!();' -- '*.rs' | awk -F: '{n += $2} END {print n + 0}')
  step "SKIPPING the HyperFleet conformance checks: no $SHARED/peer-cases"
  echo "  - schemathesis against HyperFleet's OpenAPI spec: not run"
  echo "  - $peer_tests tests that load HyperFleet's own configs and cases: they pass as SKIPPED"
  echo "  (CI has ../shared and runs them all; set STEADFAST_SHARED_DIR to run them here)"
fi

if [ -z "$quick" ]; then
  step "format"
  cargo fmt --all -- --check

  step "clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings

  step "unused dependencies (cargo machete)"
  if ! cargo machete --version >/dev/null 2>&1; then
    echo "installing cargo-machete"
    cargo install --quiet --locked cargo-machete
  fi
  cargo machete

  step "deployment manifests"
  scripts/check-deploy.sh
  scripts/monitoring/rules.sh check
  if [ -n "$have_shared" ]; then
    step "fleet-api against HyperFleet's OpenAPI spec (schemathesis)"
    scripts/schemathesis.sh
  fi
fi

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast -E 'not test(/outage_/)'
  step "broker outage tests (serial)"
  cargo nextest run --workspace --locked --no-fail-fast -E 'test(/outage_/)' --test-threads 1 --no-tests pass
else
  cargo test --workspace --locked --no-fail-fast -- --skip outage_
  step "broker outage tests (serial)"
  cargo test --workspace --locked --no-fail-fast -- outage_ --test-threads 1
fi

# The whole system under failure (scripts/chaos.sh, docs/runbooks/chaos.md): the real binaries
# as processes, two receivers and two reconcilers, on a RabbitMQ, Redis and PostgreSQL of the
# run's own, under load while every fault kind strikes; nothing accepted may be lost. Then the
# suite proves its own checks: a run sabotaged on purpose must FAIL every invariant, naming
# what was lost; and two runs against a held stack prove the `--target` mode a staging run
# uses. About 6-7 minutes together; STEADFAST_SKIP_CHAOS=1 skips them.
if [ -z "$quick" ]; then
  if [ -n "${STEADFAST_SKIP_CHAOS:-}" ] && [ "${STEADFAST_SKIP_CHAOS}" != 0 ]; then
    step "SKIPPING the chaos suite: STEADFAST_SKIP_CHAOS is set"
  else
    chaos_seed="${STEADFAST_CHAOS_SEED:-$(date +%Y%m%d)}"
    step "the chaos suite, short: every fault kind, nothing lost (seed $chaos_seed)"
    STEADFAST_CHAOS_PROFILE=dev scripts/chaos.sh --duration 100s --seed "$chaos_seed" \
      --faults kill,broker,postgres,redis,proxy,fake-5xx --fault-interval 8s \
      --gitlab-rate 20 --alert-rate 2 --clusters 50

    step "the chaos suite catches loss: a sabotaged run must FAIL every invariant"
    mkdir -p .dev/chaos
    sabotage_report=.dev/chaos/sabotage-report.json
    if STEADFAST_CHAOS_PROFILE=dev scripts/chaos.sh --duration 45s --seed "$chaos_seed" \
      --sabotage all --gitlab-rate 20 --alert-rate 2 --clusters 50 --quiet-timeout 60s \
      --quiet-max 90s \
      --json >"$sabotage_report"; then
      echo "the sabotaged run passed: an invariant cannot see what it guards" >&2
      exit 1
    fi
    python3 - "$sabotage_report" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
kinds = [s["kind"] for s in report["sabotage"]]
missed = [v["name"] for v in report["invariants"] if v["holds"] or not v["violations"]]
for v in report["invariants"]:
    state = "ok  " if v["holds"] else "FAIL"
    print(f"  [{state}] {v['name']}: {len(v['violations'])} violation(s), e.g. {v['violations'][:1]}")
if len(kinds) < 5 or missed:
    sys.exit(f"sabotage {kinds} went unnoticed by: {missed}")
print(f"every invariant caught its sabotage ({', '.join(kinds)})")
PY

    step "the chaos suite against a deployment: two runs on one held stack (run --target)"
    STEADFAST_CHAOS_PROFILE=dev STEADFAST_CHAOS_SEED="$chaos_seed" scripts/chaos-target-test.sh
  fi
fi

# The container stack for real (scripts/compose-test.sh): images built with the Dockerfile,
# every container healthy, the README's three flows through the containers. It needs podman
# (installed from Debian's packages when root can) and costs 2-5 minutes once the images and
# the build cache exist on the machine (docs/deploy.md); STEADFAST_SKIP_COMPOSE=1 skips it.
if [ -z "$quick" ]; then
  if [ -n "${STEADFAST_SKIP_COMPOSE:-}" ] && [ "${STEADFAST_SKIP_COMPOSE}" != 0 ]; then
    step "SKIPPING the container stack: STEADFAST_SKIP_COMPOSE is set"
  elif command -v podman >/dev/null || { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }; then
    step "the container stack (scripts/compose-test.sh)"
    scripts/compose-test.sh
  else
    step "SKIPPING the container stack: no podman, and it cannot be installed here (not root)"
  fi
fi

# HyperFleet's whole repositories (not only the peer cases in ../shared): their configs through
# our loaders and dry run, when a snapshot is at hand (scripts/hyperfleet-conformance.sh).
if [ -n "${HYPERFLEET_SNAPSHOTS:-}" ]; then
  step "HyperFleet's own configs (scripts/hyperfleet-conformance.sh $HYPERFLEET_SNAPSHOTS)"
  scripts/hyperfleet-conformance.sh "$HYPERFLEET_SNAPSHOTS"
else
  step "SKIPPING the run over HyperFleet's repositories: set HYPERFLEET_SNAPSHOTS to a directory with hyperfleet-adapter/ and hyperfleet-sentinel/"
fi

if [ -n "$have_shared" ]; then
  step "all green"
else
  step "all green, without the HyperFleet conformance checks (no ../shared; see above)"
fi
