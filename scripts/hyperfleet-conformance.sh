#!/usr/bin/env bash
# Runs HyperFleet's own configs through our adapter and sentinel and prints a table: each file,
# what HyperFleet's tests and docs say it should do, what ours does, and whether they match.
#
#   scripts/hyperfleet-conformance.sh SNAPSHOT_DIR
#
# SNAPSHOT_DIR holds checkouts of HyperFleet's public repositories, as
#   SNAPSHOT_DIR/hyperfleet-adapter   (github.com/openshift-hyperfleet/hyperfleet-adapter)
#   SNAPSHOT_DIR/hyperfleet-sentinel  (github.com/openshift-hyperfleet/hyperfleet-sentinel)
# (a bare clone, `*.git` or a directory whose `repo/` is one, is checked out into a temporary
# directory first). Nothing is copied into this repository: the expectations are ours, in
# services/adapter/tests/hyperfleet-conformance.yaml. Exits 1 on any mismatch or on a YAML file
# of the snapshot no case names.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 SNAPSHOT_DIR (with hyperfleet-adapter/ and hyperfleet-sentinel/ checkouts)" >&2
  exit 2
fi
snapshots="$(cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A work tree for repository NAME: SNAPSHOT_DIR/NAME if it is one, else a checkout of the first
# bare clone found for it.
worktree() {
  local name="$1" candidate
  if [ -d "$snapshots/$name" ] && [ -n "$(git -C "$snapshots/$name" rev-parse --show-toplevel 2>/dev/null || true)" ]; then
    echo "$snapshots/$name"
    return
  fi
  for candidate in "$snapshots/$name.git" "$snapshots/$name/repo" "$snapshots/openshift-hyperfleet+$name/repo"; do
    if [ -d "$candidate" ] && git --git-dir="$candidate" rev-parse --verify -q HEAD >/dev/null; then
      mkdir -p "$work/$name"
      git --git-dir="$candidate" archive HEAD | tar -x -C "$work/$name"
      echo "$work/$name"
      return
    fi
  done
  echo "no checkout or clone of $name under $snapshots" >&2
  exit 2
}
adapter_tree="$(worktree hyperfleet-adapter)"
sentinel_tree="$(worktree hyperfleet-sentinel)"

cargo build --quiet --locked -p adapter -p sentinel --bins --example hyperfleet_conformance
target="${CARGO_TARGET_DIR:-target}/debug"
"$target/examples/hyperfleet_conformance" \
  --cases services/adapter/tests/hyperfleet-conformance.yaml \
  --adapter-snapshot "$adapter_tree" \
  --sentinel-snapshot "$sentinel_tree" \
  --adapter-bin "$target/adapter" \
  --sentinel-bin "$target/sentinel"
