//! The node lifecycle controller against pernode's own API server, in process: a hand-driven
//! "kubelet" (the test posts the node's status and renews its lease) next to simulated nodes
//! that keep the zone healthy.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{cluster, eventually, start_simulator};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use pernode_agent::simulator;
use pernode_controllers::node_lifecycle::{self, NodeLifecycleOptions};
use serde_json::json;

const LEASE_NS: &str = "kube-node-lease";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";

fn fast_opts() -> NodeLifecycleOptions {
    NodeLifecycleOptions {
        node_monitor_grace_period: Duration::from_secs(1),
        node_monitor_period: Duration::from_millis(100),
        ..Default::default()
    }
}

/// Create a node that no simulator runs, with a Ready condition of `ready` and a lease.
async fn manual_node(client: &kube::Client, name: &str, ready: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }))
    .expect("node literal");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    post_status(client, name, ready, &[]).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": LEASE_NS}})).expect("ns literal");
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("lease namespace: {e}"),
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NS);
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": LEASE_NS},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 1,
                 "renewTime": MicroTime(Timestamp::now())},
    }))
    .expect("lease literal");
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("create lease");
}

/// What a kubelet posts: Ready (and any `extra` conditions) with a fresh heartbeat.
async fn post_status(client: &kube::Client, name: &str, ready: &str, extra: &[(&str, &str)]) {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now());
    let mut conditions = vec![json!({
        "type": "Ready", "status": ready, "reason": "KubeletReady",
        "message": "posted by the test", "lastHeartbeatTime": now, "lastTransitionTime": now,
    })];
    for (t, s) in extra {
        conditions.push(json!({"type": t, "status": s, "lastHeartbeatTime": now,
                               "lastTransitionTime": now}));
    }
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": conditions}})),
        )
        .await
        .expect("post node status");
}

/// Renew `name`'s lease every 100 ms while `alive` is set.
fn renew_lease(client: &kube::Client, name: &str, alive: Arc<AtomicBool>) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NS);
    let name = name.to_string();
    tokio::spawn(async move {
        loop {
            if alive.load(Ordering::SeqCst) {
                let patch = json!({"spec": {"renewTime": MicroTime(Timestamp::now())}});
                let _ = leases
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

async fn node_taints(client: &kube::Client, name: &str) -> Option<Vec<Taint>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let n = nodes.get(name).await.ok()?;
    Some(n.spec.and_then(|s| s.taints).unwrap_or_default())
}

fn has(taints: &[Taint], key: &str, effect: &str) -> bool {
    taints.iter().any(|t| t.key == key && t.effect == effect)
}

fn bound_pod(name: &str, node: &str, tolerations: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "tolerations": tolerations,
                 "containers": [{"name": "c", "image": "nginx:1.27"}]},
    }))
    .expect("pod literal")
}

async fn event_messages(client: &kube::Client) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("TaintManagerEviction"))
                .filter_map(|e| e.message)
                .collect()
        })
        .unwrap_or_default()
}

fn terminating(p: &Option<Pod>) -> bool {
    match p {
        None => true,
        Some(p) => p.metadata.deletion_timestamp.is_some(),
    }
}

