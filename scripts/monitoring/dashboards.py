#!/usr/bin/env python3
"""Checks the Grafana dashboards in k8s/components/monitoring/dashboards/.

    scripts/monitoring/dashboards.py    # prints one summary line per dashboard

Checks: every file is a JSON dashboard with a uid and title unique across the folder and a
schemaVersion; panel ids are unique; every panel that queries data (and every query variable)
names its datasource through the dashboard's datasource variables, `${datasource}` (type
prometheus) or `${loki_datasource}` (type loki), so the dashboards import into any Grafana
whatever its datasources' uids; every query has balanced brackets.

Which metrics the queries name, and that the services export them, is checked by the services'
Rust tests (libs/test-support/src/monitoring.rs), not here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / "k8s" / "components" / "monitoring" / "dashboards"
DATASOURCES = {"${datasource}": "prometheus", "${loki_datasource}": "loki"}  # uid -> type
# Panels that hold no query.
NO_QUERY_PANELS = {"row", "text", "news", "dashlist", "welcome"}
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def panels(items: list) -> list:
    """All panels, including those inside (collapsed) rows."""
    out = []
    for panel in items:
        out.append(panel)
        out.extend(panels(panel.get("panels", [])))
    return out


def datasource_problem(where: str, datasource) -> str | None:
    if not isinstance(datasource, dict):
        return f"{where}: datasource must be {{\"type\": ..., \"uid\": \"${{datasource}}\"|\"${{loki_datasource}}\"}}, not {datasource!r}"
    uid, kind = datasource.get("uid"), datasource.get("type")
    if uid not in DATASOURCES:
        return f"{where}: datasource uid {uid!r} is neither `${{datasource}}` nor `${{loki_datasource}}`"
    if kind != DATASOURCES[uid]:
        return f"{where}: datasource uid {uid!r} has type {kind!r}, not {DATASOURCES[uid]!r}"
    return None


def check(path: Path, problems: list[str]) -> dict | None:
    try:
        board = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        problems.append(f"{path.name}: not valid JSON: {e}")
        return None
    if not isinstance(board, dict):
        problems.append(f"{path.name}: not a dashboard object")
        return None
    for key in ("uid", "title", "schemaVersion", "panels"):
        if not board.get(key):
            problems.append(f"{path.name}: no `{key}`")
    ids = set()
    for panel in panels(board.get("panels", [])):
        title = panel.get("title", "?")
        where = f"{path.name}: panel {title!r}"
        if panel.get("id") in ids:
            problems.append(f"{where}: duplicate panel id {panel.get('id')}")
        ids.add(panel.get("id"))
        if panel.get("type") in NO_QUERY_PANELS:
            continue
        problem = datasource_problem(where, panel.get("datasource"))
        if problem:
            problems.append(problem)
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no query")
        for target in targets:
            datasource = target.get("datasource", panel.get("datasource"))
            problem = datasource_problem(f"{where} query {target.get('refId')}", datasource)
            if problem:
                problems.append(problem)
                continue
            expr = target.get("expr", "")
            if not expr.strip():
                problems.append(f"{where} query {target.get('refId')}: empty expression")
            elif not balanced(expr):
                problems.append(f"{where} query {target.get('refId')}: unbalanced brackets in {expr!r}")
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        where = f"{path.name}: variable {variable.get('name')!r}"
        problem = datasource_problem(where, variable.get("datasource"))
        if problem:
            problems.append(problem)
        elif not variable.get("query"):
            problems.append(f"{where}: no query")
    return board


def balanced(expr: str) -> bool:
    text = STRING.sub('""', expr)
    stack = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            if not stack or stack.pop() != pairs[char]:
                return False
    return not stack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the dashboards folder")
    args = parser.parse_args()

    files = sorted(args.dir.glob("*.json"))
    if not files:
        print(f"no dashboards in {args.dir}", file=sys.stderr)
        return 1
    problems: list[str] = []
    uids: dict[str, str] = {}
    titles: dict[str, str] = {}
    checked: list[str] = []
    for path in files:
        board = check(path, problems)
        if board is None:
            continue
        for seen, key in ((uids, "uid"), (titles, "title")):
            value = board.get(key)
            if value in seen:
                problems.append(f"{path.name}: {key} {value!r} is also that of {seen[value]}")
            seen[value] = path.name
        checked.append(path.name)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    for name in checked:
        print(f"{name}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
