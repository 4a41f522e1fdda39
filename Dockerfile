# syntax=docker/dockerfile:1.7
# One image with every binary; the container's command picks the service.
# No system protoc or OpenSSL is needed (protox, rustls with ring).
# BuildKit cache mounts keep the registry and target/ across builds, so an
# edit rebuilds only the workspace crates that changed, not ~400 dependencies.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
      --bin aggregator --bin trend-predictor --bin baseline-detector --bin log-pattern --bin inspector \
    && mkdir /out \
    && cp target/release/aggregator target/release/trend-predictor \
          target/release/baseline-detector target/release/log-pattern \
          target/release/inspector /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 inspector \
    && mkdir -p /scenario /var/lib/inspector && chown 10001:10001 /scenario /var/lib/inspector
COPY --from=build /out/ /usr/local/bin/
COPY deploy/config/ /etc/inspector/
USER 10001
# Each service sets HEALTHCHECK_URL to its own /healthz (compose does);
# the default is the demo's port.
ENV HEALTHCHECK_URL=http://127.0.0.1:8080/healthz
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 CMD ["inspector", "probe"]
ENTRYPOINT []
CMD ["inspector", "demo", "--listen", "0.0.0.0:8080"]
