# Podman as a Docker engine for docker-compose, on a machine without Docker (sourced by
# scripts/compose-test.sh; every function prints what it does with the prefix [podman]).
#
#   podman_install        Debian's podman, runc, netavark, docker-compose ... if missing
#                         (apt_install from scripts/lib/common.sh)
#   podman_configure      .dev/podman/containers.conf, exported as CONTAINERS_CONF
#   host_snapshot         remembers the firewall and IP forwarding before containers change them
#   podman_service_start  podman's Docker-compatible API on a socket; exports DOCKER_HOST
#   healthchecks_start    runs the containers' healthchecks (podman needs systemd for that)
#   podman_service_stop, healthchecks_stop, host_restore   undo the above
#
# The settings are the ones this kind of machine needs (docs/deploy.md, "Podman"): runc
# (crun 1.8 refuses hybrid cgroups), cgroupfs, file events, ulimits no higher than ours.

PODMAN_DIR=${PODMAN_DIR:-$PWD/.dev/podman}
PODMAN_PACKAGES="podman runc debootstrap fuse-overlayfs slirp4netns uidmap netavark aardvark-dns catatonit docker-compose iptables"

podman_say() { printf '[podman] %s\n' "$*"; }

podman_install() {
  local missing=()
  for tool in podman runc debootstrap netavark docker-compose iptables-save; do
    command -v "$tool" >/dev/null || [ -x "/usr/lib/podman/$tool" ] || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  # Rootful podman (netavark's firewall rules) needs root anyway.
  if [ "$(id -u)" != 0 ]; then
    podman_say "missing: ${missing[*]}; install (as root): apt-get install -y $PODMAN_PACKAGES"
    return 1
  fi
  # shellcheck disable=SC2086
  apt_install $PODMAN_PACKAGES
}

podman_configure() {
  mkdir -p "$PODMAN_DIR"
  local nofile
  nofile=$(ulimit -Hn)
  cat >"$PODMAN_DIR/containers.conf" <<CONF
# Written by scripts/compose/podman.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
CONF
  export CONTAINERS_CONF="$PODMAN_DIR/containers.conf"
}

# The firewall without its counters, so two snapshots compare equal when nothing changed.
# The rules that matter, comparable before and after: no comments or counters, and nothing a
# table holds by default (its name, COMMIT, a built-in chain accepting everything), so that a
# host without any rule (a fresh machine: empty output) equals one whose tables netavark
# created and the restore emptied. sed, not grep: on empty input grep fails, and pipefail
# would stop the caller.
firewall_rules() {
  { iptables-save; ip6tables-save; } 2>/dev/null |
    sed -e '/^#/d' -e '/^\*/d' -e '/^COMMIT$/d' -e 's/\[[0-9]*:[0-9]*\]//' -e 's/ *$//' \
      -e '/^:\(INPUT\|FORWARD\|OUTPUT\|PREROUTING\|POSTROUTING\) ACCEPT$/d'
}

# Empties the tables that did not exist in the snapshot `$1` (iptables-save output): restoring
# the snapshot leaves them alone, since it does not name them.
flush_tables_not_in() {
  local save=$1 snapshot=$2 table
  for table in $($save 2>/dev/null | sed -n 's/^\*//p'); do
    grep -qx "\*$table" "$snapshot" 2>/dev/null && continue
    ${save%-save} -t "$table" -F
    ${save%-save} -t "$table" -X
  done
}

host_snapshot() {
  mkdir -p "$PODMAN_DIR"
  iptables-save >"$PODMAN_DIR/iptables.before"
  ip6tables-save >"$PODMAN_DIR/ip6tables.before" 2>/dev/null || true
  firewall_rules >"$PODMAN_DIR/firewall.before"
  sysctl -n net.ipv4.ip_forward >"$PODMAN_DIR/ip_forward.before"
}

# Puts back what netavark changed; fails (and says what) if the host still differs.
host_restore() {
  [ -f "$PODMAN_DIR/firewall.before" ] || return 0
  if ! firewall_rules | cmp -s - "$PODMAN_DIR/firewall.before"; then
    podman_say "restoring the firewall as it was before"
    iptables-restore <"$PODMAN_DIR/iptables.before"
    flush_tables_not_in iptables-save "$PODMAN_DIR/iptables.before"
    if [ -s "$PODMAN_DIR/ip6tables.before" ]; then
      ip6tables-restore <"$PODMAN_DIR/ip6tables.before"
      flush_tables_not_in ip6tables-save "$PODMAN_DIR/ip6tables.before"
    fi
  fi
  local forward
  forward=$(cat "$PODMAN_DIR/ip_forward.before")
  if [ "$(sysctl -n net.ipv4.ip_forward)" != "$forward" ]; then
    podman_say "restoring net.ipv4.ip_forward=$forward"
    sysctl -qw "net.ipv4.ip_forward=$forward"
  fi
  if ! firewall_rules | cmp -s - "$PODMAN_DIR/firewall.before"; then
    podman_say "the firewall still differs from before:"
    firewall_rules | diff "$PODMAN_DIR/firewall.before" - || true
    return 1
  fi
  rm -f "$PODMAN_DIR"/*.before
}

podman_service_start() {
  local socket="$PODMAN_DIR/podman.sock"
  rm -f "$socket"
  podman system service --time=0 "unix://$socket" >"$PODMAN_DIR/service.log" 2>&1 &
  PODMAN_SERVICE_PID=$!
  echo "$PODMAN_SERVICE_PID" >"$PODMAN_DIR/service.pid"
  export DOCKER_HOST="unix://$socket"
  local deadline=$((SECONDS + 30))
  until curl -fsS --unix-socket "$socket" http://podman/_ping >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$PODMAN_SERVICE_PID" 2>/dev/null; then
      podman_say "the API service did not answer on $socket:"
      tail -20 "$PODMAN_DIR/service.log"
      return 1
    fi
    sleep 0.2
  done
  podman_say "Docker-compatible API on $DOCKER_HOST"
}

# Also stops a service a previous `compose-test.sh --keep` left running.
podman_service_stop() {
  local pid=${PODMAN_SERVICE_PID:-$(cat "$PODMAN_DIR/service.pid" 2>/dev/null)}
  rm -f "$PODMAN_DIR/service.pid"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  PODMAN_SERVICE_PID=
}

# Without systemd nothing runs healthchecks on podman 4.3, and `condition: service_healthy`
# would wait for ever: run each running container's check of the compose project every 2 s.
healthchecks_start() {
  local project=$1
  (
    while true; do
      for id in $(podman ps -q --filter "label=com.docker.compose.project=$project" 2>/dev/null); do
        podman healthcheck run "$id" >/dev/null 2>&1 || true
      done
      sleep 2
    done
  ) &
  HEALTHCHECKS_PID=$!
  echo "$HEALTHCHECKS_PID" >"$PODMAN_DIR/healthchecks.pid"
}

healthchecks_stop() {
  local pid=${HEALTHCHECKS_PID:-$(cat "$PODMAN_DIR/healthchecks.pid" 2>/dev/null)}
  rm -f "$PODMAN_DIR/healthchecks.pid"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  HEALTHCHECKS_PID=
}
