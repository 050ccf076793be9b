#!/usr/bin/env bash
# Validates the deployment files without a Docker engine or a cluster:
# `docker-compose config` for compose.yaml and `kubectl kustomize` for every overlay.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need() {
  command -v "$1" >/dev/null && return
  echo "[check-deploy] installing $2" >&2
  $SUDO apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2" >/dev/null
}
need docker-compose docker-compose
need kubectl kubectl

docker-compose -f compose.yaml config --quiet
echo "compose.yaml: valid"

for overlay in k8s/overlays/*/; do
  out=$(kubectl kustomize "$overlay")
  kinds=$(printf '%s\n' "$out" | grep -c '^kind:' || true)
  echo "$overlay: renders $kinds objects"
done
