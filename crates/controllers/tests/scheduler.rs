//! The scheduler with the simulator against pernode's own API server, in process.

mod common;

use common::{cluster, eventually, pinned_pod, start_simulator};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use pernode_agent::simulator;
use pernode_controllers::scheduler::{self, SchedulerOptions};
use serde_json::json;

fn scheduled_condition(p: &Pod) -> Option<(String, Option<String>, Option<String>)> {
    let c = p
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn binds_fitting_pods_and_reports_the_others() {
    let client = cluster().await;
    simulator::create_nodes(client.clone(), 2, "node")
        .await
        .expect("nodes");
    start_simulator(&client);
    tokio::spawn(scheduler::run(client.clone(), SchedulerOptions::default()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();

    // A daemon-like pod lands on its node and runs.
    pods.create(&pp, &pinned_pod("fits", "node-1", "100m"))
        .await
        .expect("create");
    let p = eventually("fits running", 10, || async {
        pods.get("fits")
            .await
            .ok()
            .filter(pernode_core::pod::is_pod_ready)
    })
    .await;
    assert_eq!(p.spec.and_then(|s| s.node_name).as_deref(), Some("node-1"));

    // Too big for its node: Pending, PodScheduled=False, FailedScheduling event.
    pods.create(&pp, &pinned_pod("huge", "node-2", "8"))
        .await
        .expect("create");
    let (status, reason, message) = eventually("huge unschedulable", 10, || async {
        scheduled_condition(&pods.get("huge").await.ok()?).filter(|c| c.0 == "False")
    })
    .await;
    let want = "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector.";
    assert_eq!(
        (status.as_str(), reason.as_deref(), message.as_deref()),
        ("False", Some("Unschedulable"), Some(want))
    );
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    eventually("FailedScheduling event", 10, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .find(|e| {
                e.reason.as_deref() == Some("FailedScheduling")
                    && e.involved_object.name.as_deref() == Some("huge")
                    && e.message.as_deref() == Some(want)
            })
            .map(|_| ())
    })
    .await;
    let huge = pods.get("huge").await.expect("huge");
    assert_eq!(huge.spec.and_then(|s| s.node_name), None);

    // Another scheduler's pod is left alone.
    let mut other = pinned_pod("other", "node-1", "10m");
    if let Some(s) = other.spec.as_mut() {
        s.scheduler_name = Some("someone-else".into());
    }
    pods.create(&pp, &other).await.expect("create");
    // A pod created after it is bound: the scheduler sees pods in order, so by then it has
    // decided about "other" too.
    pods.create(&pp, &pinned_pod("after-other", "node-1", "10m"))
        .await
        .expect("create");
    eventually("after-other bound", 10, || async {
        pods.get("after-other").await.ok()?.spec?.node_name
    })
    .await;
    let other = pods.get("other").await.expect("other");
    assert_eq!(other.spec.and_then(|s| s.node_name), None);
}

#[tokio::test]
async fn cordoned_nodes_take_only_pods_that_tolerate_it() {
    let client = cluster().await;
    simulator::create_nodes(client.clone(), 1, "node")
        .await
        .expect("nodes");
    start_simulator(&client);
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch(
            "node-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .expect("cordon");
    tokio::spawn(scheduler::run(client.clone(), SchedulerOptions::default()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    pods.create(&pp, &pinned_pod("plain", "node-1", "10m"))
        .await
        .expect("create");
    let mut daemon = pinned_pod("daemon", "node-1", "10m");
    if let Some(s) = daemon.spec.as_mut() {
        s.tolerations = Some(vec![serde_json::from_value(json!({
            "key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"
        }))
        .expect("toleration")]);
    }
    pods.create(&pp, &daemon).await.expect("create");
    eventually("daemon bound", 10, || async {
        pods.get("daemon")
            .await
            .ok()?
            .spec?
            .node_name
            .filter(|n| n == "node-1")
    })
    .await;
    let (_, _, message) = eventually("plain unschedulable", 10, || async {
        scheduled_condition(&pods.get("plain").await.ok()?).filter(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        message.as_deref(),
        Some("0/1 nodes are available: 1 node(s) were unschedulable.")
    );

    // Uncordoning lets it on.
    nodes
        .patch(
            "node-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": null}})),
        )
        .await
        .expect("uncordon");
    eventually("plain bound after uncordon", 10, || async {
        pods.get("plain")
            .await
            .ok()?
            .spec?
            .node_name
            .filter(|n| n == "node-1")
    })
    .await;
}

/// The `Scheduled` event is written in the background: with one bind worker and event writes
/// held back, every pod is still bound, and the events arrive once writes go through.
#[tokio::test]
async fn binding_does_not_wait_for_its_event() {
    use std::sync::Arc;
    use tower::ServiceExt;

    let router = pernode_apiserver::in_memory_router()
        .await
        .expect("api server");
    let events_open = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = events_open.clone();
    let held = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let (router, gate) = (router.clone(), gate.clone());
        async move {
            if req.method() == http::Method::POST && req.uri().path().ends_with("/events") {
                // Held until the test opens the gate (the permit goes back at once).
                let _open = gate.acquire().await;
            }
            router.oneshot(req).await
        }
    });
    let client = kube::Client::new(held, "default");
    simulator::create_nodes(client.clone(), 3, "node")
        .await
        .expect("nodes");
    start_simulator(&client);
    let opts = SchedulerOptions {
        bind_concurrency: 1,
        ..SchedulerOptions::default()
    };
    tokio::spawn(scheduler::run(client.clone(), opts));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 1..=3 {
        let pod = pinned_pod(&format!("p{i}"), &format!("node-{i}"), "10m");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create");
    }
    for i in 1..=3 {
        eventually(&format!("p{i} bound while events are held"), 10, || async {
            pods.get(&format!("p{i}")).await.ok()?.spec?.node_name
        })
        .await;
    }
    events_open.add_permits(1);
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let scheduled = eventually("three Scheduled events", 10, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        let n = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
            .count();
        (n == 3).then_some(n)
    })
    .await;
    assert_eq!(scheduled, 3);
}

/// Events go out at the event client's rate: with 4 a second after a burst of 1, six
/// `Scheduled` events reach the API server over at least 1.25 s, however fast the six
/// bindings were.
#[tokio::test]
async fn events_are_spaced_by_the_event_rate_limit() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    use tower::ServiceExt;

    let router = pernode_apiserver::in_memory_router()
        .await
        .expect("api server");
    let posted: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = posted.clone();
    let timed = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        if req.method() == http::Method::POST && req.uri().path().ends_with("/events") {
            log.lock().expect("lock").push(Instant::now());
        }
        router.clone().oneshot(req)
    });
    let client = kube::Client::new(timed, "default");
    simulator::create_nodes(client.clone(), 6, "node")
        .await
        .expect("nodes");
    start_simulator(&client);
    let opts = SchedulerOptions {
        event_qps: 4.0,
        event_burst: 1.0,
        ..SchedulerOptions::default()
    };
    tokio::spawn(scheduler::run(client.clone(), opts));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 1..=6 {
        let pod = pinned_pod(&format!("p{i}"), &format!("node-{i}"), "10m");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create");
    }
    let times = eventually("six events posted", 20, || async {
        let t = posted.lock().expect("lock").clone();
        (t.len() >= 6).then_some(t)
    })
    .await;
    let span = times[5].duration_since(times[0]);
    assert!(
        span >= Duration::from_millis(1200),
        "six events after a burst of one at 4/s take 1.25 s; they took {span:?}"
    );
}
