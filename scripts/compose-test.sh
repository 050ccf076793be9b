#!/usr/bin/env bash
# The container stack for real: builds compose.yaml's images with the project's Dockerfile,
# starts everything, waits for every container to be healthy, checks the product image, runs
# three flows (GitLab job → retry, alert → approved action, cluster → Reconciled) through the
# containers, checks that a broken container is caught, then tears it all down and restores
# the host.
#
#   scripts/compose-test.sh [--keep]     --keep leaves the stack running, also after a failure
#                                        (to look at it; tear it down with --down)
#   scripts/compose-test.sh --down
#
# Needs podman (installed from Debian's packages when missing, as root); on a machine with a
# Docker engine, `docker compose up` needs none of this. Public images are made locally
# (scripts/compose/images.sh), as this machine has no registry. On a failure it prints the
# failing containers' last log lines. Timings: docs/deploy.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

project=${COMPOSE_PROJECT_NAME:-steadfast-compose-test}
export COMPOSE_PROJECT_NAME=$project
# The host's own RabbitMQ, PostgreSQL and Redis keep their ports; the containers' move.
export RABBITMQ_PORT=${RABBITMQ_PORT:-55672} RABBITMQ_MANAGEMENT_PORT=${RABBITMQ_MANAGEMENT_PORT:-55673}
export POSTGRES_PORT=${POSTGRES_PORT:-55432} REDIS_PORT=${REDIS_PORT:-56379}
export STEADFAST_CARGO_PROFILE=${STEADFAST_CARGO_PROFILE:-quick-release}
keep=false
mode=test
case "${1:-}" in
  --keep) keep=true ;;
  --down) mode=down ;;
  "") ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2 ;;
esac

# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh
# shellcheck source=scripts/compose/podman.sh
. scripts/compose/podman.sh

started=$SECONDS
step_name=
step_started=0
focus=()   # the services whose logs explain a failure of the current step
step() {
  step_name=$*
  step_started=$SECONDS
  printf '\n==> %s\n' "$*"
}
done_step() { printf '    ok (%ds)\n' $((SECONDS - step_started)); }
fail() {
  printf '    FAILED: %s\n' "$*" >&2
  return 1
}

compose() {
  docker-compose -f "$root/compose.yaml" -f "$root/scripts/compose/compose-test.override.yaml" "$@"
}

# The herder's config in the test: compose's own, with a matcher that retries after 2 s.
write_herder_config() {
  mkdir -p .dev/compose-test
  {
    cat services/pipeline-herder/config/compose.yaml
    cat <<'YAML'
# Added by scripts/compose-test.sh: the default runner-system-failure matcher, 2 s instead of 5 min.
matchers:
  - name: runner-system-failure
    description: GitLab reports a runner system failure
    retry_delays: [2s]
    failure_reason: runner_system_failure
YAML
  } >.dev/compose-test/pipeline-herder.yaml
}

# wait_for SECONDS DESCRIPTION COMMAND...: scripts/lib/common.sh's wait_until, failing the step
# with DESCRIPTION when COMMAND has not succeeded in time.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  wait_until "$seconds" "$@" || fail "$what: not within ${seconds}s"
}

# Every service of the project as "service state health" (health "-" without a healthcheck),
# from one podman call; a service without a container is "missing".
states() {
  local ids
  ids=$(podman ps -a -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)
  {
    [ -z "$ids" ] || podman inspect --format \
      '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' \
      $ids 2>/dev/null
    for service in $services; do echo "$service missing"; done
  } | awk '{ print $1, $2, ($3 == "" ? "-" : $3) }' | sort -s -u -k1,1
}

# The services that are not running, or not healthy where they have a healthcheck.
not_healthy() {
  states | awk '!($2 == "running" && ($3 == "healthy" || $3 == "-")) { print $1 }'
}

show_logs() {
  printf '\n--- %s: last log lines\n' "$1" >&2
  compose logs --no-color --tail=40 "$1" >&2 2>/dev/null || true
}

