//! NATS request-reply for the report, the anomaly context and the
//! incidents, registered as the NATS service `inspector-aggregator` (the
//! micro protocol: `$SRV.PING`, `$SRV.INFO`, `$SRV.STATS`, so `nats micro
//! ls` finds it), in one queue group so aggregator replicas share queries.
//!
//! Endpoints (subjects from `inspector_bus::Subjects`):
//! - `report`: the latest report (protobuf; empty body: none yet);
//! - `context`: a protobuf `ContextQuery` (empty: defaults) answered with a
//!   protobuf `ContextReply`;
//! - `anomaly-context`: a JSON query (same fields; empty: defaults)
//!   answered with the context as JSON, or `{"error", "field"}`;
//! - `incidents`: the open and recently closed incidents (JSON).

use std::sync::Arc;

use async_nats::service::ServiceExt as _;
use bytes::Bytes;
use futures::StreamExt as _;
use inspector_bus::Subjects;
use inspector_domain::Incident;
use inspector_domain::context::{ContextQuery, ContextReply};
use inspector_domain::wire::WireMessage;
use tokio_util::sync::CancellationToken;

use crate::context::{Format, QueryError};
use crate::state::Shared;

/// The NATS service name.
pub const SERVICE_NAME: &str = "inspector-aggregator";
/// Queue group for request-reply.
const QUERY_GROUP: &str = "aggregator";

/// Why the responders could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot register the NATS service {SERVICE_NAME}")]
pub struct RespondersError(#[source] async_nats::Error);

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Report,
    Context,
    ContextJson,
    Incidents,
}

fn query_error(error: &QueryError) -> Bytes {
    serde_json::to_vec(&serde_json::json!({"error": error.to_string(), "field": error.field}))
        .unwrap_or_default()
        .into()
}

fn answer(shared: &Shared, endpoint: Endpoint, body: &[u8]) -> Bytes {
    match endpoint {
        Endpoint::Report => shared
            .latest_report()
            .map(|r| r.to_bytes().into())
            .unwrap_or_default(),
        Endpoint::Context => {
            let outcome = ContextQuery::from_bytes(body)
                .map_err(|e| QueryError {
                    field: "query",
                    problem: inspector_runtime::error_chain(&e),
                })
                .and_then(|query| shared.context(&query, Format::Json));
            let reply = match outcome {
                Ok(cached) => ContextReply::Context(Box::new((*cached.context).clone())),
                Err(error) => ContextReply::Refused(error.to_string()),
            };
            reply.to_bytes().into()
        }
        Endpoint::ContextJson => {
            let query = if body.iter().all(u8::is_ascii_whitespace) {
                Ok(ContextQuery::default())
            } else {
                serde_json::from_slice::<ContextQuery>(body).map_err(|e| QueryError {
                    field: "query",
                    problem: e.to_string(),
                })
            };
            match query.and_then(|query| shared.context(&query, Format::Json)) {
                Ok(cached) => cached.body,
                Err(error) => query_error(&error),
            }
        }
        Endpoint::Incidents => {
            let incidents: Vec<Incident> = shared.core().incidents().cloned().collect();
            serde_json::to_vec(&incidents).unwrap_or_default().into()
        }
    }
}

/// Registers the service and answers its endpoints until `shutdown`.
pub async fn spawn_query_responders(
    client: async_nats::Client,
    shared: Arc<Shared>,
    subjects: &Subjects,
    instance: &str,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, RespondersError> {
    let service = client
        .service_builder()
        .description("proactive-inspector aggregator: reports, anomaly context, incidents")
        .queue_group(QUERY_GROUP)
        .metadata([("instance".to_string(), instance.to_string())].into())
        .start(SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(RespondersError)?;
    let mut endpoints = Vec::new();
    for (name, subject, endpoint) in [
        ("report", subjects.report_query(), Endpoint::Report),
        ("context", subjects.context_query(), Endpoint::Context),
        (
            "anomaly-context",
            subjects.anomaly_context_query(),
            Endpoint::ContextJson,
        ),
        ("incidents", subjects.incidents_query(), Endpoint::Incidents),
    ] {
        let requests = service
            .endpoint_builder()
            .name(name)
            .add(subject)
            .await
            .map_err(RespondersError)?;
        endpoints.push(requests.map(move |request| (endpoint, request)).boxed());
    }
    let mut requests = futures::stream::select_all(endpoints);
    Ok(tokio::spawn(async move {
        loop {
            let (endpoint, request) = tokio::select! {
                _ = shutdown.cancelled() => break,
                next = requests.next() => match next {
                    Some(next) => next,
                    None => break,
                },
            };
            let body = answer(&shared, endpoint, &request.message.payload);
            if let Err(error) = request.respond(Ok(body)).await {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "could not answer a query"
                );
            }
        }
        let _ = service.stop().await;
    }))
}
