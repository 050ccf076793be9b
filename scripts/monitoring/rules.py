#!/usr/bin/env python3
"""Renders the PrometheusRule from Steadfast's rules file and checks both (see rules.sh).

The PrometheusRule is rendered as text, the source's `groups:` indented under `spec:`, so its
comments and layout stay readable and diffable; with PyYAML installed, `check` also compares
the two as data.
"""

import argparse
import difflib
import os
import re
import sys

try:
    import yaml
except ImportError:  # only the structural comparison needs it
    yaml = None

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SOURCE = "k8s/components/monitoring/rules/steadfast.rules.yml"
TARGET = "k8s/components/monitoring/prometheusrule.yaml"
RUNBOOKS = "docs/runbooks"
DEFAULT_BASE = "https://github.com/steadfast/steadfast/blob/main/docs/runbooks"
SEVERITIES = ("critical", "warning", "info")
BASE_LINE = re.compile(r"^# runbook base: (\S+)$", re.M)


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def render(source, base):
    """The PrometheusRule whose spec.groups are the source's groups, runbooks under `base`."""
    lines = source.splitlines()
    try:
        start = lines.index("groups:")
    except ValueError:
        sys.exit(f"{SOURCE}: no top-level `groups:` line")
    out = [
        f"# Generated from rules/steadfast.rules.yml by `scripts/monitoring/rules.sh render`;",
        "# edit the source and render again (`scripts/monitoring/rules.sh check` compares them).",
        f"# runbook base: {base}",
        "apiVersion: monitoring.coreos.com/v1",
        "kind: PrometheusRule",
        "metadata:",
        "  name: steadfast",
        "  namespace: steadfast",
        "  labels:",
        "    app.kubernetes.io/name: steadfast",
        "    app.kubernetes.io/part-of: steadfast",
        "spec:",
        "  groups:",
    ]
    out += [("  " + line) if line.strip() else "" for line in lines[start + 1 :]]
    return "\n".join(out).replace(DEFAULT_BASE + "/", base + "/") + "\n"


def alerts(source):
    """[(group, alert, labels, annotations)] of every alerting rule."""
    if yaml is not None:
        found = []
        for group in yaml.safe_load(source)["groups"]:
            for rule in group.get("rules", []):
                if "alert" in rule:
                    found.append(
                        (group["name"], rule["alert"], rule.get("labels") or {},
                         rule.get("annotations") or {})
                    )
        return found
    # Without PyYAML: enough of the file's own layout to know each alert's keys.
    found, group, current, section = [], None, None, None
    for line in source.splitlines():
        if m := re.match(r"^  - name: (\S+)", line):
            group = m.group(1)
        elif m := re.match(r"^      - alert: (\S+)", line):
            current = (group, m.group(1), {}, {})
            found.append(current)
        elif current and (m := re.match(r"^        (labels|annotations):\s*$", line)):
            section = current[2] if m.group(1) == "labels" else current[3]
        elif current and section is not None and (m := re.match(r"^          (\w+):\s*(.*)$", line)):
            section[m.group(1)] = m.group(2).strip().strip('"') or "(folded)"
        elif re.match(r"^        \S", line):
            section = None
    return found