#[tokio::test]
async fn a_silent_node_goes_unknown_is_tainted_and_evicts_by_tolerations() {
    let client = cluster().await;
    // Healthy simulated nodes keep the zone out of full disruption.
    simulator::create_nodes(client.clone(), 2, "node")
        .await
        .expect("nodes");
    start_simulator(&client);
    manual_node(&client, "edge", "True").await;
    let alive = Arc::new(AtomicBool::new(true));
    renew_lease(&client, "edge", alive.clone());
    tokio::spawn(node_lifecycle::run(client.clone(), fast_opts()));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    let forever = json!([
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
    ]);
    pods.create(&pp, &bound_pod("daemon", "edge", forever))
        .await
        .expect("pod");
    let short = json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]);
    pods.create(&pp, &bound_pod("short", "edge", short))
        .await
        .expect("pod");
    let zero = json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}]);
    pods.create(&pp, &bound_pod("zero", "edge", zero))
        .await
        .expect("pod");
    // Admission gives this one the default 300 s tolerations.
    pods.create(&pp, &bound_pod("patient", "edge", json!([])))
        .await
        .expect("pod");

    // The "kubelet" reports the daemon pod running and ready.
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now());
    let running = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    let daemon = pods
        .patch_status(
            "daemon",
            &PatchParams::default(),
            &Patch::Strategic(running),
        )
        .await
        .expect("daemon status");
    assert!(pernode_core::pod::is_pod_ready(&daemon));

    // While the lease is renewed, the node keeps its status and has no taints, well past the
    // grace period.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let taints = node_taints(&client, "edge").await.expect("node");
    assert!(taints.is_empty(), "a live node got taints: {taints:?}");

    // The kubelet goes silent.
    alive.store(false, Ordering::SeqCst);
    let nodes: Api<Node> = Api::all(client.clone());
    let node = eventually("edge Unknown", 10, || async {
        let n = nodes.get("edge").await.ok()?;
        let ready = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        (ready.status == "Unknown").then_some(n)
    })
    .await;
    let conditions = node.status.and_then(|s| s.conditions).expect("conditions");
    for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = conditions.iter().find(|c| c.type_ == t).expect(t);
        assert_eq!(c.status, "Unknown", "{t}");
    }
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );

    let taints = eventually("unreachable taints", 10, || async {
        let t = node_taints(&client, "edge").await?;
        (has(&t, UNREACHABLE, "NoSchedule") && has(&t, UNREACHABLE, "NoExecute")).then_some(t)
    })
    .await;
    let time_added = taints
        .iter()
        .find(|t| t.key == UNREACHABLE && t.effect == "NoExecute")
        .and_then(|t| t.time_added.clone())
        .expect("NoExecute taint has timeAdded")
        .0;

    // tolerationSeconds 0: at once. tolerationSeconds 2: two seconds after the taint.
    eventually("zero evicted", 10, || async {
        terminating(&pods.get_opt("zero").await.ok()?).then_some(())
    })
    .await;
    let short = eventually("short evicted", 10, || async {
        let p = pods.get_opt("short").await.ok()?;
        terminating(&p).then_some(p)
    })
    .await;
    if let Some(p) = short {
        let c = p
            .status
            .and_then(|s| s.conditions)
            .and_then(|cs| cs.into_iter().find(|c| c.type_ == "DisruptionTarget"))
            .expect("DisruptionTarget condition");
        assert_eq!(c.status, "True");
        assert_eq!(c.reason.as_deref(), Some("DeletionByTaintManager"));
        let at = c.last_transition_time.expect("transition time").0;
        // Times are kept to the second: compare whole seconds.
        assert!(
            at.as_second() >= time_added.as_second() + 2,
            "evicted at {at}, taint added at {time_added}"
        );
    }
    // Pods of a node that is not ready are not ready.
    eventually("daemon pod not ready", 10, || async {
        let p = pods.get("daemon").await.ok()?;
        (!pernode_core::pod::is_pod_ready(&p)).then_some(())
    })
    .await;
    // Daemon pods tolerate unreachable forever; the default 300 s is far away.
    for name in ["daemon", "patient"] {
        let p = pods.get(name).await.expect(name);
        assert!(
            p.metadata.deletion_timestamp.is_none(),
            "{name} was evicted"
        );
    }
    let messages = eventually("marking events", 10, || async {
        let m = event_messages(&client).await;
        m.contains(&"Marking for deletion Pod default/short".to_string())
            .then_some(m)
    })
    .await;
    assert!(messages.contains(&"Marking for deletion Pod default/zero".to_string()));
    assert!(!messages.iter().any(|m| m.contains("default/daemon")));

    // The kubelet comes back: the taints go and the pending eviction is cancelled.
    alive.store(true, Ordering::SeqCst);
    post_status(&client, "edge", "True", &[]).await;
    eventually("taints removed", 10, || async {
        let t = node_taints(&client, "edge").await?;
        (!t.iter().any(|t| t.key == UNREACHABLE || t.key == NOT_READY)).then_some(())
    })
    .await;
    eventually("cancel event", 10, || async {
        event_messages(&client)
            .await
            .contains(&"Cancelling deletion of Pod default/patient".to_string())
            .then_some(())
    })
    .await;
    assert!(
        pods.get("patient")
            .await
            .expect("patient")
            .metadata
            .deletion_timestamp
            .is_none()
    );
    // The simulated nodes were never touched.
    for n in ["node-1", "node-2"] {
        let t = node_taints(&client, n).await.expect("node");
        assert!(t.is_empty(), "{n} got taints: {t:?}");
    }
}

