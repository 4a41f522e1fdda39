//! The baseline-detector sensor: learns a seasonal Holt-Winters baseline
//! (`inspector-baseline`) for every series of each configured PromQL metric
//! from Prometheus range queries, refits in the background, and each pass
//! publishes a `dynamic_anomaly` finding for a current value at or beyond
//! the warning σ (critical at the critical σ) that is also larger than any
//! deviation the series showed in its training history (`novel_only`), once
//! per cooldown per series.

pub mod config;
pub mod detector;
pub mod service;

pub use config::{BaselineDetectorConfig, WatchedMetric};
pub use detector::{Detector, PassOutcome, SENSOR, regular_values};
pub use service::{run_pass, serve};
