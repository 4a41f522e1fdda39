//! Deduplication of findings: the same key (kind + metric/pattern + labels)
//! inside the TTL is one finding.
//!
//! The shared store is Redis: one atomic `SET <prefix>:dedup:<key> <finding id>
//! NX EX <ttl>` per finding, so aggregator replicas agree without locks. The
//! stored value is the id of the finding that claimed the key, which tells a
//! JetStream *redelivery* of that same finding (after a crash, before its
//! acknowledgement) from a true duplicate.
//!
//! When Redis does not answer, an in-process map takes over and the report
//! says so (`dedup_degraded`). The map also shadows every Redis decision, so
//! keys claimed just before Redis went away are still known, and a Redis
//! that comes back empty (restarted, failed over to a replica that had not
//! caught up) cannot make a claim of this window new again: when Redis says
//! "new" but this process saw another finding claim the key inside the TTL,
//! it is a duplicate.
//!
//! A Redis that fails is not asked again for [`CIRCUIT_COOLDOWN`]: a hung
//! Redis costs one timeout per cool-down, not one per finding, so intake
//! keeps its pace on the in-process map meanwhile.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::config::RedisConfig;

/// What the dedup store says about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First time this key is seen inside the TTL.
    New,
    /// This very finding (same id) claimed the key before: a redelivery.
    Redelivery,
    /// Another finding with the same key was reported inside the TTL.
    Duplicate,
}

/// How long Redis is left alone after it failed.
pub const CIRCUIT_COOLDOWN: Duration = Duration::from_secs(5);

/// The dedup store (Redis with an in-process fallback).
pub struct Deduplicator {
    redis: Option<RedisConnection>,
    key_prefix: String,
    ttl: Duration,
    timeout: Duration,
    local: HashMap<String, (String, DateTime<Utc>)>,
    /// Why Redis was not used at least once since the last report, if so.
    degraded: Option<String>,
    /// Redis is not asked before this (after a failure), with the failure.
    open_until: Option<(tokio::time::Instant, String)>,
    /// Checks that asked Redis since the last report.
    asked: u64,
    /// Claims Redis had forgotten, since the last report.
    forgotten: u64,
    /// Redis refuses our credentials: a config problem, not an outage.
    refused: Option<String>,
    /// Claims restored at start from the alerts stream, until reported.
    restored: Option<usize>,
}

impl std::fmt::Debug for Deduplicator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deduplicator")
            .field("redis", &self.redis.is_some())
            .field("ttl", &self.ttl)
            .field("local_keys", &self.local.len())
            .field("degraded", &self.degraded)
            .finish()
    }
}

/// A connection to one Redis server or to a Redis Cluster; both connect
/// lazily and reconnect by themselves, so a Redis that is down at start-up
/// or fails over later is a degraded report, not a dead aggregator.
#[derive(Clone)]
pub enum RedisConnection {
    Single(ConnectionManager),
    /// Follows slot moves and failovers of the cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConnection::Single(_) => "RedisConnection::Single",
            RedisConnection::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(c) => c.req_packed_command(cmd),
            RedisConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(c) => c.get_db(),
            RedisConnection::Cluster(c) => c.get_db(),
        }
    }
}

/// Why the Redis connection could not be set up (a config error).
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("redis.url is not a Redis URL")]
    Url(#[source] redis::RedisError),
    #[error("redis.cluster is not a list of Redis URLs")]
    Cluster(#[source] redis::RedisError),
    #[error("redis connection set-up")]
    Connection(#[source] redis::RedisError),
    #[error("{field} {}: unreadable", path.display())]
    TlsFile {
        field: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The CA and client certificate of `redis.tls`, read from their files.
fn tls_certificates(config: &RedisConfig) -> Result<redis::TlsCertificates, RedisSetupError> {
    let read = |field: &'static str, path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|source| RedisSetupError::TlsFile {
            field,
            path: path.clone(),
            source,
        })
    };
    let tls = &config.tls;
    let root_cert = tls
        .ca_file
        .as_ref()
        .map(|path| read("redis.tls.ca_file", path))
        .transpose()?;
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read("redis.tls.cert_file", cert)?,
            client_key: read("redis.tls.key_file", key)?,
        }),
        _ => None,
    };
    Ok(redis::TlsCertificates {
        client_tls,
        root_cert,
    })
}

