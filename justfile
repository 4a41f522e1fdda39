# Everyday recipes. Nothing in the README or CI needs `just`: each recipe is
# the plain cargo command it runs.

# Run the demo: sensors + aggregator over a bundled scenario, HTTP on :8080.
demo:
    cargo run -p inspector -- demo

# All tests (start their own nats-server, redis-server and prometheus).
test:
    scripts/test.sh

# Formatting and lints as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Everything CI does.
ci:
    bash .ci/run

# Run one service locally against local servers, e.g. `just run aggregator`.
run service:
    cargo run -p inspector-{{service}} --bin {{service}} -- --config deploy/config/{{service}}.yaml

# Latest report of a running aggregator.
report:
    cargo run -p inspector -- report
