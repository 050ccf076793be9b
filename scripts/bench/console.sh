#!/usr/bin/env bash
# The console's busiest pages with a lot behind them: the overview and the incident list with
# 10,000 incidents in the alert-reconciler and 1,000 parked messages, 100 rounds each, server
# time from the console's Server-Timing header. Real RabbitMQ, Redis, PostgreSQL, reconciler
# and receiver; a release build.
#
#   scripts/bench/console.sh
#
# Baseline, in the same run: the same data straight from the services (one page of incidents
# with the counts from the reconciler's API, the queue list from the management API). Prints
# median and p99 of each page and the ratio of its median to the baseline's.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-services.sh >/dev/null
cargo bench -p console --bench pages
