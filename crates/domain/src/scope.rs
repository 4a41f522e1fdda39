//! Where in the estate a finding points: the cluster, a namespace, or a
//! workload (a Kubernetes owner), resolved from its labels by configurable
//! rules. Pure: an owner lookup (the Kubernetes API, cached) is injected.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The Kubernetes owner kind of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    /// Named by a label that does not say (`service`, `app`, `workload`).
    Unknown,
}

impl WorkloadKind {
    /// The owner kind named `kind` in an `ownerReference`, if it is a workload.
    pub fn from_owner_kind(kind: &str) -> Option<WorkloadKind> {
        Some(match kind {
            "Deployment" => WorkloadKind::Deployment,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "Job" => WorkloadKind::Job,
            "CronJob" => WorkloadKind::CronJob,
            _ => return None,
        })
    }
}

/// How a workload was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Resolution {
    /// A label names it.
    Label { label: String },
    /// A pod's owner references, read from the Kubernetes API.
    KubernetesApi,
    /// A pod's name, by the controllers' naming convention.
    PodNaming,
}

/// Where a finding or an incident points.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "snake_case")]
pub enum Scope {
    /// Nothing names a namespace or workload: the finding stands alone.
    Cluster,
    Namespace {
        namespace: String,
    },
    Workload {
        /// `None` when no label names it (a `service` label alone).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        name: String,
        kind: WorkloadKind,
        resolved_by: Resolution,
    },
}

impl Scope {
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Cluster => None,
            Scope::Namespace { namespace } => Some(namespace),
            Scope::Workload { namespace, .. } => namespace.as_deref(),
        }
    }

    pub fn workload(&self) -> Option<&str> {
        match self {
            Scope::Workload { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether findings at `self` and `other` tell one story: the same
    /// workload (namespaces equal, or one unknown), or the same namespace
    /// with one of them namespace-wide. Cluster scope meets nothing: such a
    /// finding stands alone.
    pub fn meets(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Cluster, _) | (_, Scope::Cluster) => false,
            (Scope::Namespace { namespace: a }, other)
            | (other, Scope::Namespace { namespace: a }) => other.namespace() == Some(a.as_str()),
            (
                Scope::Workload {
                    namespace: na,
                    name: a,
                    ..
                },
                Scope::Workload {
                    namespace: nb,
                    name: b,
                    ..
                },
            ) => a == b && (na.is_none() || nb.is_none() || na == nb),
        }
    }

    /// How a query for `namespace`/`workload` relates to this scope: the
    /// same workload, the same namespace, or neither (cluster-wide).
    pub fn matches(&self, namespace: Option<&str>, workload: Option<&str>) -> ScopeMatch {
        let namespace_agrees = match (namespace, self.namespace()) {
            (Some(q), Some(s)) => q == s,
            _ => true,
        };
        if let (Some(q), Some(s)) = (workload, self.workload())
            && q == s
            && namespace_agrees
        {
            return ScopeMatch::Workload;
        }
        match (namespace, self.namespace()) {
            (Some(q), Some(s)) if q == s => ScopeMatch::Namespace,
            _ => ScopeMatch::Cluster,
        }
    }

    /// The more specific of two scopes for the same story (an incident's
    /// scope as members join): a workload with a namespace beats one
    /// without, a workload beats a namespace.
    pub fn narrowest(self, other: &Scope) -> Scope {
        fn rank(scope: &Scope) -> u8 {
            match scope {
                Scope::Cluster => 0,
                Scope::Namespace { .. } => 1,
                Scope::Workload {
                    namespace: None, ..
                } => 2,
                Scope::Workload { .. } => 3,
            }
        }
        if rank(other) > rank(&self) {
            other.clone()
        } else {
            self
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Cluster => f.write_str("cluster"),
            Scope::Namespace { namespace } => write!(f, "{namespace}"),
            Scope::Workload {
                namespace: Some(namespace),
                name,
                ..
            } => write!(f, "{namespace}/{name}"),
            Scope::Workload { name, .. } => f.write_str(name),
        }
    }
}

/// Why a context item answers a query, most relevant first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeMatch {
    Workload,
    Namespace,
    Cluster,
}

/// Label names that place a finding, each list tried in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeRules {
    /// Labels naming the namespace.
    pub namespace_labels: Vec<String>,
    /// Labels naming the owning workload directly, before any pod is
    /// resolved (kube-state-metrics' `deployment`, `statefulset`, ...).
    pub owner_labels: Vec<String>,
    /// Labels naming a pod, resolved to its owner.
    pub pod_labels: Vec<String>,
    /// Labels naming a workload loosely, tried after the pod (`service`,
    /// `app`, `container`).
    pub workload_labels: Vec<String>,
}

impl Default for ScopeRules {
    fn default() -> Self {
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        ScopeRules {
            namespace_labels: names(&["namespace", "exported_namespace", "kubernetes_namespace"]),
            owner_labels: names(&[
                "deployment",
                "statefulset",
                "daemonset",
                "cronjob",
                "job_name",
                "workload",
            ]),
            pod_labels: names(&["pod", "pod_name"]),
            workload_labels: names(&["service", "app", "app_kubernetes_io_name", "container"]),
        }
    }
}

