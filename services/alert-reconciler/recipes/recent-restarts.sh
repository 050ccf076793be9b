#!/bin/sh
# Debugging recipe: is the alerting pod crash-looping? With kubectl (in a cluster) it reads
# the pod's restart count; without, it says it could not tell. Suggests `restart-pod` with
# the pod as parameter when the count passes RESTART_THRESHOLD.
set -eu
pod=$(steadfast-recipe get alerts.0.labels.pod)
namespace=$(steadfast-recipe get alerts.0.labels.namespace 2>/dev/null || echo default)

if ! command -v kubectl >/dev/null 2>&1; then
  exec steadfast-recipe report --status unknown \
    --analysis "cannot check $namespace/$pod: kubectl is not available to this recipe"
fi
restarts=$(kubectl get pod "$pod" -n "$namespace" \
  -o jsonpath='{.status.containerStatuses[0].restartCount}' 2>/dev/null || echo "")
if [ -z "$restarts" ]; then
  exec steadfast-recipe report --status failed --analysis "pod $namespace/$pod not found"
fi
if [ "$restarts" -ge "${RESTART_THRESHOLD:-3}" ]; then
  exec steadfast-recipe report --status successful \
    --analysis "pod $namespace/$pod restarted $restarts times" \
    --action restart-pod --action-data "restart-pod={\"pod\":\"$pod\",\"namespace\":\"$namespace\"}"
fi
exec steadfast-recipe report --status successful \
  --analysis "pod $namespace/$pod restarted $restarts times: below ${RESTART_THRESHOLD:-3}, not the cause"
