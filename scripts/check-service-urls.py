#!/usr/bin/env python3
"""Every in-cluster URL in a rendered overlay's ConfigMaps names a Service and a port it has.

A ConfigMap value such as `http://webhook-receiver:8080` must match a Service `webhook-receiver`
in the same render with a port 8080 (80 when the URL has no port, 443 for https). A typo'd
name or a port the Service does not expose otherwise shows up only as "unreachable" on a
running console.

    scripts/check-service-urls.py <overlay>...
"""
import re
import subprocess
import sys

import yaml

URL = re.compile(r"^(https?)://([a-z0-9][a-z0-9-]*)(?::(\d+))?(?:/.*)?$")


def check(overlay):
    rendered = subprocess.run(
        ["kubectl", "kustomize", overlay], check=True, capture_output=True, text=True
    ).stdout
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    ports = {
        o["metadata"]["name"]: {p["port"] for p in o["spec"].get("ports", [])}
        for o in objects
        if o["kind"] == "Service"
    }
    problems, checked = [], 0
    for o in objects:
        if o["kind"] != "ConfigMap":
            continue
        for key, value in (o.get("data") or {}).items():
            match = URL.match(str(value).strip())
            # Only bare in-cluster names (no dots): external hosts are the operator's to set.
            if not match:
                continue
            scheme, host, port = match.groups()
            port = int(port) if port else (443 if scheme == "https" else 80)
            checked += 1
            where = f"{overlay}: ConfigMap {o['metadata']['name']} {key}={value}"
            if host not in ports:
                problems.append(f"{where}: no Service `{host}` in this overlay")
            elif port not in ports[host]:
                problems.append(
                    f"{where}: Service `{host}` exposes {sorted(ports[host])}, not {port}"
                )
    return checked, problems


def main():
    failed = False
    for overlay in sys.argv[1:]:
        checked, problems = check(overlay)
        for problem in problems:
            print(problem, file=sys.stderr)
        failed |= bool(problems)
        print(f"{overlay}: {checked} in-cluster URLs name a Service port")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
