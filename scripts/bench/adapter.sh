#!/usr/bin/env bash
# adapter: events per second end to end, and the per-event cost of the pipeline.
#
#   scripts/bench/adapter.sh                 1,000 events (BENCH_EVENTS=5000 for more)
#
# 1. end_to_end: 1,000 cluster events on the local RabbitMQ through the adapter (fleet-api on
#    PostgreSQL and the fake Kubernetes API on loopback: a GET, a namespace and a Job created,
#    a status PUT per event) at three prefetch/parallelism settings, next to an ack-only
#    consumer of the same events (the broker's share). Prints `summary: ... ratio R`.
# 2. pipeline (criterion): one event through the pipeline with the dry run's in-memory
#    cluster and recorded API, next to decoding the CloudEvent. Prints `summary: ...`.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/ensure-services.sh >/dev/null
cargo bench -p adapter --bench end_to_end
cargo bench -p adapter --bench pipeline -- "$@"
