//! Pod → owner lookups through the real `kube` client against a stand-in
//! API server (the real paths and JSON: pods, replicasets, jobs, and
//! `Status` errors), with real nats-server and redis-server: a CronJob's
//! pod metric joins the CronJob's log incident; with the API forbidden the
//! scope falls back to pod naming, the refusal is counted, and later
//! batches do not ask again within `retry_after`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{Aggregator, Env};
use inspector_aggregator::AggregatorMetrics;
use inspector_aggregator::config::OwnerApi;
use inspector_aggregator::owners::OutcomeLabels;
use inspector_domain::scope::Resolution;
use inspector_domain::{Finding, Scope, WorkloadKind};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// Resource (plural), namespace, name.
type ObjectKey = (String, String, String);

#[derive(Clone, Default)]
struct Standin {
    objects: Arc<Mutex<BTreeMap<ObjectKey, serde_json::Value>>>,
    forbidden: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

fn meta(namespace: &str, name: &str, owner: Option<(&str, &str, &str)>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        owner_references: owner.map(|(api_version, kind, name)| {
            vec![OwnerReference {
                api_version: api_version.into(),
                kind: kind.into(),
                name: name.into(),
                uid: format!("uid-{name}"),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]
        }),
        ..Default::default()
    }
}

impl Standin {
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new()
            .route(
                "/api/v1/namespaces/{namespace}/pods/{name}",
                get(|s, p| object(s, p, "pods")),
            )
            .route(
                "/apis/apps/v1/namespaces/{namespace}/replicasets/{name}",
                get(|s, p| object(s, p, "replicasets")),
            )
            .route(
                "/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
                get(|s, p| object(s, p, "jobs")),
            )
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn put(&self, resource: &str, namespace: &str, name: &str, value: serde_json::Value) {
        self.objects
            .lock()
            .unwrap()
            .insert((resource.into(), namespace.into(), name.into()), value);
    }

    /// A CronJob `backup`'s Job and pod, and a Deployment `api`'s ReplicaSet
    /// and pod, in namespace `batch`.
    fn cluster(&self) {
        let job = Job {
            metadata: meta(
                "batch",
                "backup-28734560",
                Some(("batch/v1", "CronJob", "backup")),
            ),
            ..Default::default()
        };
        self.put(
            "jobs",
            "batch",
            "backup-28734560",
            serde_json::to_value(job).unwrap(),
        );
        let pod = Pod {
            metadata: meta(
                "batch",
                "backup-28734560-x9k2p",
                Some(("batch/v1", "Job", "backup-28734560")),
            ),
            ..Default::default()
        };
        self.put(
            "pods",
            "batch",
            "backup-28734560-x9k2p",
            serde_json::to_value(pod).unwrap(),
        );
        let rs = ReplicaSet {
            metadata: meta(
                "batch",
                "api-6d4cf56db6",
                Some(("apps/v1", "Deployment", "api")),
            ),
            ..Default::default()
        };
        self.put(
            "replicasets",
            "batch",
            "api-6d4cf56db6",
            serde_json::to_value(rs).unwrap(),
        );
        let pod = Pod {
            metadata: meta(
                "batch",
                "api-6d4cf56db6-q7zvm",
                Some(("apps/v1", "ReplicaSet", "api-6d4cf56db6")),
            ),
            ..Default::default()
        };
        self.put(
            "pods",
            "batch",
            "api-6d4cf56db6-q7zvm",
            serde_json::to_value(pod).unwrap(),
        );
    }
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    (code, axum::Json(body)).into_response()
}

async fn object(
    State(standin): State<Standin>,
    Path((namespace, name)): Path<(String, String)>,
    resource: &str,
) -> Response {
    standin.requests.fetch_add(1, Ordering::SeqCst);
    if standin.forbidden.load(Ordering::SeqCst) {
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{resource} \"{name}\" is forbidden: User \"system:serviceaccount:proactive-inspector:aggregator\" cannot get resource \"{resource}\""
            ),
        );
    }
    let found = standin
        .objects
        .lock()
        .unwrap()
        .get(&(resource.to_string(), namespace, name.clone()))
        .cloned();
    match found {
        Some(object) => axum::Json(object).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{resource} \"{name}\" not found"),
        ),
    }
}

use inspector_domain::fixtures::labelled;

fn pod_metric(metric: &str, pod: &str) -> Finding {
    let now = chrono::Utc::now();
    labelled(
        inspector_domain::fixtures::anomaly(metric, "baseline-0", now),
        &[("namespace", "batch"), ("pod", pod)],
    )
}

fn backup_log() -> Finding {
    let now = chrono::Utc::now();
    labelled(
        inspector_domain::fixtures::log_pattern("backup", "upload of <*> failed: <*>", now),
        &[("namespace", "batch"), ("workload", "backup")],
    )
}

fn count(metrics: &AggregatorMetrics, outcome: &'static str) -> u64 {
    metrics
        .owner_lookups
        .get_or_create(&OutcomeLabels { outcome })
        .get()
}

