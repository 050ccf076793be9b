#!/bin/sh
# Action recipe: deletes the pod named in its parameters (`pod`, `namespace`) so its
# controller replaces it. DRY_RUN=1 (the default here) only says what it would do.
set -eu
pod=$(steadfast-recipe get pod)
namespace=$(steadfast-recipe get namespace 2>/dev/null || echo default)

if [ "${DRY_RUN:-1}" != "0" ]; then
  exec steadfast-recipe report --status successful --analysis "dry run: would delete pod $namespace/$pod"
fi
if kubectl delete pod "$pod" -n "$namespace" --wait=false; then
  exec steadfast-recipe report --status successful --analysis "deleted pod $namespace/$pod; its controller recreates it"
fi
steadfast-recipe report --status failed --analysis "kubectl could not delete pod $namespace/$pod"
exit 1
