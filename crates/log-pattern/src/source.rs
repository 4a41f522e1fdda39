//! Where log lines come from: Kubernetes pod logs through the `kube` client,
//! or a file / stdin for local use and the demo. Sources send
//! [`SourceEvent`]s on a channel; they never stop on an error, they report it.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use inspector_membership::Membership;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::KubernetesSource;
use crate::miner::LineOrigin;

/// Something a source saw.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    Line { origin: LineOrigin, text: String },
    Error { subject: String, message: String },
}

/// The workload a pod belongs to: its `app.kubernetes.io/name` or `app`
/// label, else its controller's name (a ReplicaSet's `-<pod-template-hash>`
/// suffix removed, so all revisions of a Deployment share templates), else
/// the pod's own name.
pub fn workload_name(pod: &Pod) -> String {
    let meta = &pod.metadata;
    let labels = meta.labels.clone().unwrap_or_default();
    if let Some(name) = labels
        .get("app.kubernetes.io/name")
        .or_else(|| labels.get("app"))
    {
        return name.clone();
    }
    if let Some(owner) = meta.owner_references.as_ref().and_then(|owners| {
        owners
            .iter()
            .find(|o| o.controller == Some(true))
            .or(owners.first())
    }) {
        if let Some(hash) = labels.get("pod-template-hash")
            && let Some(base) = owner.name.strip_suffix(&format!("-{hash}"))
        {
            return base.to_string();
        }
        return owner.name.clone();
    }
    meta.name.clone().unwrap_or_default()
}

/// How often a followed file is checked for new lines at its end, or for
/// existing at all.
const FILE_POLL: Duration = Duration::from_millis(500);

/// How one bounded line read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRead {
    /// Bytes taken from the reader (0: end of input).
    pub consumed: usize,
    /// A newline ended the line (else the input ended, for now, inside it).
    pub ended: bool,
}

/// Reads (the rest of) one line into `line`, keeping at most `max` bytes of
/// it: the remainder of a longer line is read and dropped, never held, so a
/// 100 MB line with no newline costs `max` bytes, not 100 MB.
pub async fn read_line_bounded<R>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead>
where
    R: futures::io::AsyncBufRead + Unpin,
{
    use futures::io::AsyncBufReadExt as _;
    let mut consumed = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(LineRead {
                consumed,
                ended: false,
            });
        }
        let (take, ended) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        let room = max.saturating_sub(line.len());
        line.extend_from_slice(&available[..take.min(room)]);
        reader.consume_unpin(take);
        consumed += take;
        if ended {
            return Ok(LineRead { consumed, ended });
        }
    }
}

/// Reads `path` (`-`: stdin) as one workload's lines, each cut to
/// `max_line_bytes` while reading: to its end, or with `follow` like
/// `tail -F` without rotation (waits for the file to exist, then for lines
/// appended to it) until `shutdown`.
pub async fn follow_file(
    path: std::path::PathBuf,
    workload: String,
    follow: bool,
    max_line_bytes: usize,
    events: mpsc::Sender<SourceEvent>,
    shutdown: CancellationToken,
) {
    use tokio_util::compat::TokioAsyncReadCompatExt as _;
    let error = |message: String| SourceEvent::Error {
        subject: path.display().to_string(),
        message,
    };
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if path.as_os_str() == "-" {
        Box::new(tokio::io::stdin())
    } else {
        let mut reported = false;
        loop {
            match tokio::fs::File::open(&path).await {
                Ok(file) => break Box::new(file),
                Err(e) if follow => {
                    if !reported {
                        let _ = events.send(error(format!("cannot open yet: {e}"))).await;
                        reported = true;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(FILE_POLL) => {}
                    }
                }
                Err(e) => {
                    let _ = events.send(error(format!("cannot open: {e}"))).await;
                    return;
                }
            }
        }
    };
    let mut reader = futures::io::BufReader::new(reader.compat());
    let origin = LineOrigin {
        workload,
        namespace: String::new(),
        pod: String::new(),
        container: path.display().to_string(),
    };
    let mut buffer = Vec::new();
    loop {
        let read = tokio::select! {
            _ = shutdown.cancelled() => return,
            read = read_line_bounded(&mut reader, &mut buffer, max_line_bytes) => read,
        };
        match read {
            Ok(LineRead { consumed: 0, .. }) if follow => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(FILE_POLL) => continue,
                }
            }
            Ok(LineRead { consumed: 0, .. }) if buffer.is_empty() => return,
            // The rest of the line has not been written yet.
            Ok(LineRead { ended: false, .. }) if follow => continue,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buffer)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                buffer.clear();
                let line = SourceEvent::Line {
                    origin: origin.clone(),
                    text,
                };
                if events.send(line).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = events.send(error(format!("read failed: {e}"))).await;
                return;
            }
        }
    }
}

/// A followed container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ContainerKey {
    namespace: String,
    pod: String,
    container: String,
}

