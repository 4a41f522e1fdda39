//! The aggregator: subscribes to every sensor's findings and run summaries,
//! deduplicates findings (Redis `SET NX EX`, in-process fallback), publishes
//! alerts for new non-shadow findings, assembles an inspection report every
//! interval, and serves the latest report and the anomaly context to the
//! decision investigator over HTTP and NATS request-reply.
//!
//! It is the only component that talks to Redis.

pub mod config;
pub mod context;
pub mod core;
pub mod dedup;
pub mod http;
pub mod metrics;
pub mod service;

pub use config::{AggregatorConfig, RedisConfig, SensorSettings};
pub use context::AnomalyContext;
pub use service::{
    AggregatorHandle, AggregatorMetrics, AggregatorService, RunningAggregator, serve,
    spawn_query_responders, start,
};
