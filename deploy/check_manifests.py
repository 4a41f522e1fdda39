#!/usr/bin/env python3
"""Checks rendered Kubernetes manifests (a multi-document YAML file) against
Pod Security "restricted" and the project's own deploy rules. Exits 1 naming
every violation. Used by deploy/test.sh; schemas are checked there too.

usage: check_manifests.py RENDERED.yaml LOG_PATTERN_CONFIG.yaml
"""
import sys

import yaml

# Pod Security Standards, restricted profile (v1.25+): allowed volume types.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}
POD_OWNERS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def pod_spec(obj):
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] in POD_OWNERS:
        return obj["spec"]["template"]["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def check_pod(name, spec, problems):
    pod_sc = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{name}: {flag} is not allowed")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"{name}: volume {volume['name']} of type {kinds} is not allowed")
    containers = (spec.get("initContainers") or []) + spec["containers"]
    for c in containers:
        where = f"{name}/{c['name']}"
        sc = c.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"{where}: runAsNonRoot must be true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{where}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{where}: capabilities.drop must contain ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: capabilities.add beyond NET_BIND_SERVICE")
        # The project's own rules beyond the profile.
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem must be true")
        if not c.get("livenessProbe") or not c.get("readinessProbe"):
            problems.append(f"{where}: needs liveness and readiness probes")
        if not (c.get("resources") or {}).get("limits", {}).get("memory"):
            problems.append(f"{where}: needs a memory limit")


def main(rendered, log_pattern_config):
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    problems = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    def ns(obj):
        return obj["metadata"].get("namespace", "")

    # Service accounts that some (Cluster)RoleBinding grants anything.
    bound = set()
    for rb in by_kind.get("RoleBinding", []) + by_kind.get("ClusterRoleBinding", []):
        for s in rb.get("subjects") or []:
            if s["kind"] == "ServiceAccount":
                bound.add((s.get("namespace", ns(rb)), s["name"]))
    accounts = {(ns(sa), sa["metadata"]["name"]) for sa in by_kind.get("ServiceAccount", [])}
    for who in bound:
        if who not in accounts and who[0] == "proactive-inspector":
            problems.append(f"binding names missing service account {who}")

    services = {(ns(s), s["metadata"]["name"]): s for s in by_kind.get("Service", [])}
    pdb_selectors = [(ns(p), p["spec"]["selector"]["matchLabels"]) for p in by_kind.get("PodDisruptionBudget", [])]
    for kind in POD_OWNERS | {"Pod", "CronJob"}:
        for obj in by_kind.get(kind, []):
            name = f"{kind}/{obj['metadata']['name']}"
            spec = pod_spec(obj)
            check_pod(name, spec, problems)
            sa = spec.get("serviceAccountName", "default")
            token = spec.get("automountServiceAccountToken", True)
            if token and (ns(obj), sa) not in bound:
                problems.append(f"{name}: mounts a service-account token but {sa} is granted nothing")
            if kind == "StatefulSet":
                gov = services.get((ns(obj), obj["spec"].get("serviceName")))
                if gov is None or gov["spec"].get("clusterIP") != "None":
                    problems.append(f"{name}: serviceName has no headless Service")
                if obj["spec"].get("volumeClaimTemplates") and not (spec.get("securityContext") or {}).get("fsGroup"):
                    problems.append(f"{name}: volumes need fsGroup for the non-root user")
            labels = obj["spec"]["selector"]["matchLabels"] if kind != "Pod" else obj["metadata"]["labels"]
            if kind in ("Deployment", "StatefulSet") and not any(
                n == ns(obj) and sel.items() <= labels.items() for n, sel in pdb_selectors
            ):
                problems.append(f"{name}: no PodDisruptionBudget")

    # log-pattern's read access matches the namespaces its config watches.
    config = yaml.safe_load(open(log_pattern_config))
    watched = set(config["source"].get("namespaces") or [])
    granted = {
        ns(rb) for rb in by_kind.get("RoleBinding", [])
        if any(s["name"] == "log-pattern" for s in rb.get("subjects") or [])
        and rb["roleRef"]["name"] == "inspector-log-pattern"
    }
    if watched != granted:
        problems.append(f"log-pattern watches {sorted(watched)} but may read pods in {sorted(granted)}")
    for role in by_kind.get("Role", []) + by_kind.get("ClusterRole", []):
        for rule in role.get("rules") or []:
            if set(rule.get("verbs") or []) & {"*", "create", "update", "patch", "delete", "deletecollection"}:
                problems.append(f"Role/{role['metadata']['name']}: writes are never needed")

    for p in problems:
        print(f"FAIL {p}")
    print(f"checked {len(docs)} objects: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
