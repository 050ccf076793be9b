#!/bin/sh
# Debugging recipe: what the alert says, in one analysis, with its links.
# Reads data.json through `steadfast-recipe get`; reports with `steadfast-recipe report`.
set -eu
name=$(steadfast-recipe get alerts.0.labels.alertname)
summary=$(steadfast-recipe get alerts.0.annotations.summary 2>/dev/null || echo "no summary")
since=$(steadfast-recipe get alerts.0.startsAt 2>/dev/null || echo "an unknown time")
generator=$(steadfast-recipe get alerts.0.generatorURL 2>/dev/null || true)
runbook=$(steadfast-recipe get alerts.0.annotations.runbook_url 2>/dev/null || true)

severity=$(steadfast-recipe get alerts.0.labels.severity 2>/dev/null || echo none)

set -- --status successful --analysis "$name firing since $since: $summary"
if [ "$severity" = "critical" ]; then
  set -- "$@" --action open-ticket --action-data "open-ticket={\"alertname\":\"$name\",\"severity\":\"$severity\"}"
fi
[ -n "$generator" ] && set -- "$@" --link "$generator"
[ -n "$runbook" ] && set -- "$@" --link "$runbook"
exec steadfast-recipe report "$@"
