//! The aggregator's HTTP API for the decision investigator and operators:
//! `GET /v1/report/latest` (the latest inspection report, JSON) and
//! `GET /v1/anomaly-context` (the compact anomaly context, JSON), behind a
//! bearer token when one is configured.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::state::Shared;

/// The API's state: empty until the aggregator has started (503 until then).
pub type ApiState = Arc<OnceLock<Arc<Shared>>>;

fn starting() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"error": "aggregator is starting (waiting for NATS)"})),
    )
        .into_response()
}

/// Routes under `/v1`; with `token`, each request must carry
/// `Authorization: Bearer <token>` (else 401).
pub fn api_router(shared: ApiState, token: Option<String>) -> Router {
    let router = Router::new()
        .route("/v1/report/latest", get(latest_report))
        .route("/v1/anomaly-context", get(anomaly_context))
        .with_state(shared);
    match token {
        Some(token) => router.layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            require_bearer,
        )),
        None => router,
    }
}

async fn require_bearer(
    State(token): State<Arc<String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({"error": "a valid bearer token is required"})),
        )
            .into_response(),
    }
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn latest_report(State(state): State<ApiState>) -> Response {
    let Some(shared) = state.get() else {
        return starting();
    };
    match shared.latest_report() {
        Some(report) => Json(report).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "no inspection report has been assembled yet"})),
        )
            .into_response(),
    }
}

async fn anomaly_context(State(state): State<ApiState>) -> Response {
    let Some(shared) = state.get() else {
        return starting();
    };
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        shared.cached_context().json,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, case 9: with a token configured, `/v1/*` answers only to it.
    #[tokio::test]
    async fn the_api_requires_the_bearer_token() {
        inspector_runtime::install_crypto_provider();
        let token = "0123456789abcdef-token".to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = api_router(ApiState::default(), Some(token.clone()));
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::new();
        let status = |request: reqwest::RequestBuilder| async move {
            request.send().await.unwrap().status().as_u16()
        };
        let url = format!("{base}/v1/anomaly-context");
        assert_eq!(status(http.get(&url)).await, 401);
        assert_eq!(
            status(http.get(&url).bearer_auth("wrong-token-0123456")).await,
            401
        );
        // The right token gets through (503: no aggregator behind this router).
        assert_eq!(status(http.get(&url).bearer_auth(&token)).await, 503);
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(constant_time_eq(b"abc", b"abc"));
    }
}
