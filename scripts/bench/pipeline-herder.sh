#!/usr/bin/env bash
# pipeline-herder: matching a 100 MiB job log against the default matchers plus 100 extra
# patterns, next to ripgrep on the same file and the same patterns, in the same run.
#
#   scripts/bench/pipeline-herder.sh               100 MiB (BENCH_LOG_MIB=200 for more)
#
# Prints criterion's figures for both and, last, `summary: ... ratio R (target >= 0.50)`.
# The log and pattern file are kept in target/bench-data/pipeline-herder/ to repeat with
# `rg -f patterns.txt kernel-ci-100MiB.log` by hand.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v rg >/dev/null; then
  echo "ripgrep (rg) is required for the baseline: apt-get install ripgrep" >&2
  exit 1
fi
cargo bench -p pipeline-herder --bench matching -- "$@"
