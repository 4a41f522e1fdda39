//! NATS request-reply for the latest report and the anomaly context, in a
//! queue group so aggregator replicas share the queries.

use std::sync::Arc;

use futures::StreamExt as _;
use inspector_domain::wire::WireMessage;
use tokio_util::sync::CancellationToken;

use crate::state::Shared;

/// Queue group for request-reply.
const QUERY_GROUP: &str = "aggregator";

/// Answers the NATS request-reply queries until `shutdown`.
pub fn spawn_query_responders(
    client: async_nats::Client,
    shared: Arc<Shared>,
    report_subject: String,
    context_subject: String,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let subscriptions = futures::future::try_join(
            client.queue_subscribe(report_subject.clone(), QUERY_GROUP.into()),
            client.queue_subscribe(context_subject.clone(), QUERY_GROUP.into()),
        )
        .await;
        let (mut reports, mut contexts) = match subscriptions {
            Ok(pair) => pair,
            Err(error) => {
                tracing::error!(
                    error = &error as &dyn std::error::Error,
                    "cannot subscribe to the query subjects"
                );
                return;
            }
        };
        loop {
            let (message, body) = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(message) = reports.next() => {
                    // Empty body: no report assembled yet.
                    let body: bytes::Bytes = shared.latest_report().map(|r| r.to_bytes().into()).unwrap_or_default();
                    (message, body)
                }
                Some(message) = contexts.next() => {
                    (message, shared.cached_context().json)
                }
                else => break,
            };
            if let Some(reply) = message.reply
                && let Err(error) = client.publish(reply, body).await
            {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "could not answer a query"
                );
            }
        }
    })
}
