#!/usr/bin/env bash
# alert-reconciler incident overhead: from an alert accepted by the broker (confirmed publish
# on <ns>.webhooks) to the analysis arriving at the (fake) Webex API, with 10 local recipes
# that answer at once through steadfast-recipe, over 100 incidents one after another. Real
# RabbitMQ, Redis and PostgreSQL; a release build.
#
#   scripts/bench/alert-reconciler.sh
#
# Baseline, in the same run: the same 10 recipe processes spawned directly, from the first
# spawn to the 10th result received over Redis (the cost of the recipes without any
# reconciler). Prints median and p99 of both and, last, the ratio of the medians.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-services.sh >/dev/null
cargo bench -p alert-reconciler --bench incident_overhead
