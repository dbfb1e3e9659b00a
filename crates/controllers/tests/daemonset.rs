//! The DaemonSet controller against pernode's own API server, in process, with the scheduler
//! and the fleet simulator: the seed scenario (taints, rollout, history, rollback), adoption
//! and a 1,000-node convergence.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Event, Node, Pod, Taint};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use pernode_agent::simulator::{self, SimulatorOptions};
use pernode_controllers::daemonset::{self, DaemonSetControllerOptions};
use pernode_controllers::scheduler::{self, SchedulerOptions};
use serde_json::json;

async fn cluster() -> kube::Client {
    let router = pernode_apiserver::in_memory_router()
        .await
        .expect("api server");
    kube::Client::new(router, "default")
}

fn start(client: &kube::Client) {
    tokio::spawn(daemonset::run(
        client.clone(),
        DaemonSetControllerOptions::default(),
    ));
    tokio::spawn(scheduler::run(client.clone(), SchedulerOptions::default()));
    tokio::spawn(simulator::run(
        client.clone(),
        SimulatorOptions {
            heartbeat_interval: Duration::from_millis(300),
            node_status_interval: Duration::from_millis(300),
            ..Default::default()
        },
    ));
}

/// Poll `f` until it yields Some, for up to `secs`.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
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

async fn add_node(client: &kube::Client, name: &str, taints: Vec<Taint>) {
    let mut node = simulator::simulated_node(name);
    node.spec.get_or_insert_with(Default::default).taints = Some(taints);
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
}

fn nginx(image: &str) -> DaemonSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image,
                                         "imagePullPolicy": "IfNotPresent"}]}
            }
        }
    }))
    .expect("daemonset literal")
}

/// (desired, current, ready, updated, available, misscheduled) once observed.
async fn counts(api: &Api<DaemonSet>, name: &str) -> Option<(i32, i32, i32, i32, i32, i32)> {
    let ds = api.get(name).await.ok()?;
    let s = ds.status?;
    (s.observed_generation? >= ds.metadata.generation?).then_some((
        s.desired_number_scheduled,
        s.current_number_scheduled,
        s.number_ready,
        s.updated_number_scheduled.unwrap_or(0),
        s.number_available.unwrap_or(0),
        s.number_misscheduled,
    ))
}

/// node -> images of the live pods of `app=nginx`.
async fn pods_by_node(api: &Api<Pod>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let pods = api
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    for p in pods {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let spec = p.spec.unwrap_or_default();
        out.entry(spec.node_name.unwrap_or_default())
            .or_default()
            .push(spec.containers[0].image.clone().unwrap_or_default());
    }
    out
}

