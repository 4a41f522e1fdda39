//! `log-pattern` binary: loads its config and runs the service.

use inspector_log_pattern::LogPatternConfig;
use inspector_runtime::{ServiceBinary, ServiceError, run_service};

#[tokio::main]
async fn main() -> Result<(), ServiceError> {
    let binary = ServiceBinary {
        name: "log-pattern",
        about: "Reports log line templates never seen before.",
    };
    run_service(
        binary,
        LogPatternConfig::validate,
        |c| c.listen,
        inspector_log_pattern::serve,
    )
    .await
}
