//! The operations endpoints every service serves: `/healthz` (the process
//! runs), `/readyz` (it is connected and doing its job) and `/metrics`.
//!
//! `/metrics` negotiates its format: OpenMetrics 1.0 when the scraper asks
//! for `application/openmetrics-text` (Prometheus does by default), else the
//! classic Prometheus text format 0.0.4 (`curl`, `promtool check metrics`,
//! older scrapers), converted from the same encoding.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Shared state behind the ops endpoints.
#[derive(Debug, Clone)]
pub struct OpsState {
    ready: Arc<AtomicBool>,
    registry: Arc<Registry>,
    /// Tasks the service needs that ended before shutdown, and how.
    failed: Arc<std::sync::Mutex<Vec<String>>>,
    /// Why the service cannot do its job although it started (a wrong
    /// password, say): `/readyz` fails with it.
    unready: Arc<std::sync::Mutex<Option<String>>>,
}

impl OpsState {
    /// Starts not ready; the service calls [`OpsState::set_ready`] once it is.
    /// Adds `inspector_build_info{service, version}`.
    pub fn new(mut registry: Registry) -> Self {
        registry.register(
            "inspector_build",
            "Build of the running binary",
            prometheus_client::metrics::info::Info::new(vec![
                ("service", crate::service_name()),
                ("version", env!("CARGO_PKG_VERSION").to_string()),
            ]),
        );
        OpsState {
            ready: Arc::new(AtomicBool::new(false)),
            registry: Arc::new(registry),
            failed: Arc::default(),
            unready: Arc::default(),
        }
    }

    /// Marks the service unable to do its job (`Some(reason)`) or able
    /// again (`None`), whatever `set_ready` said.
    pub fn set_problem(&self, problem: Option<String>) {
        *self
            .unready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = problem;
    }

    fn problem(&self) -> Option<String> {
        self.unready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Watches a task the service needs: if it panics, or ends before
    /// `shutdown`, `/healthz` fails from then on (so Kubernetes restarts the
    /// pod) and the reason is logged and served. The returned handle ends
    /// when the task does, so callers still wait for it at shutdown.
    pub fn supervise(
        &self,
        name: &'static str,
        task: tokio::task::JoinHandle<()>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let failed = self.failed.clone();
        tokio::spawn(async move {
            let reason = match task.await {
                Ok(()) if shutdown.is_cancelled() => return,
                Ok(()) => format!("task {name} ended unexpectedly"),
                Err(error) if error.is_panic() => {
                    let payload = error.into_panic();
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "non-text panic".into());
                    format!("task {name} panicked: {message}")
                }
                Err(_) => return, // cancelled (aborted on purpose)
            };
            tracing::error!(task = name, %reason, "a task the service needs has died; /healthz now fails");
            failed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(reason);
        })
    }

