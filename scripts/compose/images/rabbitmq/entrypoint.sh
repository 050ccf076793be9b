#!/bin/sh
# The official rabbitmq image's contract, for what Steadfast's compose file relies on: guest may
# connect from other containers, RABBITMQ_DEFAULT_USER / _PASS / _VHOST set the first user, the
# management plugin listens on 15672, logs go to the console.
set -eu
conf=/etc/rabbitmq/rabbitmq.conf
{
  echo "loopback_users.guest = false"
  echo "listeners.tcp.default = 5672"
  echo "management.tcp.port = 15672"
  echo "log.console = true"
  echo "log.file = false"
  [ -n "${RABBITMQ_DEFAULT_USER:-}" ] && echo "default_user = $RABBITMQ_DEFAULT_USER"
  [ -n "${RABBITMQ_DEFAULT_PASS:-}" ] && echo "default_pass = $RABBITMQ_DEFAULT_PASS"
  [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ] && echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"
  true
} >"$conf"
exec "$@"