/// Builds a lazily connecting, self-reconnecting connection to the server
/// (`redis.url`) or cluster (`redis.cluster`) of `config`.
pub fn redis_connection(config: &RedisConfig) -> Result<RedisConnection, RedisSetupError> {
    if !config.cluster.is_empty() {
        let mut builder =
            redis::cluster::ClusterClientBuilder::new(config.cluster.iter().map(String::as_str))
                .connection_timeout(config.timeout)
                .response_timeout(config.timeout)
                .retries(2);
        if config.tls.is_set() {
            builder = builder.certs(tls_certificates(config)?);
        }
        let client = builder.build().map_err(RedisSetupError::Cluster)?;
        let cluster = client.get_pending_async_connection_with_config(
            redis::cluster::ClusterConfig::new()
                .set_connection_timeout(config.timeout)
                .set_response_timeout(config.timeout),
        );
        return Ok(RedisConnection::Cluster(cluster));
    }
    let client = if config.tls.is_set() {
        redis::Client::build_with_tls(config.url.as_str(), tls_certificates(config)?)
            .map_err(RedisSetupError::Url)?
    } else {
        redis::Client::open(config.url.as_str()).map_err(RedisSetupError::Url)?
    };
    let manager_config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(config.timeout))
        .set_connection_timeout(Some(config.timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2));
    ConnectionManager::new_lazy_with_config(client, manager_config)
        .map(RedisConnection::Single)
        .map_err(RedisSetupError::Connection)
}

impl Deduplicator {
    /// `redis: None` runs in-process only (the demo) and says so in reports.
    pub fn new(redis: Option<RedisConnection>, config: &RedisConfig, ttl: Duration) -> Self {
        Deduplicator {
            degraded: None,
            open_until: None,
            asked: 0,
            forgotten: 0,
            refused: None,
            redis,
            key_prefix: config.key_prefix.clone(),
            ttl,
            timeout: config.timeout,
            local: HashMap::new(),
            restored: None,
        }
    }