report_failure() {
  printf '\n==> FAILED at: %s\n' "$step_name" >&2
  [ -n "${services:-}" ] || return 0
  states | sed 's/^/    /' >&2
  local failing service
  failing=$(not_healthy)
  for service in $failing; do show_logs "$service"; done
  for service in "${focus[@]}"; do
    case " $failing " in *" $service "*) ;; *) show_logs "$service" ;; esac
  done
}

# Force-removes the project's containers; succeeds once none is left (a container its restart
# policy is restarting right now refuses removal for a moment).
remove_project_containers() {
  local ids
  ids=$(podman ps -a -q --filter "label=com.docker.compose.project=$project" 2>/dev/null || true)
  [ -z "$ids" ] && return 0
  # shellcheck disable=SC2086
  podman rm -f $ids >/dev/null 2>&1 || true
  [ -z "$(podman ps -a -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)" ]
}

teardown() {
  step "teardown: docker-compose down -v, restore the host"
  # A container in a restart loop (the broken herder) can be restarted by its policy while
  # compose stops the others: remove the project's containers by force first.
  wait_until 60 remove_project_containers || true
  compose down -v --remove-orphans >/dev/null 2>&1 || compose down -v --remove-orphans || true
  healthchecks_stop
  # Called as `teardown || status=1`, where set -e does not apply: every check counts itself.
  local left failed=0
  left=$(podman ps -a -q --filter "label=com.docker.compose.project=$project" 2>/dev/null || true)
  [ -z "$left" ] || { fail "containers left behind: $left" || failed=1; }
  left=$(podman network ls -q --filter "label=com.docker.compose.project=$project" 2>/dev/null || true)
  [ -z "$left" ] || { fail "networks left behind: $left" || failed=1; }
  left=$(podman volume ls -q --filter "label=com.docker.compose.project=$project" 2>/dev/null || true)
  [ -z "$left" ] || { fail "volumes left behind: $left" || failed=1; }
  podman_service_stop
  host_restore || { fail "the host's firewall was not restored" || failed=1; }
  [ $failed -eq 0 ] || return 1
  printf '    no containers, networks, volumes or firewall changes left\n'
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM
  if [ $status -ne 0 ]; then report_failure; fi
  if $keep; then
    healthchecks_stop
    printf '\nThe stack is running (project %s, DOCKER_HOST=%s); scripts/compose-test.sh --down stops it.\n' \
      "$project" "${DOCKER_HOST:-}"
    return
  fi
  teardown || status=1
  if [ "$mode" = down ]; then
    [ $status -eq 0 ] && printf '\ncompose-test: the stack is down\n'
  elif [ $status -eq 0 ]; then
    printf '\ncompose-test: PASSED in %ds\n' $((SECONDS - started))
  else
    printf '\ncompose-test: FAILED in %ds\n' $((SECONDS - started)) >&2
  fi
  exit $status
}

# --- the run ------------------------------------------------------------------------------

mkdir -p "$PODMAN_DIR"
if [ "$mode" = down ]; then
  podman_configure
  # A --keep run left its API service running: replace it with one this run owns.
  podman_service_stop
  podman_service_start
  trap on_exit EXIT
  exit 0
fi

# docker-compose 1.29's `config` lists the services of every profile, `up` starts only the
# default ones: keep the services (and their ports) without a `profiles:` key.
default_profile() {
  compose config | python3 -c '
import sys, yaml
services = yaml.safe_load(sys.stdin)["services"]
default = {name: s for name, s in services.items() if not s.get("profiles")}
if sys.argv[1] == "services":
    print("\n".join(default))
else:
    print("\n".join(str(p["published"]) for s in default.values() for p in s.get("ports", []) if isinstance(p, dict) and p.get("published")))
' "$1"
}
services=$(default_profile services)
step "podman: installed, configured, Docker-compatible API"
podman_install
podman_configure
# A previous run that was killed may have left its stack: take it down first.
if podman ps -a -q --filter "label=com.docker.compose.project=$project" | grep -q .; then
  podman_service_start
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  podman_service_stop
  host_restore || true
