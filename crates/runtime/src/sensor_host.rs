//! What every sensor binary does around its work: serve `/healthz`,
//! `/readyz` and `/metrics` (with the shared [`SensorMetrics`]) from the
//! start, idle healthy when switched off in its config, and wait for the
//! HTTP server to drain on shutdown.

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{OpsState, SensorMetrics, ops_router, serve_http};

/// The ops side of a running sensor.
#[derive(Debug)]
pub struct SensorHost {
    pub ops: OpsState,
    pub metrics: SensorMetrics,
    /// This process' instance name (see [`crate::instance_name`]).
    pub instance: String,
    server: JoinHandle<std::io::Result<()>>,
}

impl SensorHost {
    /// Starts the ops endpoints on `listener` (not ready yet) until `shutdown`.
    pub fn start(listener: TcpListener, shutdown: &CancellationToken) -> Self {
        let mut registry = Registry::default();
        let metrics = SensorMetrics::register(&mut registry);
        let ops = OpsState::new(registry);
        let server = tokio::spawn(serve_http(
            listener,
            ops_router(ops.clone()),
            shutdown.clone(),
        ));
        SensorHost {
            ops,
            metrics,
            instance: crate::instance_name(),
            server,
        }
    }

    /// A sensor switched off in its config: healthy and ready, publishing
    /// nothing, until shutdown.
    pub async fn idle_disabled(
        self,
        sensor: &str,
        shutdown: &CancellationToken,
    ) -> std::io::Result<()> {
        tracing::warn!("{sensor} is switched off in its config (enabled: false); idle");
        self.ops.set_ready(true);
        shutdown.cancelled().await;
        self.finish().await
    }

    /// Waits for the ops server to stop (after `shutdown`).
    pub async fn finish(self) -> std::io::Result<()> {
        self.server.await.unwrap_or(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disabled_sensor_is_ready_and_stops_on_shutdown() {
        crate::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/readyz", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let host = SensorHost::start(listener, &shutdown);
        assert_eq!(
            reqwest::get(&url).await.unwrap().status(),
            503,
            "not ready before idling"
        );
        let idle = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { host.idle_disabled("test-sensor", &shutdown).await }
        });
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while reqwest::get(&url).await.unwrap().status() != 200 {
            assert!(tokio::time::Instant::now() < deadline, "never became ready");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        idle.await.unwrap().unwrap();
    }
}
