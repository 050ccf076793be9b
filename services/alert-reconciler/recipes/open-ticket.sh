#!/bin/sh
# Action recipe: opens a ticket for the incident — POSTs {"title", "incident", "severity"} to
# TICKET_URL when it is set, else says what it would open (the dev stack). Its parameters
# come from the suggestion (`alertname`, `severity`); the incident from `steadfast.*`.
set -eu
alertname=$(steadfast-recipe get alertname 2>/dev/null || steadfast-recipe get steadfast.labels.alertname)
severity=$(steadfast-recipe get severity 2>/dev/null || echo unknown)
incident=$(steadfast-recipe get steadfast.incident)
title="[$severity] $alertname (incident $incident)"

if [ -z "${TICKET_URL:-}" ]; then
  exec steadfast-recipe report --status successful --analysis "would open ticket: $title"
fi
if curl -fsS -X POST "$TICKET_URL" -H 'Content-Type: application/json' \
     -d "{\"title\": \"$title\", \"incident\": \"$incident\", \"severity\": \"$severity\"}"; then
  exec steadfast-recipe report --status successful --analysis "opened ticket: $title" --link "$TICKET_URL"
fi
steadfast-recipe report --status failed --analysis "could not open ticket at $TICKET_URL"
exit 1