def slug(heading):
    """GitHub's anchor of a Markdown heading (before de-duplication)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    # HTML tags vanish, but not inside code spans, where `<ns>` is text.
    parts = text.split("`")
    parts[::2] = [re.sub(r"<[^>]+>", "", part) for part in parts[::2]]
    text = "".join(parts).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def sections(markdown):
    """{anchor: text of the section under that heading}, anchors de-duplicated as GitHub does."""
    lines = markdown.splitlines()
    headings, fence = [], None
    for i, line in enumerate(lines):
        if m := re.match(r"^\s{0,3}(```|~~~)", line):
            fence = None if fence == m.group(1) else (fence or m.group(1))
            continue
        if fence is None and (m := re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)):
            headings.append((i, len(m.group(1)), m.group(2)))
    result, seen = {}, {}
    for n, (i, level, text) in enumerate(headings):
        base = slug(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        anchor = base if count == 0 else f"{base}-{count}"
        end = next((j for j, lvl, _ in headings[n + 1 :] if lvl <= level), len(lines))
        result[anchor] = "\n".join(lines[i:end])
    return result


def check():
    problems = []
    source = read(SOURCE)
    found = alerts(source)
    names = [name for _, name, _, _ in found]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{SOURCE}: alert {name} is defined more than once")
    runbooks = {}
    for group, name, labels, annotations in found:
        where = f"{SOURCE}: {name} (group {group})"
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{where}: labels.severity must be one of {', '.join(SEVERITIES)}")
        for key in ("summary", "description", "runbook_url"):
            if not annotations.get(key):
                problems.append(f"{where}: annotations.{key} is missing")
        url = annotations.get("runbook_url", "")
        if not url:
            continue
        if not url.startswith(DEFAULT_BASE + "/") or "#" not in url:
            problems.append(f"{where}: runbook_url {url} is not {DEFAULT_BASE}/<runbook>.md#<anchor>")
            continue
        page, anchor = url[len(DEFAULT_BASE) + 1 :].split("#", 1)
        path = os.path.join(RUNBOOKS, page)
        if not os.path.isfile(os.path.join(ROOT, path)):
            problems.append(f"{where}: runbook_url names {path}, which does not exist")
            continue
        if path not in runbooks:
            runbooks[path] = sections(read(path))
        section = runbooks[path].get(anchor)
        if section is None:
            problems.append(f"{where}: {path} has no heading with the anchor #{anchor}")
        elif name not in section:
            problems.append(f"{where}: the section #{anchor} of {path} does not name the alert")

    # The alert sections send the reader on to other sections: those links must land too.
    for path, anchors in sorted(runbooks.items()):
        for anchor in re.findall(r"\]\(#([^)\s]+)\)", read(path)):
            if anchor not in anchors:
                problems.append(f"{path}: the link to #{anchor} matches no heading")

    try:
        rendered = read(TARGET)
    except FileNotFoundError:
        rendered = None
        problems.append(f"{TARGET} is missing: run scripts/monitoring/rules.sh render")
    if rendered is not None:
        m = BASE_LINE.search(rendered)
        base = m.group(1) if m else DEFAULT_BASE
        expected = render(source, base)
        if rendered != expected:
            diff = difflib.unified_diff(
                expected.splitlines(), rendered.splitlines(), "rendered from the source", TARGET,
                lineterm="", n=1,
            )
            option = "" if base == DEFAULT_BASE else f" --runbook-base {base}"
            problems.append(
                f"{TARGET} is out of date with {SOURCE}: run scripts/monitoring/rules.sh render{option}\n"
                + "\n".join(list(diff)[:40])
            )
        elif yaml is not None:
            document = yaml.safe_load(rendered)
            groups = yaml.safe_load(source.replace(DEFAULT_BASE + "/", base + "/"))["groups"]
            if (document.get("apiVersion"), document.get("kind")) != ("monitoring.coreos.com/v1", "PrometheusRule"):
                problems.append(f"{TARGET}: not a monitoring.coreos.com/v1 PrometheusRule")
            if document.get("spec", {}).get("groups") != groups:
                problems.append(f"{TARGET}: spec.groups differ from the source's groups")

    for problem in problems:
        print(f"[rules] {problem}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"[rules] {len(found)} alerts: severity, summary, description and runbook_url set; "
        f"every runbook anchor is a heading that names its alert ({', '.join(sorted(runbooks))})"
    )
    print(f"[rules] {TARGET} is in sync with {SOURCE} (runbook base {base})")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    r = sub.add_parser("render")
    r.add_argument("--runbook-base", default=DEFAULT_BASE, metavar="URL",
                   help=f"where docs/runbooks is published (default {DEFAULT_BASE})")
    args = parser.parse_args()
    if args.command == "check":
        return check()
    base = args.runbook_base.rstrip("/")
    if not re.fullmatch(r"https?://[^\s#?]+", base):
        print(f"[rules] --runbook-base must be an absolute http(s) URL without query or fragment, not {args.runbook_base!r}", file=sys.stderr)
        return 2
    with open(os.path.join(ROOT, TARGET), "w", encoding="utf-8") as f:
        f.write(render(read(SOURCE), base))
    print(f"[rules] wrote {TARGET} (runbook base {base})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
