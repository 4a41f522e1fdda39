//! A small stand-in for the Kubernetes API server, speaking the real paths
//! and JSON shapes the `kube` client uses: the pod list
//! (`GET /api/v1/namespaces/{ns}/pods`) and the chunked, following log
//! stream (`GET /api/v1/namespaces/{ns}/pods/{name}/log?follow=true...`),
//! which a test can cut. No cluster runs here; everything else is real.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

#[derive(Debug, Clone)]
struct StandinPod {
    namespace: String,
    name: String,
    labels: BTreeMap<String, String>,
    containers: Vec<String>,
}

/// One log line of a container with its timestamp.
type LogLine = (DateTime<Utc>, String);

#[derive(Default)]
struct Inner {
    pods: Vec<StandinPod>,
    logs: BTreeMap<(String, String), Vec<LogLine>>,
    live: BTreeMap<(String, String), broadcast::Sender<Option<LogLine>>>,
    /// Query strings of every log request, in order.
    log_requests: Vec<String>,
}

/// The stand-in server's state, shared with the test.
#[derive(Clone, Default)]
pub struct KubeStandin {
    inner: Arc<Mutex<Inner>>,
}

impl KubeStandin {
    /// Serves on a free loopback port; returns the base URL.
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/api/v1/namespaces/{namespace}/pods", get(list_pods))
            .route(
                "/api/v1/namespaces/{namespace}/pods/{name}/log",
                get(pod_log),
            )
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    pub fn add_pod(
        &self,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
        containers: &[&str],
    ) {
        let mut inner = self.inner.lock().unwrap();
        inner.pods.push(StandinPod {
            namespace: namespace.into(),
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            containers: containers.iter().map(|c| c.to_string()).collect(),
        });
    }

    pub fn remove_pod(&self, name: &str) {
        self.inner.lock().unwrap().pods.retain(|p| p.name != name);
    }

    /// Appends a line to a container's log (and to every open follow stream).
    pub fn log(&self, pod: &str, container: &str, text: &str) {
        let line = (Utc::now(), text.to_string());
        let mut inner = self.inner.lock().unwrap();
        let key = (pod.to_string(), container.to_string());
        inner
            .logs
            .entry(key.clone())
            .or_default()
            .push(line.clone());
        if let Some(live) = inner.live.get(&key) {
            let _ = live.send(Some(line));
        }
        drop(inner);
        // Distinct timestamps, as a kubelet's nanosecond stamps are.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }

    /// Ends every open follow stream of the container (as a broken connection would).
    pub fn cut(&self, pod: &str, container: &str) {
        let inner = self.inner.lock().unwrap();
        if let Some(live) = inner.live.get(&(pod.to_string(), container.to_string())) {
            let _ = live.send(None);
        }
    }

    pub fn log_requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().log_requests.clone()
    }
}

async fn list_pods(
    State(state): State<KubeStandin>,
    Path(namespace): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let selector: Vec<(String, String)> = query
        .get("labelSelector")
        .map(|s| {
            s.split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let inner = state.inner.lock().unwrap();
    let items: Vec<serde_json::Value> = inner
        .pods
        .iter()
        .filter(|p| p.namespace == namespace)
        .filter(|p| selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
        .map(|p| {
            serde_json::json!({
                "metadata": {
                    "name": p.name,
                    "namespace": p.namespace,
                    "labels": p.labels,
                    "uid": format!("uid-{}", p.name),
                },
                "spec": {
                    "containers": p.containers.iter().map(|c| serde_json::json!({"name": c, "image": "shop:1"})).collect::<Vec<_>>(),
                },
                "status": {"phase": "Running"},
            })
        })
        .collect();
    axum::Json(serde_json::json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "1"},
        "items": items,
    }))
    .into_response()
}

async fn pod_log(
    State(state): State<KubeStandin>,
    Path((_namespace, name)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let container = query.get("container").cloned().unwrap_or_default();
    let key = (name.clone(), container);
    let (history, mut live) = {
        let mut inner = state.inner.lock().unwrap();
        if !inner.pods.iter().any(|p| p.name == name) {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({
                    "kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": format!("pods \"{name}\" not found"), "reason": "NotFound", "code": 404
                })),
            )
                .into_response();
        }
        inner.log_requests.push(
            query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
        );
        let mut history = inner.logs.get(&key).cloned().unwrap_or_default();
        if let Some(seconds) = query
            .get("sinceSeconds")
            .and_then(|s| s.parse::<i64>().ok())
        {
            let since = Utc::now() - chrono::Duration::seconds(seconds);
            history.retain(|(t, _)| *t >= since);
        }
        if let Some(tail) = query.get("tailLines").and_then(|s| s.parse::<usize>().ok()) {
            let skip = history.len().saturating_sub(tail);
            history.drain(..skip);
        }
        let live = inner
            .live
            .entry(key)
            .or_insert_with(|| broadcast::channel(1024).0)
            .subscribe();
        (history, live)
    };
    let format = |(t, text): &LogLine| {
        Bytes::from(format!(
            "{} {text}\n",
            t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        ))
    };
    let head: Vec<Result<Bytes, Infallible>> = history.iter().map(|l| Ok(format(l))).collect();
    let follow = async_stream(move |sender| async move {
        while let Ok(Some(line)) = live.recv().await {
            if sender.send(Ok(format(&line))).await.is_err() {
                break;
            }
        }
    });
    let body = futures::stream::iter(head).chain(follow);
    Response::builder()
        .header("content-type", "text/plain")
        .body(Body::from_stream(body))
        .unwrap()
}

use futures::StreamExt;

/// A stream fed by a task through a channel.
fn async_stream<F, Fut>(task: F) -> impl futures::Stream<Item = Result<Bytes, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Bytes, Infallible>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(task(sender));
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
