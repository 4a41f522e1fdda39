//! The aggregator's HTTP API for the decision investigator and operators,
//! behind a bearer token when one is configured:
//! - `GET /v1/report/latest`: the latest inspection report (JSON);
//! - `GET /v1/reports?since=&until=&limit=`: past reports, newest first;
//! - `GET /v1/incidents?state=&namespace=&workload=&since=&until=&limit=`;
//! - `GET /v1/anomaly-context?namespace=&workload=&at=&window=&format=json|prompt&max_tokens=`:
//!   the scoped anomaly context v2 (JSON, or `text/plain` for a prompt).
//!
//! A bad parameter is a 400 whose JSON names it.

use std::sync::{Arc, OnceLock};

use std::collections::HashSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use inspector_domain::Incident;
use serde::Deserialize;

use crate::context::{ContextParams, Format, QueryError, parse_time};
use crate::history::{IncidentFilter, MAX_LIMIT};
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
        .route("/v1/reports", get(reports))
        .route("/v1/incidents", get(incidents))
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
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            [(http::header::WWW_AUTHENTICATE, "Bearer")],
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

fn bad_request(error: &QueryError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({"error": error.to_string(), "field": error.field})),
    )
        .into_response()
}

/// An unknown or malformed query parameter, as the 400 says it.
fn rejected(rejection: QueryRejection) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({"error": rejection.body_text()})),
    )
        .into_response()
}

/// The aggregator and the parsed query string, or the 503 / 400 to send.
fn ready<T>(
    state: &ApiState,
    params: Result<Query<T>, QueryRejection>,
) -> Result<(Arc<Shared>, T), Box<Response>> {
    let shared = state.get().ok_or_else(|| Box::new(starting()))?.clone();
    let Query(params) = params.map_err(|r| Box::new(rejected(r)))?;
    Ok((shared, params))
}

async fn anomaly_context(
    State(state): State<ApiState>,
    params: Result<Query<ContextParams>, QueryRejection>,
) -> Response {
    let (shared, params) = match ready(&state, params) {
        Ok(ready) => ready,
        Err(response) => return *response,
    };
    let (query, format) = match params.parse() {
        Ok(parsed) => parsed,
        Err(error) => return bad_request(&error),
    };
    match shared.context(&query, format) {
        Ok(cached) => {
            let content_type = match format {
                Format::Json => "application/json",
                Format::Prompt { .. } => "text/plain; charset=utf-8",
            };
            ([(http::header::CONTENT_TYPE, content_type)], cached.body).into_response()
        }
        Err(error) => bad_request(&error),
    }
}

/// `since`, `until` and `limit` of a history query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    state: Option<String>,
    namespace: Option<String>,
    workload: Option<String>,
}

/// `since`, `until`, `limit`.
type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>, usize);

/// Most entries listed unless `limit` says.
const DEFAULT_LIMIT: usize = 20;

impl HistoryParams {
    fn time(
        field: &'static str,
        text: &Option<String>,
    ) -> Result<Option<DateTime<Utc>>, QueryError> {
        match text.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => parse_time(text).map(Some).ok_or_else(|| QueryError {
                field,
                problem: format!("{text:?} is neither RFC 3339 nor Unix seconds"),
            }),
        }
    }

    fn bounds(&self) -> Result<Bounds, QueryError> {
        let since = Self::time("since", &self.since)?;
        let until = Self::time("until", &self.until)?;
        if let (Some(since), Some(until)) = (since, until)
            && since > until
        {
            return Err(QueryError {
                field: "since",
                problem: "is after until".into(),
            });
        }
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(QueryError {
                        field: "limit",
                        problem: format!("{text:?} is not within 1..={MAX_LIMIT}"),
                    });
                }
            },
        };
        Ok((since, until, limit))
    }
}

fn unavailable(error: &inspector_bus::BusError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"error": format!("history unavailable: {}", inspector_runtime::error_chain(error))})),
    )
        .into_response()
}

async fn reports(
    State(state): State<ApiState>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Response {
    let (shared, params) = match ready(&state, params) {
        Ok(ready) => ready,
        Err(response) => return *response,
    };
    if params.state.is_some() || params.namespace.is_some() || params.workload.is_some() {
        return bad_request(&QueryError {
            field: "state",
            problem: "reports take since, until and limit only".into(),
        });
    }
    let (since, until, limit) = match params.bounds() {
        Ok(bounds) => bounds,
        Err(error) => return bad_request(&error),
    };
    match shared.history() {
        Some(history) => match history.reports(since, until, limit).await {
            Ok(reports) => Json(reports).into_response(),
            Err(error) => unavailable(&error),
        },
        // No history: what this process holds.
        None => Json(
            shared
                .latest_report()
                .into_iter()
                .filter(|r| {
                    since.is_none_or(|s| r.window_end >= s)
                        && until.is_none_or(|u| r.window_end <= u)
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
    }
}

async fn incidents(
    State(state): State<ApiState>,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> Response {
    let (shared, params) = match ready(&state, params) {
        Ok(ready) => ready,
        Err(response) => return *response,
    };
    let (since, until, limit) = match params.bounds() {
        Ok(bounds) => bounds,
        Err(error) => return bad_request(&error),
    };
    let state_filter = params
        .state
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(state) = state_filter
        && !["open", "resolved", "merged"].contains(&state)
    {
        return bad_request(&QueryError {
            field: "state",
            problem: format!("{state:?}: use open, resolved or merged"),
        });
    }
    let name = |text: &Option<String>| {
        text.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
    };
    let filter = IncidentFilter {
        state: state_filter.map(String::from),
        namespace: name(&params.namespace),
        workload: name(&params.workload),
        since,
        until,
        limit,
    };
    // This process' view first (newest states), then history for the rest.
    let mut found: Vec<Incident> = shared
        .core()
        .incidents()
        .filter(|i| filter.admits(i))
        .cloned()
        .collect();
    if let Some(history) = shared.history() {
        match history.incidents(&filter).await {
            Ok(kept) => {
                let known: HashSet<String> = found.iter().map(|i| i.id.clone()).collect();
                found.extend(kept.into_iter().filter(|i| !known.contains(&i.id)));
            }
            Err(error) => return unavailable(&error),
        }
    }
    found.sort_by(|a, b| {
        b.is_open()
            .cmp(&a.is_open())
            .then(b.last_seen.cmp(&a.last_seen))
    });
    found.truncate(limit);
    Json(found).into_response()
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
