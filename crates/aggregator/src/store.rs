//! What the aggregator keeps in Redis besides dedup claims: the latest
//! report (`<prefix>:report:latest`) with the stream sequence it covers
//! (`<prefix>:report:through`, written in the same transaction), and the
//! alert states (hash
//! `<prefix>:alerts`, one field per dedup key, protobuf `Alert`), so a
//! restarted or second aggregator keeps firing alerts firing and resolves
//! them as the first would have.

use std::time::Duration;

use inspector_domain::wire::WireMessage;
use inspector_domain::{Alert, InspectionReport};

use crate::core::AlertChanges;
use crate::dedup::RedisConnection;

/// Why a store operation failed; the aggregator logs it and carries on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// The report and alert keys of one deployment.
#[derive(Debug, Clone)]
pub struct Store {
    redis: RedisConnection,
    report_key: String,
    through_key: String,
    alerts_key: String,
    timeout: Duration,
}

impl Store {
    pub fn new(redis: RedisConnection, key_prefix: &str, timeout: Duration) -> Self {
        Store {
            redis,
            report_key: format!("{key_prefix}:report:latest"),
            through_key: format!("{key_prefix}:report:through"),
            alerts_key: format!("{key_prefix}:alerts"),
            // One operation may take a reconnect and a few commands.
            timeout: timeout * 3,
        }
    }

    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, redis::RedisError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, operation)
            .await
            .map_err(|_| StoreError::Timeout(self.timeout))?
            .map_err(StoreError::from)
    }

    /// Stores the report and, atomically with it, the highest stream
    /// sequence it covers (when on NATS).
    pub async fn save_report(&self, bytes: &[u8], through: Option<u64>) -> Result<(), StoreError> {
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        // Both keys share a hash tag only by prefix; on a cluster they may
        // live on different nodes, so MULTI is used only where it can be.
        if matches!(self.redis, RedisConnection::Single(_)) {
            pipe.atomic();
        }
        pipe.cmd("SET").arg(&self.report_key).arg(bytes).ignore();
        if let Some(through) = through {
            pipe.cmd("SET").arg(&self.through_key).arg(through).ignore();
        }
        self.bounded(pipe.query_async::<()>(&mut redis)).await
    }

    /// Records `sequence` as covered when nothing is recorded yet (a first
    /// start: what was delivered before it is not this window's); returns
    /// what is recorded then.
    pub async fn init_through(&self, sequence: u64) -> Result<u64, StoreError> {
        let mut redis = self.redis.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&self.through_key)
            .arg(sequence)
            .arg("NX")
            .ignore();
        pipe.cmd("GET").arg(&self.through_key);
        let (recorded,): (u64,) = self.bounded(pipe.query_async(&mut redis)).await?;
        Ok(recorded)
    }

    /// The stored latest report; an unreadable one is logged and ignored.
    pub async fn load_report(&self) -> Result<Option<InspectionReport>, StoreError> {
        let mut redis = self.redis.clone();
        let bytes: Option<Vec<u8>> = self
            .bounded(
                redis::cmd("GET")
                    .arg(&self.report_key)
                    .query_async(&mut redis),
            )
            .await?;
        Ok(
            bytes.and_then(|bytes| match InspectionReport::from_bytes(&bytes) {
                Ok(report) => Some(report),
                Err(error) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        key = %self.report_key,
                        "stored latest report is unreadable; ignoring it"
                    );
                    None
                }
            }),
        )
    }

    /// Writes changed alert states and drops expired ones, in one round trip.
    pub async fn save_alerts(&self, changes: &AlertChanges) -> Result<(), StoreError> {
        if changes.upserted.is_empty() && changes.removed.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        if !changes.upserted.is_empty() {
            let mut hset = redis::cmd("HSET");
            hset.arg(&self.alerts_key);
            for alert in &changes.upserted {
                hset.arg(&alert.key).arg(alert.to_bytes());
            }
            pipe.add_command(hset).ignore();
        }
        if !changes.removed.is_empty() {
            pipe.cmd("HDEL")
                .arg(&self.alerts_key)
                .arg(&changes.removed)
                .ignore();
        }
        let mut redis = self.redis.clone();
        self.bounded(pipe.query_async::<()>(&mut redis)).await
    }

    /// Every stored alert state; unreadable entries are logged and skipped.
    pub async fn load_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let mut redis = self.redis.clone();
        let entries: Vec<(String, Vec<u8>)> = self
            .bounded(
                redis::cmd("HGETALL")
                    .arg(&self.alerts_key)
                    .query_async(&mut redis),
            )
            .await?;
        Ok(entries
            .into_iter()
            .filter_map(|(key, bytes)| match Alert::from_bytes(&bytes) {
                Ok(alert) => Some(alert),
                Err(error) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        %key,
                        "stored alert state is unreadable; skipping it"
                    );
                    None
                }
            })
            .collect())
    }
}
