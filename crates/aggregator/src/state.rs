//! What the intake shares with the query handlers (HTTP and NATS): the core
//! behind a synchronous mutex that is never held across an `.await`, and the
//! latest report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use chrono::{DateTime, Utc};
use inspector_domain::{Alert, InspectionReport};

use crate::context::AnomalyContext;
use crate::core::Aggregator;

/// State shared between the intake loop and the query handlers.
#[derive(Debug)]
pub struct Shared {
    core: Mutex<Aggregator>,
    latest: RwLock<Option<InspectionReport>>,
    /// Messages handled so far (applied to the core, or rejected).
    processed: AtomicU64,
    /// Why Redis refuses this aggregator (credentials), if it does.
    redis_refused: Mutex<Option<String>>,
    /// The last anomaly context, its core generation and when it was made.
    context_cache: Mutex<Option<CachedContext>>,
}

/// An anomaly context, as a document and as its JSON, with the core
/// generation it was made from and when.
#[derive(Debug, Clone)]
pub struct CachedContext {
    generation: u64,
    made: std::time::Instant,
    pub context: Arc<AnomalyContext>,
    pub json: bytes::Bytes,
}

/// How long an anomaly context is served again while nothing changed (its
/// window and staleness move with the clock).
const CONTEXT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl Shared {
    pub fn new(core: Aggregator, latest: Option<InspectionReport>) -> Self {
        Shared {
            core: Mutex::new(core),
            latest: RwLock::new(latest),
            processed: AtomicU64::new(0),
            redis_refused: Mutex::new(None),
            context_cache: Mutex::new(None),
        }
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

    /// The anomaly context as of now.
    pub fn anomaly_context(&self) -> Arc<AnomalyContext> {
        self.cached_context().context
    }

    /// The anomaly context as of now, and its JSON: served from a cache
    /// while the core has not changed (for at most a second), else rebuilt.
    /// The core's lock is held only to pick and copy what the context shows
    /// (at most `context_max_findings` findings and alerts); shaping and
    /// encoding happen outside it, once per change, not once per request.
    pub fn cached_context(&self) -> CachedContext {
        let generation = self.core().generation();
        {
            let cache = self
                .context_cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(cached) = cache.as_ref()
                && cached.generation == generation
                && cached.made.elapsed() < CONTEXT_CACHE_TTL
            {
                return cached.clone();
            }
        }
        let context = self.build_context();
        let json = serde_json::to_vec(&context).unwrap_or_default().into();
        let cached = CachedContext {
            generation,
            made: std::time::Instant::now(),
            context: Arc::new(context),
            json,
        };
        *self
            .context_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(cached.clone());
        cached
    }

    fn build_context(&self) -> AnomalyContext {
        let now = Utc::now();
        let (snapshot, sensors, shadow, window) = {
            let mut core = self.core();
            let max = core.config().context_max_findings;
            (
                core.context_snapshot(now, max),
                core.sensor_statuses(now),
                core.config().shadow,
                core.config().context_window,
            )
        };
        AnomalyContext::build(snapshot, &sensors, shadow, window, now)
    }
}
