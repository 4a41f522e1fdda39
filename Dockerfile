# One image with every binary; the container's command picks the service.
# No system protoc or OpenSSL is needed (protox, rustls with ring).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked \
    --bin aggregator --bin trend-predictor --bin baseline-detector --bin log-pattern --bin inspector

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 inspector
COPY --from=build /src/target/release/aggregator /src/target/release/trend-predictor \
     /src/target/release/baseline-detector /src/target/release/log-pattern \
     /src/target/release/inspector /usr/local/bin/
COPY deploy/config/ /etc/inspector/
USER 10001
ENTRYPOINT []
CMD ["inspector", "demo", "--listen", "0.0.0.0:8080"]
