//! `baseline-detector` binary. Not implemented yet (issue: seasonal dynamic
//! baselines); it refuses to start rather than pretend to watch anything.

fn main() -> std::process::ExitCode {
    eprintln!(
        "baseline-detector: not yet implemented. Switch it off in the aggregator \
         (sensors.baseline-detector.enabled: false) until it ships."
    );
    std::process::ExitCode::from(69) // EX_UNAVAILABLE
}
