#!/usr/bin/env bash
# Makes sure RabbitMQ (with the management plugin), Redis and PostgreSQL answer on loopback.
# Starts whichever is down, installing it from Debian packages when it is missing, and waits
# until each is ready. Safe to run any number of times; CI and scripts/dev-up.sh call it.
set -euo pipefail

log() { printf '[ensure-services] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# shellcheck source=scripts/lib/common.sh
. "$(dirname "$0")/lib/common.sh"

# wait_for NAME SECONDS COMMAND...: polls COMMAND until it succeeds or the deadline passes.
wait_for() {
  local name=$1 seconds=$2
  shift 2
  wait_until "$seconds" "$@" || die "$name did not become ready within ${seconds}s"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- PostgreSQL ------------------------------------------------------------------------------
pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! command -v pg_isready >/dev/null || ! pg_ready; then
  fresh_install=""
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    fresh_install=1
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  if [ -n "$fresh_install" ]; then
    # The project's tests connect as postgres over TCP without a password, as on the CI machine.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  log "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL 60 pg_ready
fi

# --- Redis -----------------------------------------------------------------------------------
redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
if ! command -v redis-cli >/dev/null || ! redis_ready; then
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting Redis"
  $SUDO mkdir -p /var/lib/redis /var/log/redis
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 30 redis_ready
fi

# --- RabbitMQ --------------------------------------------------------------------------------
if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  log "starting RabbitMQ"
  $SUDO rabbitmq-server -detached || true
  wait_for RabbitMQ 120 port_open 5672
  $SUDO rabbitmqctl await_startup >/dev/null 2>&1 || true
fi
# An open port is not a working broker: once, a node that had run for an hour accepted TCP
# connections but never sent the AMQP handshake (nor answered rabbitmqctl). Every test would
# then time out one by one; say so at once instead.
amqp_answers() {
  python3 - <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", 5672), timeout=10)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    sys.exit(0 if s.recv(1) == b"\x01" else 1)
except OSError:
    sys.exit(1)
PY
}
if ! amqp_answers; then
  die "RabbitMQ listens on 5672 but does not answer the AMQP handshake within 10 s: the node is wedged. Restart it (kill its beam.smp: rabbitmqctl hangs too), then run this script again."
fi
# steadfastctl and the tests' clean-up read queue lists from the management API.
if ! port_open 15672; then
  log "enabling the RabbitMQ management plugin"
  $SUDO rabbitmq-plugins enable rabbitmq_management >/dev/null
  wait_for "RabbitMQ management API" 60 port_open 15672
fi

log "PostgreSQL, Redis and RabbitMQ are ready"