/// A pod's owning workload, as the Kubernetes API tells it.
pub trait OwnerLookup {
    /// `None`: not known here (no API, not cached yet, not found).
    fn owner(&self, namespace: &str, pod: &str) -> Option<(String, WorkloadKind)>;
}

/// No Kubernetes API: pods resolve by their names alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookup;

impl OwnerLookup for NoLookup {
    fn owner(&self, _: &str, _: &str) -> Option<(String, WorkloadKind)> {
        None
    }
}

fn first<'a>(
    labels: &'a BTreeMap<String, String>,
    names: &'a [String],
) -> Option<(&'a str, &'a str)> {
    names.iter().find_map(|name| {
        labels
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| (name.as_str(), v))
    })
}

fn owner_kind_of_label(label: &str) -> WorkloadKind {
    match label {
        "deployment" => WorkloadKind::Deployment,
        "statefulset" => WorkloadKind::StatefulSet,
        "daemonset" => WorkloadKind::DaemonSet,
        "cronjob" => WorkloadKind::CronJob,
        "job_name" => WorkloadKind::Job,
        _ => WorkloadKind::Unknown,
    }
}

/// The owner of `pod` by the controllers' naming convention: a Deployment's
/// pods are `<name>-<pod-template-hash>-<5 chars>`, a StatefulSet's
/// `<name>-<ordinal>`, a DaemonSet's or Job's `<name>-<5 chars>`.
pub fn owner_by_pod_name(pod: &str) -> Option<(String, WorkloadKind)> {
    // Kubernetes writes generated suffixes and hashes in its "safe"
    // alphabet (no vowels, no 0, 1 or 3), so words like "exporter" are not
    // taken for one.
    fn safe(part: &str) -> bool {
        part.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
    }
    fn suffix(part: &str) -> bool {
        part.len() == 5 && safe(part)
    }
    fn template_hash(part: &str) -> bool {
        (6..=10).contains(&part.len()) && safe(part)
    }
    let parts: Vec<&str> = pod.split('-').collect();
    match parts.as_slice() {
        [name @ .., hash, tail] if !name.is_empty() && template_hash(hash) && suffix(tail) => {
            Some((name.join("-"), WorkloadKind::Deployment))
        }
        [name @ .., ordinal]
            if !name.is_empty()
                && !ordinal.is_empty()
                && ordinal.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some((name.join("-"), WorkloadKind::StatefulSet))
        }
        [name @ .., tail] if !name.is_empty() && suffix(tail) => {
            Some((name.join("-"), WorkloadKind::Unknown))
        }
        _ => None,
    }
}

