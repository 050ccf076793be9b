#!/usr/bin/env bash
# Steadfast's alert rules: one Prometheus rules file is the source
# (k8s/components/monitoring/rules/steadfast.rules.yml); the Kubernetes PrometheusRule is
# generated from it.
#
#   scripts/monitoring/rules.sh check
#       promtool check rules + promtool test rules (rules/tests/*.yml); every alert has a
#       severity, summary, description and an absolute runbook_url whose anchor is a heading
#       of docs/runbooks/<runbook>.md that names the alert; the generated PrometheusRule is in
#       sync with the source (rendered again with the runbook base it was rendered with).
#       Installs promtool (Debian package `prometheus`) when missing.
#   scripts/monitoring/rules.sh render [--runbook-base URL]
#       writes k8s/components/monitoring/prometheusrule.yaml, runbook URLs pointing at URL
#       (default https://github.com/steadfast/steadfast/blob/main/docs/runbooks).
set -euo pipefail
cd "$(dirname "$0")/../.."

helper=scripts/monitoring/rules.py

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

need_promtool() {
  command -v promtool >/dev/null && return
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "[rules] installing promtool (Debian package prometheus)" >&2
  $sudo apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package enables and starts a Prometheus server on :9090, the port every Steadfast
  # service serves its metrics on: only promtool is wanted.
  $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  $sudo service prometheus stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  check)
    [ $# -eq 1 ] || usage
    need_promtool
    rules=k8s/components/monitoring/rules/steadfast.rules.yml
    promtool check rules "$rules"
    promtool test rules k8s/components/monitoring/rules/tests/*.yml
    python3 "$helper" check
    ;;
  render)
    shift
    python3 "$helper" render "$@"
    ;;
  *)
    usage
    ;;
esac