#[tokio::test]
async fn conditions_and_cordoning_drive_no_schedule_taints_and_not_ready_taints() {
    let client = cluster().await;
    simulator::create_nodes(client.clone(), 1, "node")
        .await
        .expect("nodes");
    start_simulator(&client);
    manual_node(&client, "box", "True").await;
    let nodes: Api<Node> = Api::all(client.clone());
    let foreign =
        json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}});
    nodes
        .patch("box", &PatchParams::default(), &Patch::Merge(foreign))
        .await
        .expect("taint");
    let alive = Arc::new(AtomicBool::new(true));
    renew_lease(&client, "box", alive);
    let opts = NodeLifecycleOptions {
        node_monitor_grace_period: Duration::from_secs(30),
        ..fast_opts()
    };
    tokio::spawn(node_lifecycle::run(client.clone(), opts));

    // Pressure conditions and a cordon.
    post_status(
        &client,
        "box",
        "True",
        &[
            ("MemoryPressure", "True"),
            ("DiskPressure", "True"),
            ("PIDPressure", "True"),
            ("NetworkUnavailable", "True"),
        ],
    )
    .await;
    nodes
        .patch(
            "box",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .expect("cordon");
    let want = [
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/network-unavailable",
        "node.kubernetes.io/unschedulable",
    ];
    eventually("condition taints", 10, || async {
        let t = node_taints(&client, "box").await?;
        want.iter().all(|k| has(&t, k, "NoSchedule")).then_some(())
    })
    .await;

    // Causes gone: taints gone, the foreign taint stays.
    post_status(
        &client,
        "box",
        "True",
        &[
            ("MemoryPressure", "False"),
            ("DiskPressure", "False"),
            ("PIDPressure", "False"),
            ("NetworkUnavailable", "False"),
        ],
    )
    .await;
    nodes
        .patch(
            "box",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": false}})),
        )
        .await
        .expect("uncordon");
    let t = eventually("condition taints removed", 10, || async {
        let t = node_taints(&client, "box").await?;
        (t.len() == 1).then_some(t)
    })
    .await;
    assert_eq!(t[0].key, "dedicated");

    // Ready=False: not-ready NoSchedule and NoExecute; Ready=True: removed.
    post_status(&client, "box", "False", &[]).await;
    eventually("not-ready taints", 10, || async {
        let t = node_taints(&client, "box").await?;
        (has(&t, NOT_READY, "NoSchedule") && has(&t, NOT_READY, "NoExecute")).then_some(())
    })
    .await;
    post_status(&client, "box", "True", &[]).await;
    eventually("not-ready taints removed", 10, || async {
        let t = node_taints(&client, "box").await?;
        (t.len() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn untolerated_no_execute_taints_evict_at_once_and_removal_cancels() {
    let client = cluster().await;
    simulator::create_nodes(client.clone(), 1, "node")
        .await
        .expect("nodes");
    start_simulator(&client);
    tokio::spawn(node_lifecycle::run(client.clone(), fast_opts()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    pods.create(&pp, &bound_pod("plain", "node-1", json!([])))
        .await
        .expect("pod");
    let tolerant = json!([{"key": "maintenance", "operator": "Exists", "effect": "NoExecute",
                           "tolerationSeconds": 300}]);
    pods.create(&pp, &bound_pod("tolerant", "node-1", tolerant))
        .await
        .expect("pod");
    eventually("pods running", 10, || async {
        let a = pods.get("plain").await.ok()?;
        let b = pods.get("tolerant").await.ok()?;
        (pernode_core::pod::is_pod_ready(&a) && pernode_core::pod::is_pod_ready(&b)).then_some(())
    })
    .await;

    let nodes: Api<Node> = Api::all(client.clone());
    let taint = json!({"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}});
    nodes
        .patch("node-1", &PatchParams::default(), &Patch::Merge(taint))
        .await
        .expect("taint");
    // No toleration: deleted (and, on a simulated node, gone).
    eventually("plain gone", 10, || async {
        pods.get_opt("plain").await.ok()?.is_none().then_some(())
    })
    .await;
    // `plain` went in the same pass that scheduled `tolerant`'s eviction (300 s away).
    nodes
        .patch(
            "node-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": null}})),
        )
        .await
        .expect("untaint");
    eventually("cancel event", 10, || async {
        event_messages(&client)
            .await
            .contains(&"Cancelling deletion of Pod default/tolerant".to_string())
            .then_some(())
    })
    .await;
    let p = pods.get("tolerant").await.expect("tolerant");
    assert!(p.metadata.deletion_timestamp.is_none());
}

#[tokio::test]
async fn when_every_node_is_down_no_execute_taints_are_held_back() {
    let client = cluster().await;
    manual_node(&client, "only", "True").await;
    let alive = Arc::new(AtomicBool::new(true));
    renew_lease(&client, "only", alive.clone());
    tokio::spawn(node_lifecycle::run(client.clone(), fast_opts()));
    alive.store(false, Ordering::SeqCst);
    // Unknown and unschedulable, but with the whole cluster down upstream assumes the fault is
    // on the control plane's side and evicts nothing.
    eventually("unreachable NoSchedule", 10, || async {
        let t = node_taints(&client, "only").await?;
        has(&t, UNREACHABLE, "NoSchedule").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = node_taints(&client, "only").await.expect("node");
    assert!(!has(&t, UNREACHABLE, "NoExecute"), "{t:?}");
}