impl ScopeRules {
    /// The `(namespace, pod)` whose owner [`ScopeRules::resolve`] would ask
    /// the lookup for: a pod label with a namespace and no owner label.
    pub fn pod_to_look_up<'a>(
        &'a self,
        labels: &'a BTreeMap<String, String>,
    ) -> Option<(&'a str, &'a str)> {
        if first(labels, &self.owner_labels).is_some() {
            return None;
        }
        let (_, namespace) = first(labels, &self.namespace_labels)?;
        let (_, pod) = first(labels, &self.pod_labels)?;
        Some((namespace, pod))
    }

    /// The scope `labels` point at. Unknown or absent labels give the
    /// cluster scope: the finding stands alone, it is never dropped.
    pub fn resolve(&self, labels: &BTreeMap<String, String>, lookup: &impl OwnerLookup) -> Scope {
        let namespace = first(labels, &self.namespace_labels).map(|(_, v)| v.to_string());
        let by_label = |names: &[String]| {
            first(labels, names).map(|(label, name)| Scope::Workload {
                namespace: namespace.clone(),
                name: name.to_string(),
                kind: owner_kind_of_label(label),
                resolved_by: Resolution::Label {
                    label: label.to_string(),
                },
            })
        };
        if let Some(scope) = by_label(&self.owner_labels) {
            return scope;
        }
        if let Some((_, pod)) = first(labels, &self.pod_labels) {
            let from_api = namespace
                .as_deref()
                .and_then(|ns| lookup.owner(ns, pod))
                .map(|(name, kind)| (name, kind, Resolution::KubernetesApi));
            let resolved = from_api.or_else(|| {
                owner_by_pod_name(pod).map(|(name, kind)| (name, kind, Resolution::PodNaming))
            });
            if let Some((name, kind, resolved_by)) = resolved {
                return Scope::Workload {
                    namespace,
                    name,
                    kind,
                    resolved_by,
                };
            }
        }
        if let Some(scope) = by_label(&self.workload_labels) {
            return scope;
        }
        match namespace {
            Some(namespace) => Scope::Namespace { namespace },
            None => Scope::Cluster,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_resolve_in_rule_order() {
        let rules = ScopeRules::default();
        let scope = rules.resolve(
            &labels(&[
                ("namespace", "shop"),
                ("deployment", "checkout"),
                ("container", "app"),
            ]),
            &NoLookup,
        );
        assert_eq!(
            scope,
            Scope::Workload {
                namespace: Some("shop".into()),
                name: "checkout".into(),
                kind: WorkloadKind::Deployment,
                resolved_by: Resolution::Label {
                    label: "deployment".into()
                },
            }
        );
        assert_eq!(
            rules
                .resolve(&labels(&[("service", "checkout")]), &NoLookup)
                .workload(),
            Some("checkout")
        );
        assert_eq!(
            rules.resolve(
                &labels(&[("namespace", "shop"), ("mountpoint", "/")]),
                &NoLookup
            ),
            Scope::Namespace {
                namespace: "shop".into()
            }
        );
        assert_eq!(
            rules.resolve(&labels(&[("instance", "node-1")]), &NoLookup),
            Scope::Cluster
        );
        assert_eq!(
            rules.resolve(&labels(&[("namespace", " ")]), &NoLookup),
            Scope::Cluster
        );
    }

    #[test]
    fn only_pods_without_an_owner_label_are_looked_up() {
        let rules = ScopeRules::default();
        let pod = labels(&[("namespace", "shop"), ("pod", "api-0")]);
        assert_eq!(rules.pod_to_look_up(&pod), Some(("shop", "api-0")));
        let owned = labels(&[
            ("namespace", "shop"),
            ("pod", "api-0"),
            ("deployment", "api"),
        ]);
        assert_eq!(rules.pod_to_look_up(&owned), None);
        assert_eq!(rules.pod_to_look_up(&labels(&[("pod", "api-0")])), None);
    }

    #[test]
    fn pods_resolve_through_the_lookup_then_their_names() {
        struct Api;
        impl OwnerLookup for Api {
            fn owner(&self, ns: &str, pod: &str) -> Option<(String, WorkloadKind)> {
                (ns == "shop" && pod == "odd-name")
                    .then(|| ("cart".into(), WorkloadKind::StatefulSet))
            }
        }
        let rules = ScopeRules::default();
        let pod = |name: &str, lookup: &dyn Fn(&BTreeMap<String, String>) -> Scope| {
            lookup(&labels(&[
                ("namespace", "shop"),
                ("pod", name),
                ("container", "app"),
            ]))
        };
        let api = |l: &BTreeMap<String, String>| rules.resolve(l, &Api);
        match pod("odd-name", &api) {
            Scope::Workload {
                name,
                kind,
                resolved_by,
                ..
            } => {
                assert_eq!(
                    (name.as_str(), kind, resolved_by),
                    ("cart", WorkloadKind::StatefulSet, Resolution::KubernetesApi)
                );
            }
            other => panic!("{other:?}"),
        }
        match pod("checkout-7f9c6d8b4-x9k2p", &api) {
            Scope::Workload {
                name,
                kind,
                resolved_by,
                ..
            } => {
                assert_eq!(
                    (name.as_str(), kind, resolved_by),
                    ("checkout", WorkloadKind::Deployment, Resolution::PodNaming)
                );
            }
            other => panic!("{other:?}"),
        }
        // A pod name no convention explains falls to the looser labels.
        assert_eq!(pod("weird", &api).workload(), Some("app"));
        assert_eq!(
            owner_by_pod_name("redis-cart-2"),
            Some(("redis-cart".into(), WorkloadKind::StatefulSet))
        );
        assert_eq!(
            owner_by_pod_name("node-exporter-x7k2p"),
            Some(("node-exporter".into(), WorkloadKind::Unknown))
        );
        assert_eq!(owner_by_pod_name("single"), None);
    }

    #[test]
    fn scopes_meet_on_workload_or_namespace_wide() {
        let w = |ns: Option<&str>, name: &str| Scope::Workload {
            namespace: ns.map(Into::into),
            name: name.into(),
            kind: WorkloadKind::Unknown,
            resolved_by: Resolution::PodNaming,
        };
        let ns = |n: &str| Scope::Namespace {
            namespace: n.into(),
        };
        assert!(w(Some("shop"), "checkout").meets(&w(None, "checkout")));
        assert!(w(Some("shop"), "checkout").meets(&w(Some("shop"), "checkout")));
        assert!(!w(Some("shop"), "checkout").meets(&w(Some("other"), "checkout")));
        assert!(!w(Some("shop"), "checkout").meets(&w(Some("shop"), "email")));
        assert!(ns("shop").meets(&w(Some("shop"), "email")));
        assert!(!ns("shop").meets(&w(None, "email")));
        assert!(ns("shop").meets(&ns("shop")));
        assert!(!Scope::Cluster.meets(&Scope::Cluster));
        assert_eq!(
            w(Some("shop"), "checkout").matches(Some("shop"), Some("checkout")),
            ScopeMatch::Workload
        );
        assert_eq!(
            w(None, "checkout").matches(Some("shop"), Some("checkout")),
            ScopeMatch::Workload
        );
        assert_eq!(
            w(Some("shop"), "email").matches(Some("shop"), Some("checkout")),
            ScopeMatch::Namespace
        );
        assert_eq!(
            Scope::Cluster.matches(Some("shop"), None),
            ScopeMatch::Cluster
        );
    }
}
