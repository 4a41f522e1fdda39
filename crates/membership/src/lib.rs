//! Which share of a sensor's work this replica owns, kept current.
//!
//! With `shard: {index, count}` the share is fixed. With
//! `shard: {statefulset: {}}` the replica reads its own StatefulSet's
//! `spec.replicas` from the Kubernetes API every `refresh` and takes its index
//! from its pod's ordinal, so `kubectl scale` is the only step: after a change
//! settles, every replica sees the same count and rendezvous hashing
//! ([`Shard::owner`]) gives each item exactly one live owner. A pod being
//! scaled away (ordinal ≥ replicas) owns nothing.
//!
//! Until the first read succeeds the replica owns nothing (no item is then
//! watched twice; readers see [`Membership::current`] = `None` and say so).
//! A failed read keeps the last known share and is logged and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use inspector_runtime::shard::{MAX_REPLICAS, pod_ordinal};
use inspector_runtime::{Shard, ShardConfig, StatefulSetShard};
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Where the service account's namespace is mounted in a pod.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Why membership could not be set up; each names the config field to fix.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("shard.statefulset.pod: not set and POD_NAME is not in the environment")]
    NoPodName,
    #[error("shard.statefulset.pod: {pod:?} does not end in -<ordinal>")]
    NoOrdinal { pod: String },
    #[error(
        "shard.statefulset.namespace: not set, POD_NAMESPACE is not in the environment and {NAMESPACE_FILE} is unreadable"
    )]
    NoNamespace(#[source] std::io::Error),
    #[error("shard.statefulset.api_url {url:?} is not a URL")]
    ApiUrl {
        url: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    #[error("kubernetes client for shard.statefulset")]
    Client(#[source] kube::Error),
}

/// The StatefulSet a replica follows, resolved from config and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub namespace: String,
    pub index: u32,
}

/// Resolves `set` against the environment (`POD_NAME`, `POD_NAMESPACE`, the
/// service account namespace file).
pub fn resolve(
    set: &StatefulSetShard,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Resolved, MembershipError> {
    let pod = set
        .pod
        .clone()
        .or_else(|| env("POD_NAME"))
        .ok_or(MembershipError::NoPodName)?;
    let index = pod_ordinal(&pod).ok_or_else(|| MembershipError::NoOrdinal { pod: pod.clone() })?;
    let name = match &set.name {
        Some(name) => name.clone(),
        None => pod
            .rsplit_once('-')
            .map(|(name, _)| name.to_string())
            .ok_or_else(|| MembershipError::NoOrdinal { pod: pod.clone() })?,
    };
    let namespace = match set.namespace.clone().or_else(|| env("POD_NAMESPACE")) {
        Some(namespace) => namespace,
        None => std::fs::read_to_string(NAMESPACE_FILE)
            .map(|s| s.trim().to_string())
            .map_err(MembershipError::NoNamespace)?,
    };
    Ok(Resolved {
        name,
        namespace,
        index,
    })
}

/// A replica's current share of the work; clone freely.
#[derive(Debug, Clone)]
pub struct Membership {
    current: watch::Receiver<Option<Shard>>,
    lookup_errors: Arc<AtomicU64>,
}

impl Membership {
    /// A share that never changes.
    pub fn fixed(shard: Shard) -> Self {
        let (_, current) = watch::channel(Some(shard));
        Membership {
            current,
            lookup_errors: Arc::default(),
        }
    }

    /// Starts following `config`: fixed shares return at once; a StatefulSet
    /// share spawns a task that reads `spec.replicas` every `refresh` until
    /// `shutdown`.
    pub async fn start(
        config: &ShardConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, MembershipError> {
        match config {
            ShardConfig::Static(shard) => Ok(Membership::fixed(*shard)),
            ShardConfig::StatefulSet(set) => {
                let resolved = resolve(set, |key| std::env::var(key).ok())?;
                let client = match &set.api_url {
                    Some(url) => {
                        let config = api_config(url).map_err(|source| MembershipError::ApiUrl {
                            url: inspector_domain::redact_url(url),
                            source,
                        })?;
                        kube::Client::try_from(config).map_err(MembershipError::Client)?
                    }
                    None => kube::Client::try_default()
                        .await
                        .map_err(MembershipError::Client)?,
                };
                Ok(Membership::follow(client, resolved, set.refresh, shutdown))
            }
        }
    }

    /// Follows `resolved`'s StatefulSet through `client` (tests pass a client
    /// for a stand-in API server).
    pub fn follow(
        client: kube::Client,
        resolved: Resolved,
        refresh: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let (sender, current) = watch::channel(None);
        let lookup_errors = Arc::new(AtomicU64::new(0));
        let errors = lookup_errors.clone();
        tokio::spawn(async move {
            let api: Api<StatefulSet> = Api::namespaced(client, &resolved.namespace);
            let mut ticker = tokio::time::interval(refresh);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                // A hung API server costs one refresh, not the follower.
                let read = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    read = tokio::time::timeout(refresh.max(Duration::from_secs(5)), api.get(&resolved.name)) => read,
                };
                let read = match read {
                    Ok(read) => read,
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(statefulset = %resolved.name, "reading the StatefulSet timed out; keeping the last known share");
                        continue;
                    }
                };
                match read {
                    Ok(set) => {
                        // `spec.replicas` defaults to 1 when unset.
                        let count = set
                            .spec
                            .and_then(|spec| spec.replicas)
                            .map_or(1, |n| u32::try_from(n).unwrap_or(0));
                        if count > MAX_REPLICAS {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                replicas = count,
                                max = MAX_REPLICAS,
                                "StatefulSet replicas beyond what sharding supports; keeping the last known share"
                            );
                            continue;
                        }
                        let shard = Shard {
                            index: resolved.index,
                            count,
                        };
                        sender.send_if_modified(|known| {
                            if *known == Some(shard) {
                                return false;
                            }
                            tracing::info!(
                                statefulset = %resolved.name,
                                index = shard.index,
                                replicas = shard.count,
                                "shard membership changed"
                            );
                            *known = Some(shard);
                            true
                        });
                    }
                    Err(error) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            statefulset = %resolved.name,
                            namespace = %resolved.namespace,
                            error = &error as &dyn std::error::Error,
                            "reading the StatefulSet's replicas failed; keeping the last known share"
                        );
                    }
                }
            }
        });
        Membership {
            current,
            lookup_errors,
        }
    }

    /// The share as last known; `None` until the first successful read.
    pub fn current(&self) -> Option<Shard> {
        *self.current.borrow()
    }

    /// Whether this replica owns `item` now (nothing while unknown).
    pub fn owns(&self, item: &str) -> bool {
        self.current().is_some_and(|shard| shard.owns(item))
    }

    /// Failed reads of the StatefulSet so far.
    pub fn lookup_errors(&self) -> u64 {
        self.lookup_errors.load(Ordering::Relaxed)
    }

    /// Waits until the share is known (or changes); for start-up and tests.
    pub async fn changed(&mut self) -> bool {
        self.current.changed().await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> StatefulSetShard {
        StatefulSetShard {
            pod: None,
            name: None,
            namespace: None,
            refresh: Duration::from_secs(10),
            api_url: None,
        }
    }

    #[test]
    fn resolves_from_the_pod_name() {
        let env = |key: &str| match key {
            "POD_NAME" => Some("trend-predictor-2".to_string()),
            "POD_NAMESPACE" => Some("inspector".to_string()),
            _ => None,
        };
        assert_eq!(
            resolve(&set(), env).unwrap(),
            Resolved {
                name: "trend-predictor".into(),
                namespace: "inspector".into(),
                index: 2
            }
        );
    }

    #[test]
    fn explains_what_is_missing() {
        let err = resolve(&set(), |_| None).unwrap_err();
        assert!(err.to_string().contains("POD_NAME"), "{err}");
        let err = resolve(&set(), |key| (key == "POD_NAME").then(|| "lonely".into())).unwrap_err();
        assert!(err.to_string().contains("ordinal"), "{err}");
    }

    #[test]
    fn fixed_membership_owns_its_share() {
        let whole = Membership::fixed(Shard::default());
        assert!(whole.owns("anything"));
        let gone = Membership::fixed(Shard { index: 3, count: 3 });
        assert!(!gone.owns("anything"));
    }
}