async fn start(env: &Env, standin: &Standin) -> (Aggregator, AggregatorMetrics) {
    let mut config = env.config();
    config.incidents.owners.api = OwnerApi::Url(standin.start().await);
    // Generous: a loaded CI machine must not turn a lookup into a fallback.
    config.incidents.owners.timeout = Duration::from_secs(5);
    let metrics = AggregatorMetrics::default();
    let aggregator = Aggregator::start_with(config, "agg-0", metrics.clone()).await;
    (aggregator, metrics)
}

fn scopes(report: &inspector_domain::InspectionReport) -> Vec<Scope> {
    report
        .incidents
        .iter()
        .flat_map(|incident| incident.members.iter().map(|m| m.scope.clone()))
        .collect()
}

#[tokio::test]
async fn a_cronjob_pods_metric_joins_the_cronjobs_log_incident() {
    let env = Env::start();
    let standin = Standin::default();
    standin.cluster();
    let (aggregator, metrics) = start(&env, &standin).await;
    let bus = env.bus().await;
    let story = [
        pod_metric("backup_duration_seconds", "backup-28734560-x9k2p"),
        backup_log(),
        pod_metric("http_errors_per_second", "api-6d4cf56db6-q7zvm"),
        pod_metric("queue_depth", "gone-6d4cf56db6-q7zvm"),
    ];
    for finding in &story {
        bus.publish_finding(finding).await.unwrap();
    }
    aggregator.wait_processed(story.len() as u64).await;
    let report = aggregator.report_now().await;
    let backup = report
        .incidents
        .iter()
        .find(|i| i.members.iter().any(|m| m.key == story[1].dedup_key()))
        .expect("an incident holds the backup log");
    assert_eq!(backup.members.len(), 2, "{:#?}", report.incidents);
    let by_api = Scope::Workload {
        namespace: Some("batch".into()),
        name: "backup".into(),
        kind: WorkloadKind::CronJob,
        resolved_by: Resolution::KubernetesApi,
    };
    assert!(scopes(&report).contains(&by_api), "{:#?}", scopes(&report));
    assert!(scopes(&report).contains(&Scope::Workload {
        namespace: Some("batch".into()),
        name: "api".into(),
        kind: WorkloadKind::Deployment,
        resolved_by: Resolution::KubernetesApi,
    }));
    // A pod the API does not know falls back to its name.
    assert!(scopes(&report).contains(&Scope::Workload {
        namespace: Some("batch".into()),
        name: "gone".into(),
        kind: WorkloadKind::Deployment,
        resolved_by: Resolution::PodNaming,
    }));
    assert_eq!(count(&metrics, "resolved"), 2);
    assert_eq!(count(&metrics, "not_found"), 1);

    // Cached: the same pods again ask the API nothing.
    let asked = standin.requests.load(Ordering::SeqCst);
    let again = pod_metric("backup_bytes", "backup-28734560-x9k2p");
    bus.publish_finding(&again).await.unwrap();
    aggregator.wait_processed(story.len() as u64 + 1).await;
    assert_eq!(standin.requests.load(Ordering::SeqCst), asked);
    aggregator.stop().await;
}

#[tokio::test]
async fn a_forbidden_api_falls_back_to_pod_naming_and_pauses() {
    let env = Env::start();
    let standin = Standin::default();
    standin.cluster();
    standin.forbidden.store(true, Ordering::SeqCst);
    let (aggregator, metrics) = start(&env, &standin).await;
    let bus = env.bus().await;
    bus.publish_finding(&pod_metric(
        "backup_duration_seconds",
        "backup-28734560-x9k2p",
    ))
    .await
    .unwrap();
    aggregator.wait_processed(1).await;
    assert_eq!(count(&metrics, "forbidden"), 1);
    let asked = standin.requests.load(Ordering::SeqCst);
    // Within retry_after nothing is asked; intake goes on.
    bus.publish_finding(&pod_metric(
        "http_errors_per_second",
        "api-6d4cf56db6-q7zvm",
    ))
    .await
    .unwrap();
    aggregator.wait_processed(2).await;
    assert_eq!(standin.requests.load(Ordering::SeqCst), asked);
    assert_eq!(count(&metrics, "skipped"), 1);
    let report = aggregator.report_now().await;
    let scopes = scopes(&report);
    assert!(
        scopes.contains(&Scope::Workload {
            namespace: Some("batch".into()),
            name: "backup-28734560".into(),
            kind: WorkloadKind::Unknown,
            resolved_by: Resolution::PodNaming,
        }),
        "{scopes:#?}"
    );
    assert!(scopes.contains(&Scope::Workload {
        namespace: Some("batch".into()),
        name: "api".into(),
        kind: WorkloadKind::Deployment,
        resolved_by: Resolution::PodNaming,
    }));
    assert_eq!(report.findings.len(), 2);
    aggregator.stop().await;
}