/// Lists the configured pods every discovery interval and keeps one
/// follower per container of the workloads this replica owns: new pods are
/// picked up, deleted ones dropped. Runs until `shutdown`.
pub async fn follow_kubernetes(
    client: kube::Client,
    config: KubernetesSource,
    membership: Membership,
    max_line_bytes: usize,
    events: mpsc::Sender<SourceEvent>,
    shutdown: CancellationToken,
) {
    let mut followers: BTreeMap<ContainerKey, CancellationToken> = BTreeMap::new();
    let mut ticker = tokio::time::interval(config.discovery_interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let mut wanted: BTreeMap<ContainerKey, LineOrigin> = BTreeMap::new();
        let mut listed_all = true;
        for namespace in &config.namespaces {
            let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
            let mut params = ListParams::default();
            if let Some(selector) = &config.label_selector {
                params = params.labels(selector);
            }
            match pods.list(&params).await {
                Ok(list) => {
                    for pod in list.items {
                        let workload = workload_name(&pod);
                        if !membership.owns(&workload) || pod.metadata.deletion_timestamp.is_some()
                        {
                            continue;
                        }
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let containers = pod
                            .spec
                            .as_ref()
                            .map(|s| s.containers.clone())
                            .unwrap_or_default();
                        for container in containers {
                            let key = ContainerKey {
                                namespace: namespace.clone(),
                                pod: name.clone(),
                                container: container.name.clone(),
                            };
                            let origin = LineOrigin {
                                workload: workload.clone(),
                                namespace: namespace.clone(),
                                pod: name.clone(),
                                container: container.name,
                            };
                            wanted.insert(key, origin);
                        }
                    }
                }
                Err(e) => {
                    listed_all = false;
                    let _ = events
                        .send(SourceEvent::Error {
                            subject: format!("namespace {namespace}"),
                            message: format!("listing pods failed: {e}"),
                        })
                        .await;
                }
            }
        }
        // Keep followers of namespaces that could not be listed this time.
        if listed_all {
            followers.retain(|key, cancel| {
                let keep = wanted.contains_key(key);
                if !keep {
                    tracing::info!(pod = %key.pod, container = %key.container, "pod gone; stop following");
                    cancel.cancel();
                }
                keep
            });
        }
        for (key, origin) in wanted {
            if followers.contains_key(&key) {
                continue;
            }
            tracing::info!(pod = %key.pod, container = %key.container, workload = %origin.workload, "following");
            let cancel = shutdown.child_token();
            followers.insert(key, cancel.clone());
            let api: Api<Pod> = Api::namespaced(client.clone(), &origin.namespace);
            tokio::spawn(follow_container(
                api,
                origin,
                config.tail_lines,
                config.max_backoff,
                // Room for the RFC 3339 timestamp the API puts first.
                max_line_bytes + 64,
                events.clone(),
                cancel,
            ));
        }
    }
    for cancel in followers.values() {
        cancel.cancel();
    }
}

/// The timestamp the API puts in front of each line with `timestamps=true`.
fn split_timestamp(line: &str) -> Option<(DateTime<FixedOffset>, &str)> {
    let (stamp, rest) = line.split_once(' ').unwrap_or((line, ""));
    DateTime::parse_from_rfc3339(stamp).ok().map(|t| (t, rest))
}

