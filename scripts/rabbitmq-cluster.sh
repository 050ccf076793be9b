#!/usr/bin/env bash
# A local RabbitMQ cluster (three nodes by default) beside the standard node, for failover and
# chaos tests.
#
#   scripts/rabbitmq-cluster.sh start            start the nodes, cluster them, verify, print AMQP_URL
#   scripts/rabbitmq-cluster.sh status [--verify] up/down, membership, AMQP_URL; exit 0 when healthy
#   scripts/rabbitmq-cluster.sh stop [--purge]   stop the nodes (--purge: delete their data)
#   scripts/rabbitmq-cluster.sh kill N           kill -9 node N's Erlang VM
#   scripts/rabbitmq-cluster.sh restart N        start node N again and wait until it rejoined
#   scripts/rabbitmq-cluster.sh stop-app N       rabbitmqctl stop_app on node N, wait until its AMQP port closed
#   scripts/rabbitmq-cluster.sh start-app N      rabbitmqctl start_app on node N, wait until it serves again
#
# Settings (environment), so that two clusters (a developer's and a chaos run's, or two runs)
# never collide:
#   RABBITMQ_CLUSTER_NODES        how many nodes (default 3; 1 = a single standalone node)
#   RABBITMQ_CLUSTER_BASE_PORT    B below (default 5701)
#   RABBITMQ_CLUSTER_DIR          data, logs, cookie (default .dev/rabbitmq-cluster)
#   RABBITMQ_CLUSTER_NAME_PREFIX  node names PREFIX-1@localhost .. (default steadfast)
#
# Nodes PREFIX-1@localhost .. PREFIX-N@localhost run the installed RabbitMQ as root, each with
# its own config, enabled_plugins (management only), data, logs and pid file under
# RABBITMQ_CLUSTER_DIR/nodeN, and their own Erlang cookie (RABBITMQ_CLUSTER_DIR/home). They
# never read /etc/rabbitmq nor /var/lib/rabbitmq, so the standard node (rabbit@localhost,
# 5672/15672/25672) is untouched. Ports, with B = RABBITMQ_CLUSTER_BASE_PORT:
#   AMQP B, B+1, ...   management B+10000, ...   Erlang distribution B+20000, ...
# Progress goes to stderr, each line with the seconds elapsed; results go to stdout:
#   AMQP_URL=amqp://guest:guest@127.0.0.1:5701/%2f,amqp://...:5702/%2f,amqp://...:5703/%2f
#   RABBITMQ_MANAGEMENT_URL=http://guest:guest@127.0.0.1:15701
# (libs/messaging's BrokerConfig::new splits AMQP_URL on commas or spaces; steadfastctl would
# otherwise derive the management API from the first host at port 15672.)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"

