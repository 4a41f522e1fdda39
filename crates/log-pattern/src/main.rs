//! `log-pattern` binary. Not implemented yet (issue: Drain over pod logs);
//! it refuses to start rather than pretend to watch anything.

fn main() -> std::process::ExitCode {
    eprintln!(
        "log-pattern: not yet implemented. Switch it off in the aggregator \
         (sensors.log-pattern.enabled: false) until it ships."
    );
    std::process::ExitCode::from(69) // EX_UNAVAILABLE
}