/// Follows one container's log. A broken or ended stream is resumed after a
/// backoff from the last timestamp seen (`sinceSeconds` reaches back just
/// past it; lines at or before it are skipped), so no line is fed twice.
#[allow(clippy::too_many_arguments)]
async fn follow_container(
    api: Api<Pod>,
    origin: LineOrigin,
    tail_lines: i64,
    max_backoff: Duration,
    max_line_bytes: usize,
    events: mpsc::Sender<SourceEvent>,
    cancel: CancellationToken,
) {
    let subject = format!("{}/{}/{}", origin.namespace, origin.pod, origin.container);
    let mut last_seen: Option<DateTime<FixedOffset>> = None;
    let mut backoff = Duration::from_millis(200);
    loop {
        let params = LogParams {
            container: Some(origin.container.clone()),
            follow: true,
            timestamps: true,
            tail_lines: last_seen.is_none().then_some(tail_lines),
            since_seconds: last_seen
                .map(|t| (Utc::now() - t.with_timezone(&Utc)).num_seconds().max(0) + 1),
            ..LogParams::default()
        };
        let outcome = match api.log_stream(&origin.pod, &params).await {
            Ok(stream) => {
                let mut stream = std::pin::pin!(stream);
                let mut buffer = Vec::new();
                loop {
                    buffer.clear();
                    let read = tokio::select! {
                        _ = cancel.cancelled() => return,
                        read = read_line_bounded(&mut stream, &mut buffer, max_line_bytes) => read,
                    };
                    match read {
                        Ok(LineRead { consumed: 0, .. }) => break "log stream ended".to_string(),
                        Ok(_) => {
                            // Invalid UTF-8 is replaced, never fatal.
                            let raw = String::from_utf8_lossy(&buffer);
                            let raw = raw.trim_end_matches(['\n', '\r']);
                            let (stamp, text) = match split_timestamp(raw) {
                                Some((stamp, text)) => (Some(stamp), text),
                                None => (None, raw),
                            };
                            if let (Some(stamp), Some(last)) = (stamp, last_seen)
                                && stamp <= last
                            {
                                continue; // already fed before the reconnect
                            }
                            if stamp.is_some() {
                                last_seen = stamp;
                            }
                            backoff = Duration::from_millis(200);
                            let event = SourceEvent::Line {
                                origin: origin.clone(),
                                text: text.to_string(),
                            };
                            if events.send(event).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => break format!("log stream broke: {e}"),
                    }
                }
            }
            Err(e) => format!("opening the log stream failed: {e}"),
        };
        let resume = last_seen.map_or_else(|| "the tail".to_string(), |t| t.to_rfc3339());
        tracing::warn!(%subject, %outcome, retry_in = ?backoff, "resuming log stream from {resume}");
        let _ = events
            .send(SourceEvent::Error {
                subject: subject.clone(),
                message: format!("{outcome}; resuming after {resume}"),
            })
            .await;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;

    fn pod(labels: &[(&str, &str)], owner: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("shop-7d9f8-abcde".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                owner_references: owner.map(|name| {
                    vec![OwnerReference {
                        name: name.into(),
                        controller: Some(true),
                        kind: "ReplicaSet".into(),
                        api_version: "apps/v1".into(),
                        uid: "u".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn workload_names() {
        assert_eq!(
            workload_name(&pod(
                &[("app.kubernetes.io/name", "shop"), ("app", "x")],
                None
            )),
            "shop"
        );
        assert_eq!(workload_name(&pod(&[("app", "cart")], None)), "cart");
        assert_eq!(
            workload_name(&pod(&[("pod-template-hash", "7d9f8")], Some("shop-7d9f8"))),
            "shop"
        );
        assert_eq!(workload_name(&pod(&[], Some("batch-job"))), "batch-job");
        assert_eq!(workload_name(&pod(&[], None)), "shop-7d9f8-abcde");
    }

    #[test]
    fn timestamps_split() {
        let (t, rest) = split_timestamp("2026-11-24T06:00:00.123456789Z hello world").unwrap();
        assert_eq!(rest, "hello world");
        assert_eq!(t.timestamp_subsec_nanos(), 123_456_789);
        assert!(split_timestamp("no timestamp").is_none());
    }

    /// `follow: true` waits for the file, holds a half-written line until
    /// its newline, and picks up what is appended later.
    #[tokio::test]
    async fn a_followed_file_is_read_as_it_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let (sender, mut lines) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(follow_file(
            path.clone(),
            "app".into(),
            true,
            1024,
            sender,
            shutdown.clone(),
        ));
        async fn next(lines: &mut mpsc::Receiver<SourceEvent>) -> String {
            match tokio::time::timeout(Duration::from_secs(10), lines.recv()).await {
                Ok(Some(SourceEvent::Line { text, .. })) => text,
                Ok(Some(SourceEvent::Error { message, .. })) => format!("error: {message}"),
                other => panic!("no line: {other:?}"),
            }
        }
        assert!(next(&mut lines).await.starts_with("error: cannot open yet"));
        std::fs::write(&path, "first\nsecond half").unwrap();
        assert_eq!(next(&mut lines).await, "first");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, b"-written\nthird\n").unwrap();
        assert_eq!(next(&mut lines).await, "second half-written");
        assert_eq!(next(&mut lines).await, "third");
        shutdown.cancel();
        task.await.unwrap();
    }

    /// Issue 10, case 7: a line far longer than the limit, with no newline
    /// for most of it, is cut while reading; the reader never holds it.
    #[tokio::test]
    async fn a_huge_line_is_cut_while_reading() {
        let huge = vec![b'x'; 5_000_000];
        let mut input: Vec<u8> = b"short\n".to_vec();
        input.extend_from_slice(&huge);
        input.extend_from_slice(b"\nafter\n");
        // A small buffer, as a socket delivers: the line comes in pieces.
        let mut reader = futures::io::BufReader::with_capacity(8192, input.as_slice());
        let mut line = Vec::new();
        let first = read_line_bounded(&mut reader, &mut line, 1024)
            .await
            .unwrap();
        assert_eq!(
            (line.as_slice(), first.ended),
            (b"short\n".as_slice(), true)
        );
        line.clear();
        let long = read_line_bounded(&mut reader, &mut line, 1024)
            .await
            .unwrap();
        assert_eq!(line.len(), 1024, "kept only the limit");
        assert!(line.capacity() < 64 * 1024, "never held the whole line");
        assert_eq!(long.consumed, 5_000_001);
        assert!(long.ended);
        line.clear();
        read_line_bounded(&mut reader, &mut line, 1024)
            .await
            .unwrap();
        assert_eq!(line, b"after\n");
        line.clear();
        let end = read_line_bounded(&mut reader, &mut line, 1024)
            .await
            .unwrap();
        assert_eq!(end.consumed, 0);
    }
}
