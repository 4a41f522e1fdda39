//! The baseline-detector sensor: learns a seasonal Holt-Winters baseline
//! (`inspector-baseline`) for every series of each configured PromQL metric
//! from Prometheus range queries, refits in the background, and each pass
//! publishes a `dynamic_anomaly` finding for a current value at or beyond
//! the warning σ (critical at the critical σ) when the series has not done
//! this within its memory (`novel_only`: a larger deviation than any, a
//! more disturbed or rougher hour than any, an hour's level outside every
//! hour's: see `inspector_baseline::Evidence`), once
//! per cooldown per series. The finding's text names the detector that
//! fired and why.

pub mod config;
pub mod detector;
pub mod service;

pub use config::{BaselineDetectorConfig, WatchedMetric};
pub use detector::{Detector, PassOutcome, SENSOR, regular_values};
pub use service::{pass_loop, retrain_loop, run_pass, serve};
