//! The aggregator's HTTP API for the decision investigator and operators:
//! `GET /v1/report/latest` (the latest inspection report, JSON) and
//! `GET /v1/anomaly-context` (the compact anomaly context, JSON).

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

/// Routes under `/v1`.
pub fn api_router(shared: ApiState) -> Router {
    Router::new()
        .route("/v1/report/latest", get(latest_report))
        .route("/v1/anomaly-context", get(anomaly_context))
        .with_state(shared)
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
    Json(shared.anomaly_context()).into_response()
}
