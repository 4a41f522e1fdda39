//! The aggregator: subscribes to every sensor's findings and run summaries,
//! deduplicates findings (Redis `SET NX EX`, in-process fallback), publishes
//! alerts for new non-shadow findings, assembles an inspection report every
//! interval, and serves the latest report and the anomaly context to the
//! decision investigator over HTTP and NATS request-reply.
//!
//! It is the only component that talks to Redis, and it reads pods'
//! owners from the Kubernetes API where it may.

pub mod alertmanager;
pub mod config;
pub mod context;
pub mod core;
pub mod dedup;
pub mod history;
pub mod http;
pub mod incidents;
pub mod intake;
pub mod metrics;
pub mod owners;
pub mod responders;
pub mod service;
pub mod state;
pub mod store;

pub use config::{AggregatorConfig, AlertmanagerConfig, AlertsConfig, RedisConfig, SensorSettings};
pub use inspector_domain::context::AnomalyContext;
pub use service::{
    AggregatorHandle, AggregatorMetrics, RunningAggregator, ServeError, serve, start,
};
