//! `aggregator` binary: loads its config and runs the service.

use inspector_aggregator::AggregatorConfig;
use inspector_runtime::{ServiceBinary, ServiceError, run_service};

#[tokio::main]
async fn main() -> Result<(), ServiceError> {
    let binary = ServiceBinary {
        name: "aggregator",
        about: "Deduplicates findings, assembles inspection reports, serves them.",
    };
    run_service(
        binary,
        AggregatorConfig::validate,
        |c| c.listen,
        inspector_aggregator::serve,
    )
    .await
}