/// A client config for the API server at `url` (an `api_url` setting:
/// `kubectl proxy`, tests). Credentials written into the URL
/// (`https://user:pass@host`) become basic-auth credentials instead: the
/// client logs the URL of every request, and they must not be in it.
pub fn api_config(url: &str) -> Result<kube::Config, http::uri::InvalidUri> {
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (bare, credentials) = match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rsplit_once('@') {
                Some((userinfo, host)) => {
                    let (user, password) = match userinfo.split_once(':') {
                        Some((user, password)) => (decode(user), Some(decode(password))),
                        None => (decode(userinfo), None),
                    };
                    (
                        format!("{scheme}://{host}{}", &rest[authority_end..]),
                        Some((user, password)),
                    )
                }
                None => (url.to_string(), None),
            }
        }
        None => (url.to_string(), None),
    };
    let mut config = kube::Config::new(bare.parse()?);
    if let Some((user, password)) = credentials {
        config.auth_info.username = Some(user);
        config.auth_info.password = password.map(secrecy::SecretString::from);
    }
    Ok(config)
}

#[cfg(test)]
mod api_url_tests {
    use secrecy::ExposeSecret;

    #[test]
    fn credentials_leave_the_api_url() {
        let config = super::api_config("https://ops:p%40ss@api.local:6443/base").unwrap();
        assert_eq!(
            config.cluster_url.to_string(),
            "https://api.local:6443/base"
        );
        assert_eq!(config.auth_info.username.as_deref(), Some("ops"));
        let password = config
            .auth_info
            .password
            .as_ref()
            .map(|p| p.expose_secret().to_string());
        assert_eq!(password.as_deref(), Some("p@ss"));
        let plain = super::api_config("http://127.0.0.1:8001").unwrap();
        assert!(plain.auth_info.username.is_none());
    }
}
