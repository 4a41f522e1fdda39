//! `baseline-detector` binary: loads its config and runs the service.

use inspector_baseline_detector::BaselineDetectorConfig;
use inspector_runtime::{ServiceBinary, ServiceError, run_service};

#[tokio::main]
async fn main() -> Result<(), ServiceError> {
    let binary = ServiceBinary {
        name: "baseline-detector",
        about: "Flags metric values far from their seasonal baseline.",
    };
    run_service(
        binary,
        BaselineDetectorConfig::validate,
        |c| c.listen,
        inspector_baseline_detector::serve,
    )
    .await
}
