#!/bin/sh
# The official redis image builds Redis with protected mode off, so other containers may
# connect without a password; Debian's Redis keeps it on, so turn it off here.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no --bind 0.0.0.0 "$@"
fi
exec "$@"
