#!/usr/bin/env python3
"""The monitoring component is optional (scripts/check-deploy.sh runs this).

`kubectl kustomize k8s/overlays/prod` must hold no Prometheus Operator kind (a cluster without
the operator rejects them); `k8s/overlays/prod-monitoring` is prod plus the component: a
ServiceMonitor for every Service with a `metrics` port, selecting it by label and port name
and leaving `job` alone, the PrometheusRule as generated, a labelled ConfigMap per dashboard.
Without PyYAML only the kinds are compared.
"""

import collections
import glob
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:
    yaml = None

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
COMPONENT = "k8s/components/monitoring"
WITHOUT, WITH = "k8s/overlays/prod", "k8s/overlays/prod-monitoring"
OPERATOR_GROUP = "monitoring.coreos.com/"


def kustomize(overlay):
    return subprocess.run(
        ["kubectl", "kustomize", os.path.join(ROOT, overlay)],
        check=True, capture_output=True, text=True,
    ).stdout


def kinds(text):
    """Counter of (apiVersion, kind), by text: what every document starts its lines with."""
    found = collections.Counter()
    for doc in re.split(r"^---$", text, flags=re.M):
        api = re.search(r"^apiVersion: (\S+)", doc, re.M)
        kind = re.search(r"^kind: (\S+)", doc, re.M)
        if api and kind:
            found[(api.group(1), kind.group(1))] += 1
    return found


def key(doc):
    return (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"])


def deep_checks(without_text, with_text, problems):
    without = {key(d): d for d in yaml.safe_load_all(without_text) if d}
    with_ = {key(d): d for d in yaml.safe_load_all(with_text) if d}
    for k, doc in without.items():
        if with_.get(k) != doc:
            problems.append(f"{WITH}: {k} differs from {WITHOUT}'s (the component must only add)")
    added = [d for k, d in with_.items() if k not in without]

    services = [d for d in with_.values() if d["kind"] == "Service"]
    monitors = [d for d in added if d["kind"] == "ServiceMonitor"]
    monitored = set()
    for monitor in monitors:
        name, spec = monitor["metadata"]["name"], monitor["spec"]
        selector = spec.get("selector", {}).get("matchLabels", {})
        targets = [
            s for s in services
            if s["metadata"].get("namespace") == monitor["metadata"].get("namespace")
            and selector and all(s["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]
        if len(targets) != 1:
            problems.append(f"ServiceMonitor {name} selects {len(targets)} Services, not 1")
            continue
        ports = {p.get("name") for p in targets[0]["spec"].get("ports", [])}
        for endpoint in spec.get("endpoints", []):
            if endpoint.get("port") not in ports:
                problems.append(f"ServiceMonitor {name}: Service {targets[0]['metadata']['name']} has no port {endpoint.get('port')!r}")
            if endpoint.get("path", "/metrics") != "/metrics":
                problems.append(f"ServiceMonitor {name}: path {endpoint.get('path')} is not /metrics")
            for relabel in endpoint.get("relabelings", []) + endpoint.get("metricRelabelings", []):
                if relabel.get("targetLabel") == "job":
                    problems.append(f"ServiceMonitor {name} relabels `job`, which the alert rules select on")
        if "jobLabel" in spec:
            problems.append(f"ServiceMonitor {name} sets jobLabel: `job` must stay the Service name")
        monitored.add(targets[0]["metadata"]["name"])
    for service in services:
        if any(p.get("name") == "metrics" for p in service["spec"].get("ports", [])):
            if service["metadata"]["name"] not in monitored:
                problems.append(f"Service {service['metadata']['name']} has a metrics port and no ServiceMonitor")

    rules = [d for d in added if d["kind"] == "PrometheusRule"]
    with open(os.path.join(ROOT, COMPONENT, "prometheusrule.yaml"), encoding="utf-8") as f:
        generated = yaml.safe_load(f)
    if len(rules) != 1 or rules[0]["spec"] != generated["spec"]:
        problems.append(f"{WITH}: not exactly one PrometheusRule with the spec of {COMPONENT}/prometheusrule.yaml")

    dashboards = {
        os.path.basename(p): open(p, encoding="utf-8").read()
        for p in sorted(glob.glob(os.path.join(ROOT, COMPONENT, "dashboards", "*.json")))
    }
    shipped = {}
    for d in added:
        if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            shipped.update(d.get("data", {}))
    if shipped != dashboards:
        problems.append(
            f"{WITH}: dashboard ConfigMaps hold {sorted(shipped)}, "
            f"{COMPONENT}/dashboards has {sorted(dashboards)} (or their contents differ)"
        )
    return len(monitors), len(dashboards)


def main():
    problems = []
    without_text, with_text = kustomize(WITHOUT), kustomize(WITH)
    without_kinds, with_kinds = kinds(without_text), kinds(with_text)
    operator = sorted(f"{a} {k}" for a, k in without_kinds if a.startswith(OPERATOR_GROUP))
    if operator:
        problems.append(f"{WITHOUT} holds {', '.join(operator)}: clusters without the Prometheus Operator reject it")
    added = with_kinds - without_kinds
    for kind in ("ServiceMonitor", "PrometheusRule"):
        if added[(OPERATOR_GROUP + "v1", kind)] == 0:
            problems.append(f"{WITH} holds no {kind}")
    summary = ""
    if yaml is not None and not problems:
        monitors, dashboards = deep_checks(without_text, with_text, problems)
        summary = f" ({monitors} ServiceMonitors on the metrics ports, the generated rules, {dashboards} dashboards)"
    for problem in problems:
        print(f"[monitoring] {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{WITHOUT}: no {OPERATOR_GROUP} kinds; {WITH} adds " +
          ", ".join(f"{n} {k}" for (_, k), n in sorted(added.items(), key=lambda i: i[0][1])) + summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
