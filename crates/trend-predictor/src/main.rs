//! `trend-predictor` binary: loads its config and runs the service.

use inspector_runtime::{ServiceBinary, ServiceError, run_service};
use inspector_trend_predictor::TrendPredictorConfig;

#[tokio::main]
async fn main() -> Result<(), ServiceError> {
    let binary = ServiceBinary {
        name: "trend-predictor",
        about: "Warns before a metric's linear trend crosses its threshold.",
    };
    run_service(
        binary,
        TrendPredictorConfig::validate,
        |c| c.listen,
        inspector_trend_predictor::serve,
    )
    .await
}