fi
published=$(default_profile ports)
[ -n "$published" ] || fail "found no published ports in \`docker-compose config\`"
for port in $published; do
  if ss -Hltn "sport = :$port" | grep -q .; then
    fail "port $port is taken on the host (scripts/dev-up.sh running?); compose publishes it"
  fi
done
host_snapshot
trap on_exit EXIT
trap 'exit 130' INT TERM
podman_service_start
done_step

step "images: base, PostgreSQL, RabbitMQ, Redis and the Rust builder, made locally"
scripts/compose/images.sh
done_step

step "docker-compose build (the project's Dockerfile, CARGO_PROFILE=$STEADFAST_CARGO_PROFILE)"
build_log="$PODMAN_DIR/build.log"
if ! compose build >"$build_log" 2>&1; then
  tail -40 "$build_log"
  fail "docker-compose build failed (whole log: $build_log)"
fi
build_seconds=$((SECONDS - step_started))
done_step

step "product image: non-root, the product binaries only"
product_binaries=$(sed -n 's/^ARG PRODUCT_BINARIES="\(.*\)"$/\1/p' Dockerfile | tr ' ' '\n' | sort)
in_image=$(podman run --rm --entrypoint /bin/ls steadfast:dev /usr/local/bin | sort)
if [ "$in_image" != "$product_binaries" ]; then
  fail "steadfast:dev /usr/local/bin holds [$(echo $in_image)], the Dockerfile lists [$(echo $product_binaries)]"
fi
user=$(podman image inspect --format '{{.Config.User}}' steadfast:dev)
case "$user" in "" | 0 | 0:* | root | root:*) fail "steadfast:dev runs as '${user:-root}'" ;; esac
uid=$(podman run --rm --entrypoint /usr/bin/id steadfast:dev -u)
[ "$uid" != 0 ] || fail "steadfast:dev runs as uid 0"
size=$(podman image inspect --format '{{.Size}}' steadfast:dev)
printf '    user %s (uid %s); binaries: %s\n' "$user" "$uid" "$(echo $in_image)"
printf '    steadfast:dev is %s (%s profile), built in %ds\n' "$(numfmt --to=iec "$size")" "$STEADFAST_CARGO_PROFILE" "$build_seconds"
done_step

step "docker-compose up -d: every container healthy"
write_herder_config
healthchecks_start "$project"
focus=(rabbitmq postgres redis)
if ! compose up -d --no-build >"$PODMAN_DIR/up.log" 2>&1; then
  cat "$PODMAN_DIR/up.log"
  fail "docker-compose up failed"
fi
no_service_unhealthy() { [ -z "$(not_healthy)" ]; }
wait_for 180 "every container running and healthy" no_service_unhealthy
states | sed 's/^/    /'
done_step

# shellcheck source=scripts/compose/flows.sh
. scripts/compose/flows.sh
run_flows

step "a broken container is caught: the herder without DATABASE_URL (broken-herder.override.yaml)"
focus=(pipeline-herder)
compose -f scripts/compose/broken-herder.override.yaml up -d --no-deps --no-build pipeline-herder \
  >"$PODMAN_DIR/broken.log" 2>&1 || { cat "$PODMAN_DIR/broken.log"; fail "could not recreate the herder"; }
herder_reported_broken() {
  not_healthy | grep -qx pipeline-herder \
    && compose logs --no-color --tail=20 pipeline-herder | grep -q "DATABASE_URL is not set"
}
wait_for 60 "the broken herder reported with its message" herder_reported_broken
printf '    not healthy: %s; what the script shows on a failure:\n' "$(not_healthy | tr '\n' ' ')"
show_logs pipeline-herder 2>&1 | tail -3 | sed 's/^/    | /'
done_step