async fn revisions(api: &Api<ControllerRevision>) -> Vec<i64> {
    let mut revs: Vec<i64> = api
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .map(|l| l.items.into_iter().map(|r| r.revision).collect())
        .unwrap_or_default();
    revs.sort();
    revs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seed_taints_rollout_history_and_rollback() {
    let client = cluster().await;
    add_node(
        &client,
        "k8s-master",
        vec![Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        }],
    )
    .await;
    add_node(&client, "k8s-work1", vec![]).await;
    add_node(&client, "k8s-work2", vec![]).await;
    start(&client);

    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    dss.create(&PostParams::default(), &nginx("nginx:alpine"))
        .await
        .expect("create ds");

    eventually("2 pods ready", 20, || async {
        (counts(&dss, "nginx").await == Some((2, 2, 2, 2, 2, 0))).then_some(())
    })
    .await;
    let by_node = pods_by_node(&pods).await;
    assert_eq!(
        by_node.keys().collect::<Vec<_>>(),
        vec!["k8s-work1", "k8s-work2"]
    );

    // Events reach the DaemonSet's namespace with the controller as source (R52).
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let evs = events.list(&ListParams::default()).await.expect("events");
    assert!(evs.items.iter().any(|e| {
        e.reason.as_deref() == Some("SuccessfulCreate")
            && e.source.as_ref().and_then(|s| s.component.as_deref())
                == Some("daemonset-controller")
            && e.involved_object.name.as_deref() == Some("nginx")
            && e.message
                .as_deref()
                .is_some_and(|m| m.starts_with("Created pod: nginx-"))
    }));

    // R6: a NoSchedule taint added later keeps the running pod.
    Api::<Node>::all(client.clone())
        .patch(
            "k8s-work1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": [
                {"key": "forbid", "value": "true", "effect": "NoSchedule"}]}})),
        )
        .await
        .expect("taint");
    eventually("misscheduled 1", 10, || async {
        let c = counts(&dss, "nginx").await?;
        (c.0 == 1 && c.5 == 1).then_some(())
    })
    .await;
    assert_eq!(pods_by_node(&pods).await.len(), 2);
    Api::<Node>::all(client.clone())
        .patch(
            "k8s-work1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": null}})),
        )
        .await
        .expect("untaint");

    // Roll a new image out.
    dss.patch(
        "nginx",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.27"}]}}}})),
    )
    .await
    .expect("set image");
    eventually("rolled out", 30, || async {
        let done = counts(&dss, "nginx").await == Some((2, 2, 2, 2, 2, 0));
        let by_node = pods_by_node(&pods).await;
        let all_new = by_node.len() == 2
            && by_node
                .values()
                .all(|imgs| imgs == &vec!["nginx:1.27".to_owned()]);
        (done && all_new).then_some(())
    })
    .await;
    assert_eq!(revisions(&revs).await, vec![1, 2]);

    // Roll back to revision 1: kubectl patches the revision's data verbatim (R95) and the
    // controller reuses and renumbers revision 1 as 3 (R88).
    let rev1 = revs
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .expect("revisions")
        .items
        .into_iter()
        .find(|r| r.revision == 1)
        .expect("revision 1");
    let data = rev1.data.expect("data").0;
    dss.patch("nginx", &PatchParams::default(), &Patch::Strategic(data))
        .await
        .expect("undo");
    eventually("rolled back", 30, || async {
        let done = counts(&dss, "nginx").await == Some((2, 2, 2, 2, 2, 0));
        let by_node = pods_by_node(&pods).await;
        let all_old = by_node.len() == 2
            && by_node
                .values()
                .all(|imgs| imgs == &vec!["nginx:alpine".to_owned()]);
        (done && all_old && revisions(&revs).await == vec![2, 3]).then_some(())
    })
    .await;

    // kubectl's "skipped rollback" check: the bytes it computes from the DaemonSet as served
    // equal the current revision's data (R85, R100).
    let ds = dss.get("nginx").await.expect("get ds");
    let current = revs
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .expect("revisions")
        .items
        .into_iter()
        .find(|r| r.revision == 3)
        .expect("revision 3");
    assert_eq!(
        daemonset::history::revision_data_string(&current).expect("data"),
        daemonset::history::revision_patch(&ds).expect("patch")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphaned_pods_are_adopted_without_restart() {
    let client = cluster().await;
    add_node(&client, "n1", vec![]).await;
    add_node(&client, "n2", vec![]).await;
    start(&client);
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    dss.create(&PostParams::default(), &nginx("nginx:alpine"))
        .await
        .expect("create ds");
    eventually("2 ready", 20, || async {
        (counts(&dss, "nginx").await == Some((2, 2, 2, 2, 2, 0))).then_some(())
    })
    .await;
    let before: Vec<String> = pods
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    // Orphan deletion as the garbage collector would finish it (R107): the DaemonSet goes,
    // its pods and revisions lose their ownerReferences. Then recreate with the same selector
    // and template (R112).
    dss.delete("nginx", &kube::api::DeleteParams::default())
        .await
        .expect("delete");
    eventually("ds gone", 20, || async {
        dss.get("nginx").await.err().map(|_| ())
    })
    .await;
    let strip = Patch::Merge(json!({"metadata": {"ownerReferences": null}}));
    for name in &before {
        pods.patch(name, &PatchParams::default(), &strip)
            .await
            .expect("orphan pod");
    }
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    for r in revs
        .list(&ListParams::default())
        .await
        .expect("revisions")
        .items
    {
        let name = r.metadata.name.expect("name");
        revs.patch(&name, &PatchParams::default(), &strip)
            .await
            .expect("orphan revision");
    }
    let new = dss
        .create(&PostParams::default(), &nginx("nginx:alpine"))
        .await
        .expect("recreate");
    let uid = new.metadata.uid.clone().expect("uid");
    eventually("adopted", 20, || async {
        let list = pods
            .list(&ListParams::default().labels("app=nginx"))
            .await
            .ok()?;
        let owned = list.items.iter().all(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid && r.controller == Some(true))
        });
        (owned && counts(&dss, "nginx").await == Some((2, 2, 2, 2, 2, 0))).then_some(())
    })
    .await;
    let mut after: Vec<String> = pods
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after, "no pod restarted");
    // The revision was adopted and reused, not recreated (R111, R112).
    let all = revs
        .list(&ListParams::default())
        .await
        .expect("revisions")
        .items;
    assert_eq!(all.len(), 1);
    assert!(
        all[0]
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.uid == uid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_nodes_converge() {
    let client = cluster().await;
    // PERNODE_DS_NODES=10000 for the performance target (10,000 nodes under 5 s, release).
    let n: usize = std::env::var("PERNODE_DS_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    simulator::create_nodes(client.clone(), n, "node")
        .await
        .expect("nodes");
    tokio::spawn(daemonset::run(
        client.clone(),
        DaemonSetControllerOptions::default(),
    ));
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    dss.create(&PostParams::default(), &nginx("nginx:alpine"))
        .await
        .expect("create ds");
    eventually("all pods created", 60, || async {
        let c = counts(&dss, "nginx").await?;
        (c.0 == n as i32 && c.1 == n as i32).then_some(())
    })
    .await;
    eprintln!(
        "{n} nodes converged in {:?} (debug build)",
        started.elapsed()
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels("app=nginx"))
        .await
        .expect("pods");
    assert_eq!(list.items.len(), n, "exactly one pod per node");
}
