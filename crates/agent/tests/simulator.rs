//! The simulator against pernode's own API server, in process.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use pernode_agent::simulator::{self, SimulatorOptions};
use serde_json::json;

async fn cluster() -> kube::Client {
    let router = pernode_apiserver::in_memory_router()
        .await
        .expect("api server");
    kube::Client::new(router, "default")
}

fn fast() -> SimulatorOptions {
    SimulatorOptions {
        heartbeat_interval: Duration::from_millis(300),
        node_status_interval: Duration::from_millis(300),
        image_pull_backoff_delay: Duration::from_millis(200),
        ..Default::default()
    }
}

/// Poll `f` until it yields Some, for up to 10 s.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(name: &str, node: &str, image: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": image}]},
    }))
    .expect("pod literal")
}

fn condition(node: &Node, t: &str) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

/// As each kubelet watches only its node's pods, the simulator watches only bound pods.
#[tokio::test]
async fn the_simulator_watches_bound_pods_only() {
    use std::sync::{Arc, Mutex};
    use tower::ServiceExt;

    let router = pernode_apiserver::in_memory_router()
        .await
        .expect("api server");
    let pod_watches: Arc<Mutex<Vec<String>>> = Arc::default();
    let service = {
        let pod_watches = pod_watches.clone();
        tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let query = req.uri().query().unwrap_or("").to_string();
            if req.uri().path() == "/api/v1/pods" && query.contains("watch=true") {
                pod_watches
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(query);
            }
            router.clone().oneshot(req)
        })
    };
    let client = kube::Client::new(service, "default");
    tokio::spawn(simulator::run(client.clone(), fast()));
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &simulator::simulated_node("n1"))
        .await
        .expect("create node");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("bound", "n1", "img"))
        .await
        .expect("create pod");
    eventually("the bound pod running", || async {
        let p = pods.get("bound").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let watches = pod_watches
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    assert!(!watches.is_empty());
    for query in watches {
        assert!(
            query.contains("fieldSelector=spec.nodeName%21%3D"),
            "a pod watch for every pod: {query}"
        );
    }
}

#[tokio::test]
async fn nodes_get_ready_with_a_lease_and_keep_foreign_conditions() {
    let client = cluster().await;
    simulator::create_nodes(client.clone(), 2, "node")
        .await
        .expect("create nodes");
    tokio::spawn(simulator::run(client.clone(), fast()));
    let nodes: Api<Node> = Api::all(client.clone());
    let n = eventually("node-1 Ready", || async {
        nodes
            .get("node-1")
            .await
            .ok()
            .filter(|n| condition(n, "Ready").as_deref() == Some("True"))
    })
    .await;
    let status = n.status.clone().expect("status");
    assert_eq!(
        status
            .allocatable
            .as_ref()
            .and_then(|a| a.get("cpu"))
            .map(|q| q.0.as_str()),
        Some("4")
    );
    assert_eq!(
        status
            .capacity
            .as_ref()
            .and_then(|a| a.get("pods"))
            .map(|q| q.0.as_str()),
        Some("110")
    );
    let info = status.node_info.expect("nodeInfo");
    assert!(info.kubelet_version.starts_with("v1.33."));
    assert!(info.container_runtime_version.starts_with("pernode-sim://"));
    assert!(
        status
            .addresses
            .unwrap_or_default()
            .iter()
            .any(|a| a.type_ == "InternalIP")
    );

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let first = eventually("lease", || async { leases.get("node-2").await.ok() }).await;
    let renewed = first.spec.as_ref().and_then(|s| s.renew_time.clone());
    assert_eq!(
        first
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref()),
        Some("node-2")
    );
    eventually("lease renewal", || async {
        let l = leases.get("node-2").await.ok()?;
        (l.spec?.renew_time != renewed).then_some(())
    })
    .await;

    // A network plugin's condition survives the kubelet's heartbeats.
    let patch = json!({"status": {"conditions": [{"type": "NetworkUnavailable", "status": "True", "reason": "NoRouteCreated"}]}});
    nodes
        .patch_status("node-1", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("patch");
    let before = nodes
        .get("node-1")
        .await
        .expect("node")
        .metadata
        .resource_version;
    let after = eventually("another heartbeat", || async {
        let n = nodes.get("node-1").await.ok()?;
        (n.metadata.resource_version != before).then_some(n)
    })
    .await;
    assert_eq!(
        condition(&after, "NetworkUnavailable").as_deref(),
        Some("True")
    );
    assert_eq!(condition(&after, "Ready").as_deref(), Some("True"));
}

#[tokio::test]
async fn pods_run_fail_and_terminate() {
    let client = cluster().await;
    simulator::create_nodes(client.clone(), 1, "node")
        .await
        .expect("create nodes");
    tokio::spawn(simulator::run(client.clone(), fast()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    pods.create(&pp, &pod("ok", "node-1", "nginx:1.27"))
        .await
        .expect("create");
    pods.create(&pp, &pod("bad", "node-1", "nginx:1.27-bad"))
        .await
        .expect("create");
    let mut exit = pod("exit", "node-1", "nginx:1.27");
    exit.metadata.annotations =
        Some([("pernode.io/simulate-exit".to_string(), "3".to_string())].into());
    pods.create(&pp, &exit).await.expect("create");

    let ok = eventually("ok running", || async {
        pods.get("ok")
            .await
            .ok()
            .filter(pernode_core::pod::is_pod_ready)
    })
    .await;
    let st = ok.status.expect("status");
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert!(st.pod_ip.is_some() && st.host_ip.is_some() && st.start_time.is_some());
    let cs = st.container_statuses.expect("container statuses");
    assert!(cs[0].ready && cs[0].started == Some(true));

    eventually("image pull back-off", || async {
        let p = pods.get("bad").await.ok()?;
        let st = p.status?;
        let reason = st
            .container_statuses?
            .first()?
            .state
            .clone()?
            .waiting?
            .reason?;
        (st.phase.as_deref() == Some("Pending") && reason == "ImagePullBackOff").then_some(())
    })
    .await;

    let failed = eventually("exit fails", || async {
        pods.get("exit")
            .await
            .ok()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
    })
    .await;
    let code = failed
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|c| c[0].state.clone())
        .and_then(|s| s.terminated)
        .map(|t| t.exit_code);
    assert_eq!(code, Some(3));
    // Never revived: poke the failed pod (an update the simulator sees), then wait until a pod
    // created afterwards runs, so the simulator has handled the poke.
    pods.patch(
        "exit",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"poked": "yes"}}})),
    )
    .await
    .expect("poke");
    pods.create(&pp, &pod("after-exit", "node-1", "nginx:1.27"))
        .await
        .expect("create");
    eventually("after-exit running", || async {
        pods.get("after-exit")
            .await
            .ok()
            .filter(pernode_core::pod::is_pod_ready)
    })
    .await;
    let still = pods.get("exit").await.expect("exit");
    assert_eq!(
        still.status.and_then(|s| s.phase).as_deref(),
        Some("Failed")
    );

    // A graceful delete (30 s) finishes within the scaled-down grace period.
    pods.delete("ok", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("ok gone", || async {
        pods.get_opt("ok").await.ok().filter(Option::is_none)
    })
    .await;
}

/// A node given its own capacity (what `whatif` copies from a live node) reports it, the
/// others the profile's.
#[tokio::test]
async fn a_node_with_its_own_capacity_reports_it() {
    let client = cluster().await;
    simulator::create_nodes(client.clone(), 2, "node")
        .await
        .expect("create nodes");
    let own = [(
        "node-2".to_string(),
        [("cpu", "500m"), ("memory", "1Gi"), ("pods", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )];
    let opts = SimulatorOptions {
        capacity_by_node: std::sync::Arc::new(own.into_iter().collect()),
        ..fast()
    };
    tokio::spawn(simulator::run(client.clone(), opts));
    let nodes: Api<Node> = Api::all(client.clone());
    let cpu = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get("cpu"))
            .map(|q| q.0.clone())
    };
    for (node, want) in [("node-1", "4"), ("node-2", "500m")] {
        eventually(node, || async {
            nodes
                .get(node)
                .await
                .ok()
                .filter(|n| condition(n, "Ready").as_deref() == Some("True"))
                .filter(|n| cpu(n).as_deref() == Some(want))
        })
        .await;
    }
}
