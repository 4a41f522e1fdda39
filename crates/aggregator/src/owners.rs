//! Pod → owner lookups through the Kubernetes API, for scoping findings
//! whose labels name a pod: the pod's controller owner, followed one step
//! further where Kubernetes nests them (ReplicaSet → Deployment, Job →
//! CronJob).
//!
//! Intake asks for a batch's missing pods at once ([`Owners::prepare`],
//! concurrently with the dedup round) and waits at most
//! `incidents.owners.timeout`; the core then reads the cache synchronously
//! through [`OwnerLookup`]. A lookup that fails or is forbidden opens a
//! pause of `retry_after` during which nothing is asked: with the API down
//! or forbidden, intake never waits on it, scopes fall back to pod naming,
//! and `inspector_aggregator_owner_lookups_total{outcome}` counts why.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use inspector_domain::scope::{OwnerLookup, WorkloadKind};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Api;
use lru::LruCache;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::time::Instant;

use crate::config::{OwnerApi, OwnersConfig};

/// Most lookups in flight at once.
const CONCURRENCY: usize = 16;

/// Most pods one batch asks for; the rest wait for a later batch.
const MAX_PER_BATCH: usize = 64;

/// How a lookup ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// The owner is known.
    Resolved,
    /// No such pod, or a pod no controller owns.
    NotFound,
    /// The API refused us (401/403): RBAC is missing.
    Forbidden,
    /// The API failed or did not answer in time.
    Error,
    /// Not asked: the API failed recently.
    Skipped,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Resolved,
        Outcome::NotFound,
        Outcome::Forbidden,
        Outcome::Error,
        Outcome::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Resolved => "resolved",
            Outcome::NotFound => "not_found",
            Outcome::Forbidden => "forbidden",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Label of `inspector_aggregator_owner_lookups_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

type Key = (String, String);
type Owner = Option<(String, WorkloadKind)>;

#[derive(Debug)]
struct Cached {
    owner: Owner,
    expires: Instant,
}

struct Inner {
    client: kube::Client,
    config: OwnersConfig,
    cache: Mutex<LruCache<Key, Cached>>,
    paused_until: Mutex<Option<Instant>>,
    counts: Family<OutcomeLabels, Counter>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owners")
            .field("config", &self.config)
            .field("cached", &lock(&self.cache).len())
            .finish_non_exhaustive()
    }
}

/// The owner cache and the API behind it; [`Owners::none`] answers nothing.
#[derive(Debug, Clone)]
pub struct Owners {
    inner: Option<Arc<Inner>>,
}

/// Why lookups could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OwnersError {
    #[error("incidents.owners.api.url {url:?} is not a URL")]
    Url {
        url: String,
        #[source]
        source: http::uri::InvalidUri,
    },
    #[error("kubernetes client for owner lookups")]
    Client(#[source] kube::Error),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Owners {
    /// No API: every pod resolves by its name.
    pub fn none() -> Self {
        Owners { inner: None }
    }

    /// Lookups as `config` says; `auto` with no cluster config found gives
    /// [`Owners::none`] (logged), a bad URL an error.
    pub async fn connect(
        config: &OwnersConfig,
        counts: Family<OutcomeLabels, Counter>,
    ) -> Result<Self, OwnersError> {
        let client = match &config.api {
            OwnerApi::Off => return Ok(Owners::none()),
            OwnerApi::Auto => match kube::Client::try_default().await {
                Ok(client) => client,
                Err(error) => {
                    tracing::info!(
                        error = &error as &dyn std::error::Error,
                        "no Kubernetes config found: pods resolve to owners by their names"
                    );
                    return Ok(Owners::none());
                }
            },
            OwnerApi::Url(url) => {
                let config =
                    inspector_membership::api_config(url).map_err(|source| OwnersError::Url {
                        url: inspector_domain::redact_url(url),
                        source,
                    })?;
                kube::Client::try_from(config).map_err(OwnersError::Client)?
            }
        };
        Ok(Owners::with_client(client, config.clone(), counts))
    }

    /// Lookups through `client`.
    pub fn with_client(
        client: kube::Client,
        config: OwnersConfig,
        counts: Family<OutcomeLabels, Counter>,
    ) -> Self {
        let capacity = NonZeroUsize::new(config.capacity).unwrap_or(NonZeroUsize::MIN);
        Owners {
            inner: Some(Arc::new(Inner {
                client,
                config,
                cache: Mutex::new(LruCache::new(capacity)),
                paused_until: Mutex::new(None),
                counts,
            })),
        }
    }

    /// Looks up the pods of `wanted` that are not cached (or expired),
    /// waiting at most the configured timeout; lookups still running then
    /// finish in the background and fill the cache for later batches.
    pub async fn prepare<'a>(&self, wanted: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let Some(inner) = &self.inner else {
            return;
        };
        let now = Instant::now();
        let missing: BTreeSet<Key> = {
            let mut cache = lock(&inner.cache);
            wanted
                .into_iter()
                .filter(|key| {
                    let key = (key.0.to_string(), key.1.to_string());
                    cache.get(&key).is_none_or(|c| c.expires <= now)
                })
                .map(|(ns, pod)| (ns.to_string(), pod.to_string()))
                .take(MAX_PER_BATCH)
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        if lock(&inner.paused_until).is_some_and(|until| until > now) {
            inner.count(Outcome::Skipped, missing.len() as u64);
            return;
        }
        let deadline = now + inner.config.timeout;
        let inner = inner.clone();
        let lookups = tokio::spawn(async move {
            futures::stream::iter(missing)
                .map(|key| {
                    let inner = inner.clone();
                    async move { inner.look_up(key).await }
                })
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<()>>()
                .await;
        });
        // Past the deadline the task runs on alone; its results still land.
        let _ = tokio::time::timeout_at(deadline, lookups).await;
    }
}

impl Inner {
    fn count(&self, outcome: Outcome, by: u64) {
        self.counts
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc_by(by);
    }

    async fn look_up(&self, key: Key) {
        let asked = tokio::time::timeout(
            self.config.timeout.max(Duration::from_secs(2)),
            owner_of(&self.client, &key.0, &key.1),
        )
        .await;
        let (outcome, owner) = match asked {
            Ok(Ok(Some(owner))) => (Outcome::Resolved, Some(owner)),
            Ok(Ok(None)) => (Outcome::NotFound, None),
            Ok(Err(kube::Error::Api(status))) if status.code == 401 || status.code == 403 => {
                (Outcome::Forbidden, None)
            }
            Ok(Err(error)) => {
                tracing::debug!(
                    error = &error as &dyn std::error::Error,
                    "owner lookup failed"
                );
                (Outcome::Error, None)
            }
            Err(_) => (Outcome::Error, None),
        };
        self.count(outcome, 1);
        let now = Instant::now();
        match outcome {
            Outcome::Resolved | Outcome::NotFound => {
                let ttl = if owner.is_some() {
                    self.config.ttl
                } else {
                    self.config.negative_ttl
                };
                lock(&self.cache).put(
                    key,
                    Cached {
                        owner,
                        expires: now + ttl,
                    },
                );
            }
            Outcome::Forbidden | Outcome::Error | Outcome::Skipped => {
                let mut paused = lock(&self.paused_until);
                if paused.is_none_or(|until| until <= now) {
                    tracing::warn!(
                        outcome = outcome.as_str(),
                        pause = ?self.config.retry_after,
                        "Kubernetes owner lookups failing; pods resolve by their names meanwhile"
                    );
                }
                *paused = Some(now + self.config.retry_after);
            }
        }
    }
}

impl OwnerLookup for Owners {
    fn owner(&self, namespace: &str, pod: &str) -> Option<(String, WorkloadKind)> {
        let inner = self.inner.as_ref()?;
        let key = (namespace.to_string(), pod.to_string());
        let mut cache = lock(&inner.cache);
        cache
            .get(&key)
            .filter(|cached| cached.expires > Instant::now())
            .and_then(|cached| cached.owner.clone())
    }
}

fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_deref()?
        .iter()
        .find(|owner| owner.controller == Some(true))
}

fn kind_of(kind: &str) -> WorkloadKind {
    match kind {
        "Deployment" => WorkloadKind::Deployment,
        "StatefulSet" => WorkloadKind::StatefulSet,
        "DaemonSet" => WorkloadKind::DaemonSet,
        "Job" => WorkloadKind::Job,
        "CronJob" => WorkloadKind::CronJob,
        _ => WorkloadKind::Unknown,
    }
}

/// The workload owning `pod`: its controller, or that controller's own
/// controller where one manages the other.
async fn owner_of(client: &kube::Client, namespace: &str, pod: &str) -> Result<Owner, kube::Error> {
    let Some(pod) = Api::<Pod>::namespaced(client.clone(), namespace)
        .get_opt(pod)
        .await?
    else {
        return Ok(None);
    };
    let Some(owner) = controller(&pod.metadata) else {
        return Ok(None);
    };
    let parent = match owner.kind.as_str() {
        "ReplicaSet" => Api::<ReplicaSet>::namespaced(client.clone(), namespace)
            .get_opt(&owner.name)
            .await?
            .and_then(|rs| controller(&rs.metadata).cloned()),
        "Job" => Api::<Job>::namespaced(client.clone(), namespace)
            .get_opt(&owner.name)
            .await?
            .and_then(|job| controller(&job.metadata).cloned()),
        _ => None,
    };
    let owner = parent.as_ref().unwrap_or(owner);
    Ok(Some((owner.name.clone(), kind_of(&owner.kind))))
}
