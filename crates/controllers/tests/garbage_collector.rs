//! The garbage collector against pernode's own API server, in process (with the simulator to
//! finish terminating pods).

mod common;

use common::{cluster, eventually, start_simulator};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use pernode_agent::simulator;
use pernode_controllers::garbage_collector::{self, GcOptions};
use pernode_controllers::pod_watch::PodWatch;
use serde_json::json;

fn daemon_set(name: &str) -> DaemonSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
            },
        },
    }))
    .expect("daemon set literal")
}

fn owned_pod(name: &str, owner: &DaemonSet) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "default", "labels": {"app": owner.metadata.name},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner.metadata.name,
                "uid": owner.metadata.uid, "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx:1.27"}]},
    }))
    .expect("pod literal")
}

fn owned_revision(name: &str, owner: &DaemonSet) -> ControllerRevision {
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": "default",
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "DaemonSet", "name": owner.metadata.name,
                "uid": owner.metadata.uid, "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "data": {"spec": {}},
        "revision": 1,
    }))
    .expect("revision literal")
}

struct Env {
    dss: Api<DaemonSet>,
    pods: Api<Pod>,
    revs: Api<ControllerRevision>,
}

/// Pods come from the collector's own metadata watch, or (`shared_pods`) from a shared
/// [`PodWatch`] as in `pernode up`.
async fn setup_with(shared_pods: bool) -> Env {
    let client = cluster().await;
    simulator::create_nodes(client.clone(), 1, "node")
        .await
        .expect("nodes");
    start_simulator(&client);
    if shared_pods {
        let mut watch = PodWatch::all(&client);
        let pods = watch.subscribe();
        tokio::spawn(garbage_collector::run_with_pods(
            client.clone(),
            GcOptions::default(),
            pods,
        ));
        tokio::spawn(watch.run());
    } else {
        tokio::spawn(garbage_collector::run(client.clone(), GcOptions::default()));
    }
    Env {
        dss: Api::namespaced(client.clone(), "default"),
        pods: Api::namespaced(client.clone(), "default"),
        revs: Api::namespaced(client, "default"),
    }
}

async fn owner_with_dependents(env: &Env, name: &str) -> DaemonSet {
    let pp = PostParams::default();
    let ds = env.dss.create(&pp, &daemon_set(name)).await.expect("ds");
    for i in 0..2 {
        env.pods
            .create(&pp, &owned_pod(&format!("{name}-{i}"), &ds))
            .await
            .expect("pod");
    }
    env.revs
        .create(&pp, &owned_revision(&format!("{name}-rev"), &ds))
        .await
        .expect("revision");
    ds
}

async fn setup() -> Env {
    setup_with(false).await
}

fn delete_with(policy: PropagationPolicy) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(policy),
        ..Default::default()
    }
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_owner_references() {
    let env = setup().await;
    owner_with_dependents(&env, "orph").await;
    env.dss
        .delete("orph", &delete_with(PropagationPolicy::Orphan))
        .await
        .expect("delete");
    eventually("owner gone", 15, || async {
        env.dss.get_opt("orph").await.ok().filter(Option::is_none)
    })
    .await;
    for name in ["orph-0", "orph-1"] {
        let p = env.pods.get(name).await.expect("pod kept");
        assert_eq!(p.metadata.owner_references, None, "{name}");
        assert!(p.metadata.deletion_timestamp.is_none());
    }
    let r = env.revs.get("orph-rev").await.expect("revision kept");
    assert_eq!(r.metadata.owner_references, None);
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    background_deletion(setup().await).await;
}

#[tokio::test]
async fn background_deletion_collects_pods_of_the_shared_pod_watch() {
    background_deletion(setup_with(true).await).await;
}

async fn background_deletion(env: Env) {
    owner_with_dependents(&env, "bg").await;
    env.dss
        .delete("bg", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("pods and revision collected", 15, || async {
        let a = env.pods.get_opt("bg-0").await.ok()?;
        let b = env.pods.get_opt("bg-1").await.ok()?;
        let r = env.revs.get_opt("bg-rev").await.ok()?;
        (a.is_none() && b.is_none() && r.is_none()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents() {
    foreground_deletion(setup().await).await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_pods_of_the_shared_pod_watch() {
    foreground_deletion(setup_with(true).await).await;
}

async fn foreground_deletion(env: Env) {
    owner_with_dependents(&env, "fg").await;
    env.dss
        .delete("fg", &delete_with(PropagationPolicy::Foreground))
        .await
        .expect("delete");
    eventually("owner gone after its dependents", 15, || async {
        let ds = env.dss.get_opt("fg").await.ok()?;
        if ds.is_none() {
            // The owner may only go once its blocking dependents are gone.
            let a = env.pods.get_opt("fg-0").await.ok()?;
            let b = env.pods.get_opt("fg-1").await.ok()?;
            assert!(
                a.is_none() && b.is_none(),
                "owner removed before its dependents"
            );
            return Some(());
        }
        None
    })
    .await;
}

#[tokio::test]
async fn dangling_references_are_collected() {
    let env = setup().await;
    let mut ghost = daemon_set("ghost");
    ghost.metadata.uid = Some("00000000-0000-0000-0000-000000000000".into());
    env.pods
        .create(&PostParams::default(), &owned_pod("ghost-0", &ghost))
        .await
        .expect("pod");
    eventually("dangling pod collected", 15, || async {
        env.pods
            .get_opt("ghost-0")
            .await
            .ok()
            .filter(Option::is_none)
    })
    .await;
}
