//! `kubectl scale` as the only step: replicas of a sensor follow their
//! StatefulSet's `spec.replicas` through a stand-in Kubernetes API server
//! (the real path and JSON, read by the real `kube` client) while it goes
//! 1 → 3 → 2, and after each change settles every rule has exactly one owner.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::get;
use inspector_membership::{Membership, Resolved};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Standin {
    replicas: Arc<AtomicI32>,
    reads: Arc<AtomicU64>,
}

async fn get_statefulset(
    State(standin): State<Standin>,
    Path((namespace, name)): Path<(String, String)>,
) -> Json<serde_json::Value> {
    standin.reads.fetch_add(1, Ordering::Relaxed);
    Json(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "spec": {
            "replicas": standin.replicas.load(Ordering::Relaxed),
            "serviceName": name,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {}, "spec": {"containers": []}}
        }
    }))
}

async fn start(standin: &Standin) -> kube::Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route(
            "/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}",
            get(get_statefulset),
        )
        .with_state(standin.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap()
}

fn replica(client: &kube::Client, index: u32, shutdown: &CancellationToken) -> Membership {
    Membership::follow(
        client.clone(),
        Resolved {
            name: "trend-predictor".into(),
            namespace: "inspector".into(),
            index,
        },
        Duration::from_millis(20),
        shutdown.clone(),
    )
}

/// Waits until every replica has seen `count` replicas.
async fn settle(replicas: &mut [Membership], count: u32) {
    for membership in replicas.iter_mut() {
        tokio::time::timeout(Duration::from_secs(10), async {
            while membership.current().map(|s| s.count) != Some(count) {
                assert!(membership.changed().await, "membership task ended");
            }
        })
        .await
        .unwrap_or_else(|_| panic!("replica never saw {count} replicas"));
    }
}

fn owners(replicas: &[Membership], rule: &str) -> Vec<u32> {
    replicas
        .iter()
        .filter(|m| m.owns(rule))
        .map(|m| m.current().unwrap().index)
        .collect()
}

#[tokio::test]
async fn scaling_one_three_two_leaves_every_rule_with_one_owner() {
    let standin = Standin::default();
    let client = start(&standin).await;
    let shutdown = CancellationToken::new();
    let rules: Vec<String> = (0..600).map(|i| format!("rule_{i}")).collect();

    standin.replicas.store(1, Ordering::Relaxed);
    let mut replicas = vec![replica(&client, 0, &shutdown)];
    settle(&mut replicas, 1).await;
    for rule in &rules {
        assert_eq!(owners(&replicas, rule), vec![0], "{rule} at 1 replica");
    }

    // kubectl scale --replicas=3: pods 1 and 2 start and read the new count.
    standin.replicas.store(3, Ordering::Relaxed);
    replicas.push(replica(&client, 1, &shutdown));
    replicas.push(replica(&client, 2, &shutdown));
    settle(&mut replicas, 3).await;
    let at_three: Vec<u32> = rules
        .iter()
        .map(|rule| {
            let owners = owners(&replicas, rule);
            assert_eq!(owners.len(), 1, "{rule} at 3 replicas: {owners:?}");
            owners[0]
        })
        .collect();
    for index in 0..3 {
        let share = at_three.iter().filter(|&&o| o == index).count();
        assert!(share > 150, "replica {index} owns only {share} of 600");
    }

    // kubectl scale --replicas=2: pod 2 is still running while it stops;
    // it must own nothing, and only its rules move.
    standin.replicas.store(2, Ordering::Relaxed);
    settle(&mut replicas, 2).await;
    let mut moved = 0;
    for (rule, before) in rules.iter().zip(&at_three) {
        let owners = owners(&replicas, rule);
        assert_eq!(owners.len(), 1, "{rule} at 2 replicas: {owners:?}");
        if owners[0] != *before {
            assert_eq!(*before, 2, "{rule} moved from a replica that stayed");
            moved += 1;
        }
    }
    assert_eq!(moved, at_three.iter().filter(|&&o| o == 2).count());
    assert!(standin.reads.load(Ordering::Relaxed) > 0);
    shutdown.cancel();
}

#[tokio::test]
async fn an_unreachable_api_keeps_the_last_share_and_counts_errors() {
    let standin = Standin::default();
    standin.replicas.store(2, Ordering::Relaxed);
    let client = start(&standin).await;
    let shutdown = CancellationToken::new();
    // A replica pointed at a StatefulSet path the stand-in does not serve.
    let lost = Membership::follow(
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap(),
        Resolved {
            name: "x".into(),
            namespace: "y".into(),
            index: 0,
        },
        Duration::from_millis(20),
        shutdown.clone(),
    );
    let mut known = vec![replica(&client, 1, &shutdown)];
    settle(&mut known, 2).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while lost.lookup_errors() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("errors counted");
    assert_eq!(lost.current(), None, "unknown share owns nothing");
    assert!(!lost.owns("rule_1"));
    shutdown.cancel();
}
