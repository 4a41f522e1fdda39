//! One-off queries of a running aggregator over NATS request-reply.

use std::time::Duration;

use anyhow::{Context as _, bail};
use inspector_bus::Subjects;
use inspector_domain::InspectionReport;
use inspector_domain::wire::WireMessage as _;

/// Asks for the latest report; `None` when none was assembled yet.
pub async fn latest_report(
    nats_url: &str,
    prefix: &str,
) -> anyhow::Result<Option<InspectionReport>> {
    let reply = request(nats_url, &Subjects::new(prefix).report_query()).await?;
    if reply.is_empty() {
        return Ok(None);
    }
    Ok(Some(InspectionReport::from_bytes(&reply)?))
}

/// Asks for the anomaly context (JSON).
pub async fn anomaly_context(nats_url: &str, prefix: &str) -> anyhow::Result<serde_json::Value> {
    let reply = request(nats_url, &Subjects::new(prefix).anomaly_context_query()).await?;
    Ok(serde_json::from_slice(&reply)?)
}

async fn request(nats_url: &str, subject: &str) -> anyhow::Result<Vec<u8>> {
    let client = async_nats::connect(nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {nats_url}"))?;
    match tokio::time::timeout(
        Duration::from_secs(10),
        client.request(subject.to_string(), "".into()),
    )
    .await
    {
        Ok(Ok(message)) => Ok(message.payload.to_vec()),
        Ok(Err(error)) => bail!("no aggregator answered on {subject}: {error}"),
        Err(_) => bail!("no answer on {subject} within 10 s"),
    }
}
