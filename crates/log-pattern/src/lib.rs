//! The log-pattern sensor: follows Kubernetes pod logs (or a file), mines
//! line templates with Drain per workload (`inspector-drain`), and reports
//! each template never seen before as a `log_pattern` finding, after a
//! per-workload warm-up. Templates survive restarts through snapshots, so a
//! restart reports nothing as new that was known before.

pub mod config;
pub mod miner;
pub mod service;
pub mod source;

pub use config::LogPatternConfig;
pub use miner::{LineOrigin, Miner, NewPattern};
pub use service::{LogPatternSensor, SENSOR, pattern_finding, serve, start_source};
pub use source::{SourceEvent, workload_name};