BASE_PORT=${RABBITMQ_CLUSTER_BASE_PORT:-5701}
NODE_COUNT=${RABBITMQ_CLUSTER_NODES:-3}
NAME_PREFIX=${RABBITMQ_CLUSTER_NAME_PREFIX:-steadfast}
DEFAULT_DIR="$ROOT/.dev/rabbitmq-cluster"
CLUSTER_DIR=${RABBITMQ_CLUSTER_DIR:-$DEFAULT_DIR}
case "$CLUSTER_DIR" in /*) ;; *) CLUSTER_DIR="$PWD/$CLUSTER_DIR" ;; esac
# Written at the first start: `stop --purge` deletes only a directory that carries it.
MARKER=.steadfast-rabbitmq-cluster
COOKIE_HOME="$CLUSTER_DIR/home"
HOST=localhost
RMQ_BIN=/usr/lib/rabbitmq/bin  # the real scripts, not /usr/sbin's wrapper (it su's to rabbitmq)
BOOT_TIMEOUT=${RABBITMQ_CLUSTER_BOOT_TIMEOUT:-180}  # seconds for a node to boot (CPU is scarce)
STOP_TIMEOUT=60
# One scheduler per node, unbound (three VMs binding to the same core would share one CPU).
ERL_ARGS="+S 1:1 +SDcpu 1:1 +SDio 2 -kernel inet_dist_use_interface {127,0,0,1}"

T0=${EPOCHREALTIME/./}
log() {
  local us=$((${EPOCHREALTIME/./} - T0))
  printf '[rabbitmq-cluster %3d.%01ds] %s\n' $((us / 1000000)) $((us % 1000000 / 100000)) "$*" >&2
}
die() { log "ERROR: $*"; exit 1; }

usage() {
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "$BASE_PORT" in '' | *[!0-9]*) die "RABBITMQ_CLUSTER_BASE_PORT must be a number" ;; esac
case "$NODE_COUNT" in [1-9]) ;; *) die "RABBITMQ_CLUSTER_NODES must be 1..9" ;; esac
# The prefix becomes an Erlang node name (and a file name): keep it to safe characters.
[[ "$NAME_PREFIX" =~ ^[A-Za-z][A-Za-z0-9_-]{0,40}$ ]] ||
  die "RABBITMQ_CLUSTER_NAME_PREFIX must be a letter then up to 40 letters, digits, - or _"
[ "$NAME_PREFIX" != rabbit ] || die "RABBITMQ_CLUSTER_NAME_PREFIX rabbit is the standard node's"
mapfile -t NODES < <(seq 1 "$NODE_COUNT")
[ "$BASE_PORT" -ge 1024 ] && [ "$BASE_PORT" -le 45000 ] ||
  die "RABBITMQ_CLUSTER_BASE_PORT must be within 1024..45000 (distribution ports are +20000)"

node_name() { echo "$NAME_PREFIX-$1@$HOST"; }
node_dir() { echo "$CLUSTER_DIR/node$1"; }
amqp_port() { echo $((BASE_PORT + $1 - 1)); }
mgmt_port() { echo $((BASE_PORT + 10000 + $1 - 1)); }
dist_port() { echo $((BASE_PORT + 20000 + $1 - 1)); }

for n in "${NODES[@]}"; do
  for p in $(amqp_port "$n") $(mgmt_port "$n") $(dist_port "$n"); do
    case $p in 4369 | 5672 | 15672 | 25672 | 3567[2-9] | 3568[0-2])
      die "port $p is the standard node's (or epmd's / its CLI's); choose another RABBITMQ_CLUSTER_BASE_PORT" ;;
    esac
  done
done

amqp_url() {
  local n urls=()
  for n in "${NODES[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2f"); done
  local IFS=,
  echo "AMQP_URL=${urls[*]}"
}

print_urls() {
  amqp_url
  echo "RABBITMQ_MANAGEMENT_URL=http://guest:guest@127.0.0.1:$(mgmt_port 1)"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# node_env N: sets NODE_ENV to an `env -i ...` prefix with node N's environment only (nothing
# inherited but PATH), so neither /etc/rabbitmq nor a caller's RABBITMQ_* settings leak in.
node_env() {
  local n=$1 d
  d=$(node_dir "$n")
  NODE_ENV=(env -i PATH="$PATH" HOME="$COOKIE_HOME" LANG=C.UTF-8 LC_ALL=C.UTF-8
    RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf"
    RABBITMQ_NODENAME="$(node_name "$n")"
    RABBITMQ_USE_LONGNAME=false
    RABBITMQ_DIST_PORT="$(dist_port "$n")"
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf"
    RABBITMQ_CONFIG_FILES="$d/conf.d"
    RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config"
    RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$d/mnesia"
    RABBITMQ_LOG_BASE="$d/log"
    RABBITMQ_LOGS="$d/log/$(node_name "$n").log"
    RABBITMQ_PID_FILE="$d/rabbitmq.pid"
    RABBITMQ_PLUGINS_EXPAND_DIR="$d/plugins-expand"
    RABBITMQ_SCHEDULER_BIND_TYPE=u
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$ERL_ARGS"
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    ERL_EPMD_ADDRESS=127.0.0.1)
}

# ctl N ARGS...: rabbitmqctl against node N, with the cluster's cookie.
ctl() {
  local n=$1
  shift
  node_env "$n"
  "${NODE_ENV[@]}" "$RMQ_BIN/rabbitmqctl" -q -n "$(node_name "$n")" "$@"
}

# is_our_beam PID N: PID is a live beam.smp started by this script as node N (its environment
# holds node N's name and data directory).
is_our_beam() {
  local pid=$1 n=$2 comm env
  [ -n "$pid" ] && read -r comm 2>/dev/null <"/proc/$pid/comm" && [ "$comm" = beam.smp ] || return 1
  env=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ") || return 1
  grep -qxF "RABBITMQ_NODENAME=$(node_name "$n")" <<<"$env" &&
    grep -qxF "RABBITMQ_MNESIA_BASE=$(node_dir "$n")/mnesia" <<<"$env"
}

# node_pids N: the pids of node N's Erlang VM: its pid file's, plus any other beam.smp with its
# node name and data directory (a VM whose pid file went missing or is stale).
node_pids() {
  local n=$1 pid="" p found=()
  [ -r "$(node_dir "$n")/rabbitmq.pid" ] && read -r pid <"$(node_dir "$n")/rabbitmq.pid" || true
  is_our_beam "$pid" "$n" && found+=("$pid")
  for p in $(pgrep -x beam.smp || true); do
    [ "$p" != "$pid" ] && is_our_beam "$p" "$n" && found+=("$p")
  done
  echo "${found[*]}"
}

# gone PID...: none of these processes exists any more.
gone() {
  local p
  for p; do [ ! -e "/proc/$p" ] || return 1; done
}

declare -A STARTED_AT=()
vm_alive() { [ -n "$(node_pids "$1")" ]; }
# The node booted: its VM runs and both its AMQP and management listeners accept connections.
node_up() { vm_alive "$1" && port_open "$(amqp_port "$1")" && port_open "$(mgmt_port "$1")"; }
# For wait_until: the node booted, or its VM is gone (the caller tells which).
node_settled() {
  node_up "$1" && return 0
  vm_alive "$1" && return 1
  # Grace for the detached VM to appear after rabbitmq-server -detached returned.
  [ $((SECONDS - ${STARTED_AT[$1]:-0})) -ge 10 ]
}

# prepare N: node N's directories, config and plugin list (rewritten each start; ports follow
# RABBITMQ_CLUSTER_BASE_PORT).
prepare() {
  local n=$1 d
  d=$(node_dir "$n")
  mkdir -p "$d/log" "$d/mnesia" "$d/conf.d"
  # Shields the node from /etc/rabbitmq/rabbitmq-env.conf (the standard node's NODENAME etc.).
  printf '# Intentionally empty: scripts/rabbitmq-cluster.sh sets the environment.\n' >"$d/rabbitmq-env.conf"
  printf '[rabbitmq_management].\n' >"$d/enabled_plugins"
  cat >"$d/rabbitmq.conf" <<EOF
# Written by scripts/rabbitmq-cluster.sh on each start; edits are lost.
listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")
management.tcp.ip = 127.0.0.1
management.tcp.port = $(mgmt_port "$n")
management.rates_mode = none
loopback_users.guest = true
log.console = false
log.file.level = info
EOF
}

ensure_cookie() {
  mkdir -p "$COOKIE_HOME"
  printf 'scripts/rabbitmq-cluster.sh data; `stop --purge` deletes this directory.\n' >"$CLUSTER_DIR/$MARKER"
  chmod 700 "$COOKIE_HOME"
  local cookie="$COOKIE_HOME/.erlang.cookie"
  if [ ! -s "$cookie" ]; then
    (umask 077 && head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F >"$cookie")
  fi
  chmod 400 "$cookie"
}

# start_node N: boots node N unless it runs; returns without waiting.
start_node() {
  local n=$1 d
  d=$(node_dir "$n")
  if vm_alive "$n"; then
    log "node $n ($(node_name "$n")) already runs (pid $(node_pids "$n"))"
    return 0
  fi
  local p
  for p in $(amqp_port "$n") $(mgmt_port "$n") $(dist_port "$n"); do
    port_open "$p" && die "port $p is taken by another process; cannot start node $n"
  done
  prepare "$n"
  log "starting node $n: $(node_name "$n") amqp :$(amqp_port "$n") management :$(mgmt_port "$n") distribution :$(dist_port "$n")"
  STARTED_AT[$n]=$SECONDS
  node_env "$n"
  "${NODE_ENV[@]}" "$RMQ_BIN/rabbitmq-server" -detached >>"$d/log/startup.log" 2>&1 ||
    die "rabbitmq-server for node $n failed; see $d/log/startup.log"
}

# await_node N: waits until node N booted (or fails, showing its log).
await_node() {
  local n=$1 d
  d=$(node_dir "$n")
  if ! wait_until "$BOOT_TIMEOUT" node_settled "$n" || ! node_up "$n"; then
    log "node $n did not boot; last lines of its logs:"
    tail -n 20 "$d/log/startup.log" "$d/log/$(node_name "$n").log" 2>/dev/null | sed 's/^/    /' >&2 || true
    die "node $n ($(node_name "$n")) did not boot within ${BOOT_TIMEOUT}s"
  fi
  ctl "$n" await_startup --timeout 60 >/dev/null || die "node $n did not finish booting"
  log "node $n is up (pid $(node_pids "$n"))"
}

# cluster_json N: cluster_status of node N as JSON.
cluster_json() { ctl "$1" cluster_status --formatter json 2>/dev/null; }

# json_nodes KEY: the node names in a cluster_status JSON's KEY (running_nodes, disk_nodes ...).
json_nodes() {
  python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin).get(sys.argv[1]) or [])))' "$1"
}

all_names() {
  local n names=()
  for n in "${NODES[@]}"; do names+=("$(node_name "$n")"); done
  echo "${names[*]}"
}

# cluster_complete N: node N's cluster_status shows all nodes running.
cluster_complete() {
  local running
  running=$(cluster_json "$1" | json_nodes running_nodes) || return 1
  [ "$running" = "$(all_names)" ]
}

# quiet_ctl N ARGS...: ctl, showing its output only when it fails (join_cluster logs harmless
# "Failed to create a tracked connection table" errors while the joining node's app is stopped).
quiet_ctl() {
  local out
  out=$(ctl "$@" 2>&1) && return 0
  printf '%s\n' "$out" | sed 's/^/    /' >&2
  return 1
}

# join_all: makes nodes 2 and 3 members of node 1's cluster unless they are: stop_app and
# join_cluster one after the other, then start_app of both at once (the slow part).
join_all() {
  local n members joining=()
  members=$(cluster_json 1 | json_nodes disk_nodes) || die "cannot read node 1's cluster status"
  for n in "${NODES[@]:1}"; do
    if [[ " $members " == *" $(node_name "$n") "* ]]; then
      log "node $n is a cluster member already"
    else
      joining+=("$n")
    fi
  done
  [ ${#joining[@]} -gt 0 ] || return 0
  # each_joining ACTION: runs `quiet_ctl N ACTION` for every joining node at once.
  each_joining() {
    local i pids=()
    log "$1 on node(s) ${joining[*]}"
    for n in "${joining[@]}"; do
      quiet_ctl "$n" "$@" &
      pids+=($!)
    done
    for i in "${!pids[@]}"; do
      wait "${pids[$i]}" || die "$1 failed on node ${joining[$i]}"
    done
  }
  each_joining stop_app
  for n in "${joining[@]}"; do
    log "node $n: join_cluster $(node_name 1)"
    quiet_ctl "$n" join_cluster "$(node_name 1)" || die "node $n could not join $(node_name 1)"
  done
  each_joining start_app
}

# guest_ok: guest/guest logs in to node 1's management API, is an administrator and has full
# rights on the vhost /.
guest_ok() {
  python3 - "$(mgmt_port 1)" <<'EOF'
import base64, json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/api"
auth = "Basic " + base64.b64encode(b"guest:guest").decode()
def get(path):
    req = urllib.request.Request(base + path, headers={"Authorization": auth})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
me = get("/whoami")
tags = me["tags"] if isinstance(me["tags"], list) else me["tags"].split(",")
perm = get("/permissions/%2F/guest")
ok = "administrator" in tags and all(perm[k] == ".*" for k in ("configure", "write", "read"))
sys.exit(0 if ok else 1)
EOF
}

ensure_guest() {
  if guest_ok 2>/dev/null; then
    log "guest/guest is an administrator with full rights on / (loopback only)"
    return 0
  fi
  log "setting up guest/guest (administrator, full rights on /, loopback only)"
  ctl 1 add_user guest guest >/dev/null 2>&1 || ctl 1 change_password guest guest >/dev/null
  ctl 1 set_user_tags guest administrator >/dev/null
  ctl 1 set_permissions -p / guest '.*' '.*' '.*' >/dev/null
  guest_ok || die "guest/guest cannot use node 1's management API"
}

# verify_quorum: declares a quorum queue through node 1's management API, checks that its
# members are all the nodes, deletes it.
verify_quorum() {
  log "verifying quorum queue replication (declare through :$(mgmt_port 1), check members, delete)"
  local out
  if out=$(python3 - "$(mgmt_port 1)" "$(all_names)" 2>&1 <<'EOF'
import base64, json, os, sys, time, urllib.error, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}/api"
expected = sorted(sys.argv[2].split())
auth = "Basic " + base64.b64encode(b"guest:guest").decode()
queue = f"/queues/%2F/steadfast.cluster-verify.{os.getpid()}"
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": auth, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=15) as r:
        raw = r.read()
        return json.loads(raw) if raw else None
call("PUT", queue, {"durable": True, "auto_delete": False, "arguments": {"x-queue-type": "quorum"}})
try:
    deadline = time.monotonic() + 30
    while True:
        q = call("GET", queue)
        members = sorted(q.get("members") or [])
        online = sorted(q.get("online") or [])
        if members == expected and online == expected and q.get("leader"):
            break
        if time.monotonic() > deadline:
            sys.exit(f"quorum queue members {members}, online {online}, leader {q.get('leader')}; expected {expected}")
        time.sleep(0.5)
    print(f"members {' '.join(members)}; leader {q['leader']}")
finally:
    try:
        call("DELETE", queue)
    except urllib.error.HTTPError as e:
        print(f"could not delete the test queue: {e}", file=sys.stderr)
EOF
  ); then
    log "quorum queue replicated: $out"
  else
    log "quorum queue check failed: $out"
    return 1
  fi
}

# report: prints each node's state and the cluster's membership; returns 0 when all of them run
# and are clustered.
report() {
  local n healthy=0 up=() json=""
  for n in "${NODES[@]}"; do
    local state=down pids
    pids=$(node_pids "$n")
    if node_up "$n"; then
      state=up
      up+=("$n")
    elif [ -n "$pids" ]; then
      state="starting or stuck (VM runs, listeners closed)"
      healthy=1
    else
      healthy=1
    fi
    printf 'node %s  %-22s %-5s amqp 127.0.0.1:%s  management http://127.0.0.1:%s  pid %s\n' \
      "$n" "$(node_name "$n")" "$state" "$(amqp_port "$n")" "$(mgmt_port "$n")" "${pids:--}"
  done
  for n in "${up[@]}"; do
    json=$(cluster_json "$n") && break
  done
  if [ -n "$json" ]; then
    local running members
    running=$(json_nodes running_nodes <<<"$json")
    members=$(json_nodes disk_nodes <<<"$json")
    printf 'cluster members: %s\n' "${members:--}"
    printf 'cluster running: %s\n' "${running:--}"
    [ "$members" = "$(all_names)" ] && [ "$running" = "$(all_names)" ] || healthy=1
  else
    printf 'cluster: no node answers\n'
    healthy=1
  fi
  print_urls
  return $healthy
}

cmd_status() {
  local verify=""
  case "${1:-}" in
    --verify) verify=1 ;;
    "") ;;
    *) usage ;;
  esac
  if [ ! -d "$CLUSTER_DIR" ]; then
    log "no cluster set up ($CLUSTER_DIR is missing); run: $0 start"
    print_urls
    return 1
  fi
  local rc=0
  report || rc=1
  if [ -n "$verify" ]; then
    if [ $rc -eq 0 ]; then
      verify_quorum || rc=1
    else
      log "skipping the quorum queue check: not all nodes run clustered"
    fi
  fi
  if [ $rc -eq 0 ]; then log "cluster healthy"; else log "cluster NOT healthy"; fi
  return $rc
}

cmd_start() {
  command -v python3 >/dev/null || die "python3 is required"
  [ -x "$RMQ_BIN/rabbitmq-server" ] || die "RabbitMQ is not installed ($RMQ_BIN/rabbitmq-server)"
  local n all_up=1
  for n in "${NODES[@]}"; do node_up "$n" || all_up=0; done
  local out
  if [ $all_up = 1 ] && out=$(report); then
    log "cluster already runs"
    printf '%s\n' "$out"
    return 0
  fi
  log "starting the cluster in $CLUSTER_DIR"
  ensure_cookie
  # All at once: a node that was clustered waits at boot for the others it knew.
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in "${NODES[@]}"; do await_node "$n"; done
  join_all
  log "waiting until cluster_status shows ${#NODES[@]} running node(s)"
  wait_until 60 cluster_complete 1 || die "the cluster did not form within 60s"
  log "cluster formed: $(all_names)"
  ensure_guest
  verify_quorum || die "quorum queues do not replicate across the ${#NODES[@]} node(s)"
  report
  log "cluster ready"
}

# stop_node N: graceful stop within STOP_TIMEOUT, then kill -9 of whatever is left of node N.
stop_node() {
  local n=$1 pids
  pids=$(node_pids "$n")
  if [ -z "$pids" ]; then
    log "node $n is not running"
    return 0
  fi
  log "stopping node $n (pid $pids)"
  node_env "$n"
  timeout "$STOP_TIMEOUT" "${NODE_ENV[@]}" "$RMQ_BIN/rabbitmqctl" -q -n "$(node_name "$n")" stop \
    >/dev/null 2>&1 || true
  # shellcheck disable=SC2086
  wait_until "$STOP_TIMEOUT" gone $pids || true
  pids=$(node_pids "$n")
  if [ -n "$pids" ]; then
    log "node $n did not stop within ${STOP_TIMEOUT}s; kill -9 $pids"
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    wait_until 10 gone $pids || true
  fi
  log "node $n stopped"
}

cmd_stop() {
  local purge=""
  case "${1:-}" in
    --purge) purge=1 ;;
    "") ;;
    *) usage ;;
  esac
  local n
  if [ -d "$CLUSTER_DIR" ]; then
    # All at once: quicker, and `start` boots them all at once, so the order they left in
    # (which decides who waits for whom at boot) does not matter.
    for n in "${NODES[@]}"; do stop_node "$n" & done
    wait
    for n in "${NODES[@]}"; do vm_alive "$n" && die "node $n still runs (pid $(node_pids "$n"))"; done
  else
    log "nothing to stop ($CLUSTER_DIR is missing)"
  fi
  if [ -n "$purge" ] && [ -d "$CLUSTER_DIR" ]; then
    [ "$CLUSTER_DIR" = "$DEFAULT_DIR" ] || [ -f "$CLUSTER_DIR/$MARKER" ] ||
      die "refusing to delete $CLUSTER_DIR (no $MARKER in it: not a directory this script set up)"
    rm -rf "$CLUSTER_DIR"
    log "deleted $CLUSTER_DIR"
  fi
  log "done"
}

node_arg() {
  case "${1:-}" in [1-9]) [ "$1" -le "${#NODES[@]}" ] && return 0 ;; esac
  die "which node? give 1..${#NODES[@]}"
}

cmd_kill() {
  node_arg "${1:-}"
  local n=$1 pids
  pids=$(node_pids "$n")
  [ -n "$pids" ] || die "node $n is not running"
  log "kill -9 node $n ($(node_name "$n"), pid $pids)"
  # shellcheck disable=SC2086
  kill -9 $pids
  # shellcheck disable=SC2086
  wait_until 10 gone $pids || die "pid $pids of node $n is still there"
  log "node $n is dead"
}

# rejoined N: another running node's cluster_status shows node N running among all of them
# (a single node: its own does).
rejoined() {
  local n=$1 m
  if [ ${#NODES[@]} -eq 1 ]; then
    node_up "$n" && cluster_complete "$n"
    return
  fi
  for m in "${NODES[@]}"; do
    [ "$m" = "$n" ] && continue
    node_up "$m" || continue
    cluster_complete "$m" && return 0
  done
  return 1
}

cmd_restart() {
  node_arg "${1:-}"
  local n=$1
  [ -d "$(node_dir "$n")/mnesia" ] || die "node $n was never set up; run: $0 start"
  ensure_cookie
  start_node "$n"
  await_node "$n"
  log "waiting until node $n rejoined the cluster"
  wait_until 60 rejoined "$n" || die "node $n did not rejoin the cluster within 60s"
  log "node $n rejoined"
  report
}

amqp_closed() { ! port_open "$(amqp_port "$1")"; }

# stop-app N: the broker application of node N stops (its Erlang VM stays): every connection
# to it closes and its AMQP listener too; returns once the port is closed.
cmd_stop_app() {
  node_arg "${1:-}"
  local n=$1
  node_up "$n" || die "node $n is not running"
  log "stop_app on node $n ($(node_name "$n"))"
  ctl "$n" stop_app >/dev/null || die "stop_app failed on node $n"
  wait_until 30 amqp_closed "$n" || die "node $n still accepts AMQP connections after stop_app"
  log "node $n: application stopped"
}

# start-app N: starts node N's application again; returns once it booted, serves AMQP and
# management again and (in a cluster) runs among all the nodes.
cmd_start_app() {
  node_arg "${1:-}"
  local n=$1
  vm_alive "$n" || die "node $n's VM is not running (use restart)"
  log "start_app on node $n ($(node_name "$n"))"
  ctl "$n" start_app >/dev/null || die "start_app failed on node $n"
  ctl "$n" await_startup --timeout 60 >/dev/null || die "node $n did not finish starting"
  wait_until 60 node_up "$n" || die "node $n does not listen again after start_app"
  wait_until 60 rejoined "$n" || die "node $n is not running in the cluster after start_app"
  log "node $n: application running"
}

[ "$(id -u)" -eq 0 ] || die "run as root (the nodes run as root, with their own cookie)"
cmd=${1:-}
shift || true
case "$cmd" in
  start) [ $# -eq 0 ] || usage; cmd_start ;;
  status) cmd_status "$@" ;;
  stop) cmd_stop "$@" ;;
  kill) [ $# -eq 1 ] || usage; cmd_kill "$1" ;;
  restart) [ $# -eq 1 ] || usage; cmd_restart "$1" ;;
  stop-app) [ $# -eq 1 ] || usage; cmd_stop_app "$1" ;;
  start-app) [ $# -eq 1 ] || usage; cmd_start_app "$1" ;;
  *) usage ;;
esac
