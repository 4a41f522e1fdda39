#!/usr/bin/env bash
# Checks the deploy files as CI does (.ci/run calls this):
# - `kubectl kustomize deploy/kubernetes` renders with the default load
#   restrictor, alone and with the optional components;
# - the rendered objects pass the Kubernetes schemas (kubernetes-validate
#   --strict) and the restricted Pod Security profile plus the project's
#   deploy rules (check_manifests.py), and the checker fails on a bad pod;
# - the alerting rules pass `promtool check rules` and `promtool test rules`,
#   and the PrometheusRule holds the same groups as deploy/monitoring/rules.yaml;
# - docker-compose.yml is valid and runs only binaries the image has.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=1.33.0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v kubectl >/dev/null || { echo "kubectl is needed (Debian: kubectl or kubernetes-client)" >&2; exit 1; }
command -v promtool >/dev/null || bash scripts/install-servers.sh
python3 -c 'import kubernetes_validate, yaml' 2>/dev/null \
  || python3 -m pip install -q --disable-pip-version-check kubernetes-validate

echo "== kustomize render (default load restrictor)"
kubectl kustomize deploy/kubernetes > "$work/base.yaml"
# Kustomize takes other kustomizations by relative path only.
mkdir "$work/all"
k8s=$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$PWD/deploy/kubernetes" "$work/all")
cat > "$work/all/kustomization.yaml" <<EOK
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [$k8s]
components:
  - $k8s/components/prometheus-operator
  - $k8s/components/grafana-dashboard
  - $k8s/components/owner-lookup
EOK
kubectl kustomize "$work/all" > "$work/all.yaml"

echo "== schemas (Kubernetes $K8S_VERSION, strict)"
python3 - "$work/all.yaml" "$work/core.yaml" "$work/crds.yaml" <<'EOP'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
core = [d for d in docs if not d["apiVersion"].startswith("monitoring.coreos.com/")]
crds = [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
yaml.safe_dump_all(core, open(sys.argv[2], "w"))
yaml.safe_dump_all(crds, open(sys.argv[3], "w"))
print(f"{len(core)} core objects, {len(crds)} prometheus-operator objects")
EOP
kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$work/base.yaml"
kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$work/core.yaml"

echo "== restricted profile and deploy rules"
python3 deploy/check_manifests.py "$work/base.yaml" deploy/kubernetes/base/config/log-pattern.yaml
python3 deploy/check_manifests.py "$work/all.yaml" deploy/kubernetes/base/config/log-pattern.yaml
if python3 deploy/check_manifests.py deploy/testdata/not-restricted.yaml deploy/kubernetes/base/config/log-pattern.yaml > "$work/bad.txt"; then
  echo "check_manifests.py passed a pod that breaks the restricted profile" >&2; exit 1
fi
grep -q "hostNetwork" "$work/bad.txt" && grep -q "allowPrivilegeEscalation" "$work/bad.txt"

echo "== alerting rules"
promtool check rules deploy/monitoring/rules.yaml
(cd deploy/monitoring && promtool test rules rules_test.yaml)
python3 - "$work/crds.yaml" deploy/monitoring/rules.yaml "$work/rule-spec.yaml" <<'EOP'
import sys, yaml
crds = list(yaml.safe_load_all(open(sys.argv[1])))
rule = next(d for d in crds if d["kind"] == "PrometheusRule")
if rule["spec"] != yaml.safe_load(open(sys.argv[2])):
    sys.exit("PrometheusRule spec differs from deploy/monitoring/rules.yaml")
yaml.safe_dump(rule["spec"], open(sys.argv[3], "w"))
assert any(d["kind"] == "PodMonitor" for d in crds), "no PodMonitor"
EOP
promtool check rules "$work/rule-spec.yaml"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["panels"], "empty dashboard"' \
  deploy/kubernetes/components/grafana-dashboard/dashboard.json

if [ -f deploy/compose-check.sh ]; then
  echo "== docker-compose"
  bash deploy/compose-check.sh
fi
echo "deploy checks passed"
