//! The trend-predictor sensor: every `interval`, fit a straight line to each
//! configured metric's recent history and publish a `trend_breach` finding
//! when the line crosses the metric's threshold within the horizon (or the
//! metric is already past it). The maths lives in `inspector-trend`; this
//! crate queries, decides what to report, and publishes.

pub mod config;
pub mod pass;
pub mod service;

pub use config::{BreachDirection, MetricRule, TrendPredictorConfig};
pub use inspector_prometheus::MetricSource;
pub use pass::{PassOutcome, SENSOR, judge_series, run_pass};
pub use service::{TrendPredictor, serve};
