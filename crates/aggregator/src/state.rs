//! What the intake shares with the query handlers (HTTP and NATS): the core
//! behind a synchronous mutex that is never held across an `.await`, and the
//! latest report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use chrono::{DateTime, Utc};
use inspector_domain::{Alert, InspectionReport};

use inspector_domain::context::{AnomalyContext, ContextQuery};

use crate::context::{self, Format, Query, QueryError};
use crate::core::Aggregator;
use crate::history::History;

/// State shared between the intake loop and the query handlers.
#[derive(Debug)]
pub struct Shared {
    core: Mutex<Aggregator>,
    latest: RwLock<Option<InspectionReport>>,
    /// Messages handled so far (applied to the core, or rejected).
    processed: AtomicU64,
    /// Why Redis refuses this aggregator (credentials), if it does.
    redis_refused: Mutex<Option<String>>,
    /// Reports and incidents kept in JetStream (none: could not be opened).
    history: Option<History>,
    /// Recent anomaly contexts by query and format.
    context_cache: Mutex<lru::LruCache<(ContextQuery, Format), CachedContext>>,
}

/// An anomaly context, as a document and as its body (JSON or prompt),
/// with the core generation it was made from and when.
#[derive(Debug, Clone)]
pub struct CachedContext {
    generation: u64,
    made: std::time::Instant,
    pub context: Arc<AnomalyContext>,
    pub body: bytes::Bytes,
}

/// Distinct queries whose answers are kept.
const CONTEXT_CACHE_ENTRIES: usize = 256;

/// How long an anomaly context is served again while nothing changed (its
/// window and staleness move with the clock).
const CONTEXT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl Shared {
    pub fn new(
        core: Aggregator,
        latest: Option<InspectionReport>,
        history: Option<History>,
    ) -> Self {
        Shared {
            history,
            core: Mutex::new(core),
            latest: RwLock::new(latest),
            processed: AtomicU64::new(0),
            redis_refused: Mutex::new(None),
            context_cache: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(CONTEXT_CACHE_ENTRIES)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            )),
        }
    }

    /// The history streams, if they could be opened.
    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }

    /// Why Redis refuses this aggregator, as of the last report.
    pub fn redis_refused(&self) -> Option<String> {
        self.redis_refused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn set_redis_refused(&self, refused: Option<String>) {
        *self
            .redis_refused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = refused;
    }

    /// The core, for one synchronous step. A panic while it was held
    /// poisons nothing the next step cannot use: the state stays readable.
    pub fn core(&self) -> MutexGuard<'_, Aggregator> {
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Messages handled so far, valid or not: once counted, their effect
    /// is in the core.
    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::Relaxed)
    }

    pub(crate) fn count_processed(&self, messages: usize) {
        self.processed.fetch_add(messages as u64, Ordering::Relaxed);
    }

    /// The latest assembled report, if any.
    pub fn latest_report(&self) -> Option<InspectionReport> {
        self.latest
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn set_latest(&self, report: InspectionReport) {
        *self
            .latest
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(report);
    }

    /// Firing and recently resolved alerts as of `now`.
    pub fn alerts(&self, now: DateTime<Utc>) -> Vec<Alert> {
        self.core().alerts(now)
    }

    /// The anomaly context for `query` as of now, with its body in
    /// `format` (JSON, or the prompt block): served from a cache while the
    /// core has not changed (for at most a second), else rebuilt. The core's
    /// lock is held only to pick and copy what the context shows; shaping,
    /// encoding and counting tokens happen outside it.
    pub fn context(
        &self,
        query: &ContextQuery,
        format: Format,
    ) -> Result<CachedContext, QueryError> {
        let generation = self.core().generation();
        let key = (query.clone(), format);
        {
            let mut cache = self
                .context_cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(cached) = cache.get(&key)
                && cached.generation == generation
                && cached.made.elapsed() < CONTEXT_CACHE_TTL
            {
                return Ok(cached.clone());
            }
        }
        let now = Utc::now();
        let (snapshot, sensors, shadow, resolved) = {
            let mut core = self.core();
            let config = core.config();
            let resolved = Query::resolve(
                query,
                config.context_window,
                config.context_max_findings,
                now,
            )?;
            let shadow = config.shadow;
            (
                core.scoped_context(&resolved, now),
                core.sensor_statuses(now),
                shadow,
                resolved,
            )
        };
        let context = context::build(snapshot, &sensors, shadow, &resolved, now);
        let body = match format {
            Format::Json => serde_json::to_vec(&context).unwrap_or_default().into(),
            Format::Prompt { max_tokens } => context::render_prompt(&context, max_tokens)
                .into_bytes()
                .into(),
        };
        let cached = CachedContext {
            generation,
            made: std::time::Instant::now(),
            context: Arc::new(context),
            body,
        };
        self.context_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .put(key, cached.clone());
        Ok(cached)
    }
}
