#!/usr/bin/env bash
# Validates the deployment files without a Docker engine or a cluster:
# the Dockerfile's product stage names only product binaries (never a stand-in from
# services/fakes/), `docker-compose config` for compose.yaml and `kubectl kustomize` for every
# overlay.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need() {
  command -v "$1" >/dev/null && return
  echo "[check-deploy] installing $2" >&2
  $SUDO apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2" >/dev/null
}
# The product image is built from the Dockerfile's PRODUCT_BINARIES list. It must name every
# binary of the product crates and none of the stand-ins (every package under services/fakes/)
# nor of the test tools (packages with `[package.metadata.steadfast] test-tool = true`, e.g. the
# chaos suite), which no image carries.
metadata=$(mktemp)
cargo metadata --format-version 1 --no-deps --locked >"$metadata"
trap 'rm -f "$metadata"' EXIT
check_product_list() {
  python3 - "$1" "$metadata" <<'PY'
import json, os, re, sys
dockerfile, metadata = sys.argv[1], json.load(open(sys.argv[2]))
text = open(dockerfile).read()
m = re.search(r'^ARG PRODUCT_BINARIES="([^"]*)"', text, re.M)
if not m:
    sys.exit(f"{dockerfile}: no ARG PRODUCT_BINARIES=\"...\" line")
listed = set(m.group(1).split())
fakes_dir = os.path.join(metadata["workspace_root"], "services", "fakes") + os.sep
fake_bins, product_bins, tool_bins = set(), set(), set()
for package in metadata["packages"]:
    bins = {t["name"] for t in package["targets"] if "bin" in t["kind"]}
    if ((package.get("metadata") or {}).get("steadfast") or {}).get("test-tool"):
        tool_bins.update(bins)
        continue
    (fake_bins if package["manifest_path"].startswith(fakes_dir) else product_bins).update(bins)
problems = [f"stand-in binary `{b}` is in the product image's PRODUCT_BINARIES" for b in sorted(listed & fake_bins)]
problems += [f"test tool `{b}` is in the product image's PRODUCT_BINARIES" for b in sorted(listed & tool_bins)]
problems += [f"`{b}` in PRODUCT_BINARIES is no binary of the workspace" for b in sorted(listed - fake_bins - product_bins)]
problems += [f"product binary `{b}` is missing from PRODUCT_BINARIES" for b in sorted(product_bins - listed)]
for p in problems:
    print(f"{dockerfile}: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}
check_product_list Dockerfile
echo "Dockerfile: the product stage names only product binaries"
# The check itself must catch a stand-in slipping in.
probe=$(mktemp)
sed -E 's/^(ARG PRODUCT_BINARIES="[^"]*)"/\1 fake-kube"/' Dockerfile >"$probe"
if check_product_list "$probe" 2>/dev/null; then
  rm -f "$probe"; echo "check-deploy: the product-list check did not catch fake-kube" >&2; exit 1
fi
rm -f "$probe"

need docker-compose docker-compose
need kubectl kubectl

docker-compose -f compose.yaml config --quiet
echo "compose.yaml: valid"
for override in scripts/compose/*.override.yaml; do
  docker-compose -f compose.yaml -f "$override" config --quiet
  echo "compose.yaml + $override: valid"
done
# The observability profile (Prometheus, Grafana, Loki) and the dashboards it provisions.
docker-compose -f compose.yaml --profile observability config --quiet
echo "compose.yaml --profile observability: valid"
python3 scripts/monitoring/dashboards.py

for overlay in k8s/overlays/*/; do
  out=$(kubectl kustomize "$overlay")
  kinds=$(printf '%s\n' "$out" | grep -c '^kind:' || true)
  echo "$overlay: renders $kinds objects"
done
# Every in-cluster URL the ConfigMaps give a service names a Service port that exists.
python3 scripts/check-service-urls.py k8s/overlays/dev k8s/overlays/prod
# The monitoring component is optional: prod renders without any Prometheus Operator kind,
# prod-monitoring adds the ServiceMonitors, the PrometheusRule and the dashboards.
python3 scripts/monitoring/check-component.py