    /// Why the service is unhealthy, if it is.
    pub fn failures(&self) -> Vec<String> {
        self.failed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The registry in Prometheus text exposition format.
    pub fn encode_metrics(&self) -> String {
        let mut text = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Router with `/healthz`, `/readyz` and `/metrics`; services merge their own
/// routes into it.
pub fn ops_router(state: OpsState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(state): State<OpsState>) -> impl IntoResponse {
    let failures = state.failures();
    if failures.is_empty() {
        (StatusCode::OK, "ok".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, failures.join("\n"))
    }
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    match (state.is_ready(), state.problem()) {
        (true, None) => (StatusCode::OK, "ready".to_string()),
        (_, Some(problem)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {problem}"),
        ),
        (false, None) => (StatusCode::SERVICE_UNAVAILABLE, "not ready".to_string()),
    }
}

/// Content type of OpenMetrics 1.0.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn metrics(State(state): State<OpsState>, headers: HeaderMap) -> impl IntoResponse {
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("application/openmetrics-text"));
    let text = state.encode_metrics();
    if wants_openmetrics {
        ([(header::CONTENT_TYPE, OPENMETRICS)], text)
    } else {
        (
            [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
            openmetrics_to_text(&text),
        )
    }
}

/// Rewrites prometheus-client's OpenMetrics output as text format 0.0.4:
/// counter families are named with their `_total` sample name, `info` and
/// `unknown` become gauge and untyped, and `# UNIT`, `# EOF` and `_created`
/// samples (which 0.0.4 lacks) are dropped.
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    // A family's kind decides its 0.0.4 name, and HELP comes before TYPE.
    let kinds: std::collections::HashMap<&str, &str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split_once(' '))
        .collect();
    let family_name = |name: &str| match kinds.get(name).copied() {
        Some("counter") => format!("{name}_total"),
        Some("info") => format!("{name}_info"),
        _ => name.to_string(),
    };
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some((name, kind)) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.split_once(' '))
        {
            let kind = match kind {
                "info" => "gauge",
                "unknown" => "untyped",
                other => other,
            };
            out.push_str(&format!("# TYPE {} {kind}\n", family_name(name)));
            continue;
        }
        if let Some((name, help)) = line
            .strip_prefix("# HELP ")
            .and_then(|rest| rest.split_once(' '))
        {
            out.push_str(&format!("# HELP {} {help}\n", family_name(name)));
            continue;
        }
        let sample = line.split(['{', ' ']).next().unwrap_or("");
        let is_counter_created = sample
            .strip_suffix("_created")
            .is_some_and(|family| kinds.get(family) == Some(&"counter"));
        if !is_counter_created {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets
/// in-flight requests finish.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::SensorMetrics;

    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[tokio::test]
    async fn endpoints_answer() {
        crate::install_crypto_provider();
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("widgets", "Widgets seen", counter.clone());
        counter.inc_by(3);
        let state = OpsState::new(registry);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve_http(
            listener,
            ops_router(state.clone()),
            shutdown.clone(),
        ));
        let http = reqwest::Client::new();

        assert_eq!(
            http.get(format!("{base}/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .unwrap()
                .status(),
            503
        );
        state.set_ready(true);
        assert_eq!(
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let body = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("widgets_total 3"), "{body}");

        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    /// A sensor's whole `/metrics`, as served: OpenMetrics to a scraper that
    /// asks for it, text 0.0.4 otherwise, and promtool finds nothing in either.
    #[tokio::test]
    async fn metrics_negotiate_their_format_and_lint_clean() {
        crate::install_crypto_provider();
        let mut registry = Registry::default();
        let metrics = SensorMetrics::register(&mut registry);
        metrics.pass_done(Duration::from_millis(120));
        metrics.error("query");
        metrics.findings.inc();
        let state = OpsState::new(registry);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(serve_http(listener, ops_router(state), shutdown.clone()));
        let http = reqwest::Client::new();

        let plain = http.get(&url).send().await.unwrap();
        assert_eq!(plain.headers()[header::CONTENT_TYPE], PROMETHEUS_TEXT);
        let text = plain.text().await.unwrap();
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("# TYPE inspector_sensor_passes_total counter"),
            "{text}"
        );
        assert!(text.contains("inspector_build_info{"), "{text}");
        assert!(
            text.contains("inspector_sensor_errors_total{kind=\"publish\"} 0"),
            "error kinds start at zero: {text}"
        );
        inspector_test_harness::promtool_check_metrics(&text).unwrap();

        let open = http
            .get(&url)
            .header(
                header::ACCEPT,
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(open.headers()[header::CONTENT_TYPE], OPENMETRICS);
        let text = open.text().await.unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("# TYPE inspector_sensor_passes counter"),
            "{text}"
        );
        shutdown.cancel();
    }

    #[test]
    fn conversion_renames_counters_and_drops_openmetrics_only_lines() {
        let open = "# HELP a_seconds Time.\n# TYPE a_seconds counter\n# UNIT a_seconds seconds\n\
                    a_seconds_total 2\na_seconds_created 1.7e9\n# HELP b Build.\n# TYPE b info\n\
                    b_info{v=\"1\"} 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(open),
            "# HELP a_seconds_total Time.\n# TYPE a_seconds_total counter\na_seconds_total 2\n\
             # HELP b_info Build.\n# TYPE b_info gauge\nb_info{v=\"1\"} 1\n"
        );
    }

    #[tokio::test]
    async fn a_panicked_task_fails_healthz() {
        crate::install_crypto_provider();
        let state = OpsState::new(Registry::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/healthz", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        tokio::spawn(serve_http(
            listener,
            ops_router(state.clone()),
            shutdown.clone(),
        ));
        assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
        let doomed = tokio::spawn(async { panic!("retrain blew up") });
        let _watcher = state.supervise("retrain", doomed, shutdown.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let response = reqwest::get(&url).await.unwrap();
            if response.status() == 503 {
                let body = response.text().await.unwrap();
                assert!(
                    body.contains("task retrain panicked: retrain blew up"),
                    "{body}"
                );
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "healthz stayed 200");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A task that ends because of shutdown is not a failure.
        let quiet = CancellationToken::new();
        let state = OpsState::new(Registry::default());
        quiet.cancel();
        state
            .supervise("done", tokio::spawn(async {}), quiet)
            .await
            .unwrap();
        assert!(state.failures().is_empty());
        shutdown.cancel();
    }
}