    /// Takes claims made before this process started (read back from the
    /// alerts stream when Redis came back empty): `(key, finding id, when
    /// claimed)`. Each holds for the TTL from its claim, as if this process
    /// had made it, so a Redis that forgot it cannot make it new again.
    pub fn restore_claims(
        &mut self,
        claims: impl IntoIterator<Item = (String, String, DateTime<Utc>)>,
    ) {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::minutes(30));
        let mut restored = 0;
        for (key, finding_id, claimed_at) in claims {
            let expires = claimed_at + ttl;
            let newer = self
                .local
                .get(&key)
                .is_none_or(|(_, known)| *known < expires);
            if newer {
                self.local.insert(key, (finding_id, expires));
                restored += 1;
            }
        }
        self.restored = (restored > 0).then_some(restored);
    }

    /// Atomically claims `key` for `finding_id` unless already claimed in the TTL.
    pub async fn check(&mut self, key: &str, finding_id: &str, now: DateTime<Utc>) -> Verdict {
        self.check_many(&[(key, finding_id)], now).await[0]
    }

    /// Claims each `(key, finding_id)` in order, as [`Deduplicator::check`]
    /// would one after the other, but in one round of concurrent requests:
    /// the connection pipelines them, so a batch costs about one round trip
    /// (two when some keys were already claimed), not one per finding.
    pub async fn check_many(
        &mut self,
        claims: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Vec<Verdict> {
        let local: Vec<Verdict> = claims
            .iter()
            .map(|(key, id)| self.check_local(key, id, now))
            .collect();
        if claims.is_empty() {
            return local;
        }
        if let Some((until, reason)) = &self.open_until {
            if tokio::time::Instant::now() < *until {
                let reason = format!("{reason}; not asked again for up to {CIRCUIT_COOLDOWN:?}");
                return self.fall_back(reason, local);
            }
            self.open_until = None;
        }
        let Some(redis) = self.redis.as_ref() else {
            return local;
        };
        self.asked += claims.len() as u64;
        let ttl = self.ttl.as_secs().max(1);
        let prefix = &self.key_prefix;
        let attempts = claims.iter().map(|(key, finding_id)| {
            let mut redis = redis.clone();
            let redis_key = format!("{prefix}:dedup:{key}");
            async move {
                let claimed: Option<String> = redis::cmd("SET")
                    .arg(&redis_key)
                    .arg(*finding_id)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl)
                    .query_async(&mut redis)
                    .await?;
                if claimed.is_some() {
                    return Ok(Verdict::New);
                }
                let owner: Option<String> = redis::cmd("GET")
                    .arg(&redis_key)
                    .query_async(&mut redis)
                    .await?;
                Ok::<_, redis::RedisError>(match owner {
                    Some(owner) if owner == *finding_id => Verdict::Redelivery,
                    Some(_) => Verdict::Duplicate,
                    // Expired between the two commands: the key is free again.
                    None => Verdict::New,
                })
            }
        });
        // The connection's own timeouts bound each command; this bounds the batch.
        let answers =
            tokio::time::timeout(self.timeout * 3, futures::future::join_all(attempts)).await;
        let answers = match answers {
            Ok(answers) => answers,
            Err(_) => {
                let reason = format!("redis did not answer within {:?}", self.timeout * 3);
                self.open_circuit(reason.clone());
                return self.fall_back(reason, local);
            }
        };
        if let Some(error) = answers.iter().find_map(|answer| answer.as_ref().err()) {
            let reason = format!(
                "redis unreachable: {}",
                inspector_runtime::error_chain(error)
            );
            self.open_circuit(reason.clone());
            return self.fall_back(reason, local);
        }
        self.refused = None;
        answers
            .into_iter()
            .zip(local)
            .map(|(answer, local)| match answer {
                // Redis forgot a claim this process saw made: keep the duplicate.
                Ok(Verdict::New) if local == Verdict::Duplicate => {
                    self.forgotten += 1;
                    Verdict::Duplicate
                }
                Ok(verdict) => verdict,
                Err(_) => local,
            })
            .collect()
    }

    /// Why Redis refuses this aggregator (wrong password or ACL), if it
    /// does: readiness fails with it.
    pub fn refused(&self) -> Option<String> {
        self.refused.clone()
    }

    fn open_circuit(&mut self, reason: String) {
        let lower = reason.to_lowercase();
        self.refused = ["wrongpass", "noauth", "authentication", "noperm"]
            .iter()
            .any(|word| lower.contains(word))
            .then(|| reason.clone());
        self.open_until = Some((tokio::time::Instant::now() + CIRCUIT_COOLDOWN, reason));
    }

    /// Asks Redis whether it answers (PING), when no check asked it since
    /// the last report, so a quiet window still says whether dedup works
    /// (a wrong password shows up here, not only when findings arrive).
    pub async fn probe(&mut self) {
        if self.asked > 0 || self.degraded.is_some() {
            return;
        }
        let Some(redis) = self.redis.as_mut() else {
            return;
        };
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(redis);
        let reason = match tokio::time::timeout(self.timeout * 3, ping).await {
            Ok(Ok(_)) => {
                self.refused = None;
                return;
            }
            Ok(Err(error)) => format!(
                "redis unreachable: {}",
                inspector_runtime::error_chain(&error)
            ),
            Err(_) => format!("redis did not answer within {:?}", self.timeout * 3),
        };
        self.open_circuit(reason.clone());
        if self.degraded.is_none() {
            tracing::error!(%reason, "dedup falls back to in-process memory");
        }
        self.degraded = Some(reason);
    }

    fn fall_back(&mut self, reason: String, local: Vec<Verdict>) -> Vec<Verdict> {
        if self.degraded.is_none() {
            tracing::error!(%reason, "dedup falls back to in-process memory");
        }
        self.degraded = Some(reason);
        local
    }

    fn check_local(&mut self, key: &str, finding_id: &str, now: DateTime<Utc>) -> Verdict {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::minutes(30));
        // Forget expired keys now and then so the map stays bounded by the TTL.
        if self.local.len() > 1024 && self.local.len().is_power_of_two() {
            self.local.retain(|_, (_, expires)| *expires > now);
        }
        match self.local.get(key) {
            Some((owner, expires)) if *expires > now => {
                if owner == finding_id {
                    Verdict::Redelivery
                } else {
                    Verdict::Duplicate
                }
            }
            _ => {
                self.local
                    .insert(key.to_string(), (finding_id.to_string(), now + ttl));
                Verdict::New
            }
        }
    }

    /// Backend description for the report, and whether Redis failed since
    /// the last call (then the fallback was used); resets that state. Running
    /// without Redis on purpose (the demo) is not degraded.
    pub fn take_status(&mut self) -> (String, bool) {
        self.asked = 0;
        if self.forgotten > 0 {
            tracing::warn!(
                claims = self.forgotten,
                "Redis had forgotten dedup claims (restarted or failed over); kept them from memory"
            );
            self.forgotten = 0;
        }
        let (backend, degraded) = match (&self.redis, self.degraded.take()) {
            (Some(_), None) => ("redis".to_string(), false),
            (Some(_), Some(reason)) => (format!("in-process fallback ({reason})"), true),
            (None, _) => ("in-process (no Redis configured)".into(), false),
        };
        match self.restored.take() {
            Some(claims) => (
                format!(
                    "{backend}; Redis had no alert states at start: {claims} dedup claims restored from the alerts stream"
                ),
                degraded,
            ),
            None => (backend, degraded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_process_dedup_honours_ttl_and_redelivery() {
        let mut dedup = Deduplicator::new(None, &RedisConfig::default(), Duration::from_secs(60));
        let t0 = Utc::now();
        assert_eq!(dedup.check("k", "id1", t0).await, Verdict::New);
        assert_eq!(dedup.check("k", "id1", t0).await, Verdict::Redelivery);
        assert_eq!(
            dedup
                .check("k", "id2", t0 + chrono::Duration::seconds(59))
                .await,
            Verdict::Duplicate
        );
        assert_eq!(
            dedup
                .check("k", "id3", t0 + chrono::Duration::seconds(61))
                .await,
            Verdict::New
        );
        assert_eq!(dedup.check("other", "id4", t0).await, Verdict::New);
        let (backend, degraded) = dedup.take_status();
        assert!(!degraded, "no Redis on purpose is not degraded");
        assert_eq!(backend, "in-process (no Redis configured)");
    }
}
