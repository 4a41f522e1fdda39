//! One-off queries of a running aggregator over NATS request-reply.

use std::time::Duration;

use anyhow::{Context as _, bail};
use inspector_bus::{NatsConfig, Subjects};
use inspector_domain::InspectionReport;
use inspector_domain::context::{AnomalyContext, ContextQuery, ContextReply};
use inspector_domain::wire::WireMessage as _;

/// Asks for the latest report; `None` when none was assembled yet.
pub async fn latest_report(nats: &NatsConfig) -> anyhow::Result<Option<InspectionReport>> {
    let reply = request(nats, &Subjects::new(&nats.subject_prefix).report_query()).await?;
    if reply.is_empty() {
        return Ok(None);
    }
    Ok(Some(InspectionReport::from_bytes(&reply)?))
}

/// Asks for the anomaly context v2 for `query` (protobuf both ways).
pub async fn anomaly_context(
    nats: &NatsConfig,
    query: &ContextQuery,
) -> anyhow::Result<AnomalyContext> {
    let reply = request_with(
        nats,
        &Subjects::new(&nats.subject_prefix).context_query(),
        query.to_bytes(),
    )
    .await?;
    match ContextReply::from_bytes(&reply).context("decoding the context reply")? {
        ContextReply::Context(context) => Ok(*context),
        ContextReply::Refused(error) => bail!("the aggregator refused the query: {error}"),
    }
}

async fn request(nats: &NatsConfig, subject: &str) -> anyhow::Result<Vec<u8>> {
    request_with(nats, subject, Vec::new()).await
}

async fn request_with(nats: &NatsConfig, subject: &str, body: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    nats.validate().map_err(anyhow::Error::msg)?;
    let client = nats
        .connect_client("inspector-cli")
        .await
        .context("connecting to NATS")?;
    match tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject.to_string(), body.into()),
    )
    .await
    {
        Ok(Ok(message)) => Ok(message.payload.to_vec()),
        Ok(Err(error)) => bail!("no aggregator answered on {subject}: {error}"),
        Err(_) => bail!("no answer on {subject} within 10 s"),
    }
}
