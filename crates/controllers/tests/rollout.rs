//! Rolling updates, OnDelete, revisions, history and rollback, end to end: API server,
//! DaemonSet controller, scheduler, GC and the fleet simulator in process. Budgets are checked
//! on every pod state a watch delivers during the whole rollout, not on samples. Each test is
//! named after the rule it checks (`/work/shared/daemonset-semantics.md`).

mod e2e;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use e2e::{Env, PodWatch, Snapshot, always, eventually, pod_image, pod_label, pod_name, start};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use pernode_core::pod::is_pod_available;
use serde_json::json;

const V1: &str = "nginx:1.27";
const V2: &str = "nginx:1.28";
const V3: &str = "nginx:1.29";
const BAD: &str = "nginx:1.28-bad";

fn node_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("node-{i}")).collect()
}

fn image_patch(image: &str) -> serde_json::Value {
    json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
}

fn live(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
}

/// Waits until every node of `nodes` runs exactly one live, Ready pod with `image` and the
/// status says the rollout is complete.
async fn wait_rolled_out(env: &Env, name: &str, image: &str, n: usize) {
    let mut want = node_names(n);
    want.sort();
    eventually(&format!("{name} rolled out to {image}"), 30, || async {
        let pods = env.live_pods(name).await;
        let mut on: Vec<String> = pods.iter().map(e2e::target_node).collect();
        on.sort();
        let all_new = pods
            .iter()
            .all(|p| pod_image(p) == image && pernode_core::pod::is_pod_ready(p));
        let s = env.status(name).await?;
        let n = n as i32;
        let done = e2e::counts(&s) == (n, n, n, n, n, 0, 0);
        (on == want && all_new && done).then_some(())
    })
    .await;
}

/// The most desired nodes lacking an Available live pod, and the most live pods on one node,
/// over every recorded state.
fn worst(snaps: &[Snapshot], nodes: &[String], min_ready: i32) -> (usize, usize) {
    let mut max_unavailable = 0;
    let mut max_per_node = 0;
    for s in snaps {
        let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
        for p in s.pods.values().filter(|p| live(p)) {
            by_node.entry(e2e::target_node(p)).or_default().push(p);
        }
        let unavailable = nodes
            .iter()
            .filter(|n| {
                !by_node
                    .get(*n)
                    .is_some_and(|ps| ps.iter().any(|p| is_pod_available(p, min_ready, s.wall)))
            })
            .count();
        max_unavailable = max_unavailable.max(unavailable);
        max_per_node = max_per_node.max(by_node.values().map(Vec::len).max().unwrap_or(0));
    }
    (max_unavailable, max_per_node)
}

/// Sets an image and checks, on every state until the rollout completes, that at most
/// `budget` nodes lack an Available pod and no node runs two live pods.
async fn roll_within_budget(env: &Env, n: usize, image: &str, budget: usize, min_ready: i32) {
    let watch = PodWatch::start(env, "app=ds").await;
    env.patch_ds("ds", image_patch(image)).await;
    wait_rolled_out(env, "ds", image, n).await;
    let snaps = watch.snapshots();
    let (unavailable, per_node) = worst(&snaps, &node_names(n), min_ready);
    assert!(
        unavailable <= budget,
        "{unavailable} nodes unavailable at once, budget {budget}"
    );
    assert!(
        unavailable >= 1,
        "the rollout did take nodes down one budget at a time"
    );
    assert_eq!(per_node, 1, "no surge without maxSurge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r64_r67_max_unavailable_never_exceeded_during_a_rollout() {
    let env = start(4).await;
    env.create_ds("ds", json!({})).await;
    wait_rolled_out(&env, "ds", V1, 4).await;
    roll_within_budget(&env, 4, V2, 1, 0).await;
    env.patch_ds(
        "ds",
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}}),
    )
    .await;
    roll_within_budget(&env, 4, V3, 2, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r50_min_ready_seconds_gates_availability_and_the_rollout() {
    let env = start(2).await;
    let watch = PodWatch::start(&env, "app=ds").await;
    env.create_ds("ds", json!({"spec": {"minReadySeconds": 2}}))
        .await;
    // Ready but not yet available, then available once minReadySeconds have passed
    // (the controller requeues itself: nothing else changes meanwhile).
    env.wait_counts("ds", (2, 2, 2, 2, 0, 0, 2), 10).await;
    let ready_at = std::time::Instant::now();
    env.wait_counts("ds", (2, 2, 2, 2, 2, 0, 0), 10).await;
    assert!(
        ready_at.elapsed() >= Duration::from_millis(500),
        "available too soon"
    );
    // The rollout waits for each new pod to be available before taking the next node.
    watch.stop();
    roll_within_budget(&env, 2, V2, 1, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r68_r71_surge_onto_every_node_keeps_old_pods_until_new_are_available() {
    let env = start(3).await;
    env.create_ds(
        "ds",
        json!({"spec": {"minReadySeconds": 1, "updateStrategy": {"rollingUpdate": {
            "maxSurge": "100%", "maxUnavailable": 0}}}}),
    )
    .await;
    wait_rolled_out(&env, "ds", V1, 3).await;
    let watch = PodWatch::start(&env, "app=ds").await;
    env.patch_ds("ds", image_patch(V2)).await;
    wait_rolled_out(&env, "ds", V2, 3).await;
    let snaps = watch.snapshots();
    let nodes = node_names(3);
    let (unavailable, per_node) = worst(&snaps, &nodes, 1);
    assert_eq!(
        unavailable, 0,
        "with maxUnavailable 0 every node stays available"
    );
    assert_eq!(per_node, 2, "one old and one new pod at most");
    // 100% of 3: a new pod on every node at the same time.
    assert!(
        snaps.iter().any(|s| {
            let new: BTreeSet<String> = s
                .pods
                .values()
                .filter(|p| live(p) && pod_image(p) == V2)
                .map(e2e::target_node)
                .collect();
            let old = s
                .pods
                .values()
                .filter(|p| live(p) && pod_image(p) == V1)
                .count();
            new.len() == 3 && old == 3
        }),
        "surge onto every node"
    );
    // R71: each old pod went only once the new pod of its node was Available.
    let mut gone: BTreeSet<String> = BTreeSet::new();
    for s in &snaps {
        for (name, p) in &s.pods {
            if pod_image(p) == V1 && !live(p) && gone.insert(name.clone()) {
                let node = e2e::target_node(p);
                let ok = s.pods.values().any(|q| {
                    pod_image(q) == V2
                        && live(q)
                        && e2e::target_node(q) == node
                        && is_pod_available(q, 1, s.wall)
                });
                assert!(
                    ok,
                    "{name} on {node} deleted before its replacement was available"
                );
            }
        }
    }
    assert_eq!(gone.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r62_max_unavailable_percent_rounds_up_on_3_nodes() {
    // 50% of 3 = 2 (ceil 1.5): a rollout to a never-ready image stops after 2 nodes.
    stuck_rollout(3, json!({"maxUnavailable": "50%"}), 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r62_max_unavailable_percent_rounds_up_on_10_nodes() {
    // 25% of 10 = 3 (ceil 2.5).
    stuck_rollout(10, json!({"maxUnavailable": "25%"}), 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r62_r67_stuck_rollout_never_exceeds_its_budget() {
    // The default maxUnavailable 1: one node takes the bad image, the rest keep the old one.
    stuck_rollout(4, json!({}), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r62_r69_max_surge_percent_rounds_up_on_3_nodes() {
    // maxSurge 20% of 3 = 1: one node runs old + new (never ready), the others only old.
    let env = start(3).await;
    env.create_ds(
        "ds",
        json!({"spec": {"updateStrategy": {"rollingUpdate": {
            "maxSurge": "20%", "maxUnavailable": 0}}}}),
    )
    .await;
    wait_rolled_out(&env, "ds", V1, 3).await;
    // creationTimestamp has second precision: let the clock leave the old pods' second so
    // the surge pod is strictly newer (pod order would otherwise fall back on names).
    let newest = env
        .live_pods("ds")
        .await
        .iter()
        .filter_map(|p| {
            p.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
        })
        .max()
        .expect("pods");
    eventually("the next second", 3, || async {
        (k8s_openapi::jiff::Timestamp::now().as_second() > newest).then_some(())
    })
    .await;
    let watch = PodWatch::start(&env, "app=ds").await;
    env.patch_ds("ds", image_patch(BAD)).await;
    eventually("one surge pod", 10, || async {
        let s = env.status("ds").await?;
        let bad = env
            .live_pods("ds")
            .await
            .iter()
            .filter(|p| pod_image(p) == BAD)
            .count();
        (bad == 1 && s.updated_number_scheduled == Some(0)).then_some(())
    })
    .await;
    always(
        "the surge stays at one",
        Duration::from_millis(1500),
        || async {
            let pods = env.live_pods("ds").await;
            pods.iter().filter(|p| pod_image(p) == BAD).count() == 1
                && pods.iter().filter(|p| pod_image(p) == V1).count() == 3
        },
    )
    .await;
    let (unavailable, per_node) = worst(&watch.snapshots(), &node_names(3), 0);
    assert_eq!((unavailable, per_node), (0, 2));
    // Every node still serves from its old pod: R43 examines only the first pod in pod
    // order, the old one (older creationTimestamp), so the surge node is not updated yet.
    env.wait_counts("ds", (3, 3, 3, 0, 3, 0, 0), 10).await;
}

/// A rollout to a never-ready image on `n` nodes with `rolling_update`: exactly `budget`
/// nodes take it, the others keep their pods (checked on every state and over a window).
async fn stuck_rollout(n: usize, rolling_update: serde_json::Value, budget: usize) {
    let env = start(n).await;
    env.create_ds(
        "ds",
        json!({"spec": {"updateStrategy": {"rollingUpdate": rolling_update}}}),
    )
    .await;
    wait_rolled_out(&env, "ds", V1, n).await;
    let before: BTreeSet<String> = env.live_pods("ds").await.iter().map(pod_name).collect();
    let watch = PodWatch::start(&env, "app=ds").await;
    env.patch_ds("ds", image_patch(BAD)).await;
    eventually(&format!("{budget} nodes on the bad image"), 20, || async {
        let bad = env
            .live_pods("ds")
            .await
            .iter()
            .filter(|p| pod_image(p) == BAD)
            .count();
        (bad == budget).then_some(())
    })
    .await;
    always(
        "the rollout stays stuck",
        Duration::from_millis(1500),
        || async {
            let pods = env.live_pods("ds").await;
            pods.iter().filter(|p| pod_image(p) == BAD).count() == budget
                && pods.iter().filter(|p| pod_image(p) == V1).count() == n - budget
        },
    )
    .await;
    let (unavailable, per_node) = worst(&watch.snapshots(), &node_names(n), 0);
    assert_eq!(unavailable, budget, "never more than the budget down");
    assert_eq!(per_node, 1);
    // The untouched pods are the original ones.
    let kept: BTreeSet<String> = env
        .live_pods("ds")
        .await
        .iter()
        .filter(|p| pod_image(p) == V1)
        .map(pod_name)
        .collect();
    assert!(kept.is_subset(&before));
    // Status during the stuck rollout (R41-R45).
    let (n, b) = (n as i32, budget as i32);
    env.wait_counts("ds", (n, n, n - b, b, n - b, 0, b), 10)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r101_rollback_replaces_only_pods_of_the_abandoned_template() {
    let env = start(3).await;
    env.create_ds("ds", json!({})).await;
    wait_rolled_out(&env, "ds", V1, 3).await;
    let original: BTreeSet<String> = env.live_pods("ds").await.iter().map(pod_name).collect();
    env.patch_ds("ds", image_patch(BAD)).await;
    eventually("one bad pod", 20, || async {
        let s = env.status("ds").await?;
        (s.updated_number_scheduled == Some(1)).then_some(())
    })
    .await;
    let survivors: BTreeSet<String> = env
        .live_pods("ds")
        .await
        .iter()
        .filter(|p| pod_image(p) == V1)
        .map(pod_name)
        .collect();
    assert_eq!(survivors.len(), 2);
    assert!(survivors.is_subset(&original));

    // Undo as kubectl does: the revision's data as a strategic merge patch (R95, R96).
    let revs = env.revisions("ds").await;
    assert_eq!(
        revs.iter().map(|r| r.revision).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let rev1 = revs[0].clone();
    let watch = PodWatch::start(&env, "app=ds").await;
    env.dss
        .patch(
            "ds",
            &PatchParams::default(),
            &Patch::Strategic(rev1.data.clone().expect("data").0),
        )
        .await
        .expect("undo");
    wait_rolled_out(&env, "ds", V1, 3).await;
    // The survivors carry the reused revision's hash: untouched, never terminating.
    let now: BTreeSet<String> = env.live_pods("ds").await.iter().map(pod_name).collect();
    assert!(survivors.is_subset(&now), "no unnecessary restart");
    for s in watch.snapshots() {
        for name in &survivors {
            assert!(s.pods.get(name).is_some_and(live), "{name} was touched");
        }
    }
    // R88: revision 1 was reused and renumbered 3.
    let revs = env.revisions("ds").await;
    assert_eq!(
        revs.iter().map(|r| r.revision).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(revs[1].metadata.uid, rev1.metadata.uid);
    let hash = pod_hash_of(&revs[1]);
    for p in env.live_pods("ds").await {
        assert_eq!(
            pod_label(&p, "controller-revision-hash"),
            Some(hash.as_str())
        );
    }
}

fn pod_hash_of(rev: &ControllerRevision) -> String {
    rev.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .expect("hash label")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r72_r74_pod_template_generation_follows_the_template_only() {
    let env = start(2).await;
    env.create_ds("ds", json!({})).await;
    wait_rolled_out(&env, "ds", V1, 2).await;
    let names: BTreeSet<String> = env.live_pods("ds").await.iter().map(pod_name).collect();
    let watch = PodWatch::start(&env, "app=ds").await;
    // Strategy and minReadySeconds only: generation moves, the template generation does not,
    // no pod is touched and all stay updated.
    env.patch_ds(
        "ds",
        json!({"spec": {"minReadySeconds": 1,
                        "updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}}),
    )
    .await;
    let ds = env
        .patch_ds("ds", json!({"spec": {"revisionHistoryLimit": 3}}))
        .await;
    assert_eq!(ds.metadata.generation, Some(3));
    assert_eq!(template_generation(&ds), "1");
    env.wait_counts("ds", (2, 2, 2, 2, 2, 0, 0), 10).await;
    always("no pod touched", Duration::from_secs(1), || async {
        env.live_pods("ds")
            .await
            .iter()
            .map(pod_name)
            .collect::<BTreeSet<_>>()
            == names
    })
    .await;
    assert_eq!(watch.deletion_times().len(), 0, "no pod ever terminated");
    assert_eq!(watch.names_seen(), names, "no pod created");
    assert_eq!(env.revisions("ds").await.len(), 1);
    for p in env.live_pods("ds").await {
        assert_eq!(pod_label(&p, "pod-template-generation"), Some("1"));
    }
    // A template change: template generation 2 while metadata.generation is 4.
    let ds = env.patch_ds("ds", image_patch(V2)).await;
    assert_eq!(ds.metadata.generation, Some(4));
    assert_eq!(template_generation(&ds), "2");
    wait_rolled_out(&env, "ds", V2, 2).await;
    for p in env.live_pods("ds").await {
        assert_eq!(pod_label(&p, "pod-template-generation"), Some("2"));
    }
}

fn template_generation(ds: &k8s_openapi::api::apps::v1::DaemonSet) -> String {
    ds.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deprecated.daemonset.template.generation"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r79_r81_on_delete_leaves_pods_until_deleted_then_rolling_update_takes_over() {
    let env = start(3).await;
    env.create_ds(
        "ds",
        json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
    )
    .await;
    wait_rolled_out(&env, "ds", V1, 3).await;
    let names: BTreeSet<String> = env.live_pods("ds").await.iter().map(pod_name).collect();
    let watch = PodWatch::start(&env, "app=ds").await;
    env.patch_ds("ds", image_patch(V2)).await;
    // R79, R80: new revision, nothing updated, nothing touched.
    eventually("revision 2", 10, || async {
        (env.revisions("ds").await.len() == 2).then_some(())
    })
    .await;
    env.wait_counts("ds", (3, 3, 3, 0, 3, 0, 0), 10).await;
    always("no pod touched", Duration::from_millis(1500), || async {
        env.live_pods("ds")
            .await
            .iter()
            .map(pod_name)
            .collect::<BTreeSet<_>>()
            == names
    })
    .await;
    assert!(watch.deletion_times().is_empty());
    // A deleted pod comes back with the new template and hash.
    let victim = names.iter().next().expect("a pod").clone();
    let node = e2e::target_node(&env.pods.get(&victim).await.expect("victim"));
    env.pods
        .delete(&victim, &DeleteParams::default())
        .await
        .expect("delete");
    let new_hash = pod_hash_of(&env.revisions("ds").await[1]);
    eventually("replacement with the new template", 20, || async {
        env.live_pods("ds").await.into_iter().find(|p| {
            e2e::target_node(p) == node
                && pod_image(p) == V2
                && pod_label(p, "controller-revision-hash") == Some(new_hash.as_str())
                && pod_label(p, "pod-template-generation") == Some("2")
        })
    })
    .await;
    env.wait_counts("ds", (3, 3, 3, 1, 3, 0, 0), 10).await;
    // The others are still the original pods.
    let others: BTreeSet<String> = env
        .live_pods("ds")
        .await
        .iter()
        .filter(|p| pod_image(p) == V1)
        .map(pod_name)
        .collect();
    assert_eq!(others.len(), 2);
    assert!(others.is_subset(&names));
    // R81: switching to RollingUpdate rolls the rest.
    env.patch_ds(
        "ds",
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxUnavailable": 1}}}}),
    )
    .await;
    wait_rolled_out(&env, "ds", V2, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r93_history_is_cleaned_up_at_the_limit() {
    let env = start(1).await;
    env.create_ds("ds", json!({"spec": {"revisionHistoryLimit": 1}}))
        .await;
    wait_rolled_out(&env, "ds", V1, 1).await;
    for image in [V2, V3, "nginx:1.30"] {
        env.patch_ds("ds", image_patch(image)).await;
        wait_rolled_out(&env, "ds", image, 1).await;
    }
    // Current (4) plus one old (the newest old one, 3).
    let revs = eventually("history trimmed to the limit", 10, || async {
        let revs = env.revisions("ds").await;
        (revs.len() == 2).then_some(revs)
    })
    .await;
    assert_eq!(
        revs.iter().map(|r| r.revision).collect::<Vec<_>>(),
        vec![3, 4]
    );
    // Limit 0 keeps no unused revision.
    env.patch_ds("ds", json!({"spec": {"revisionHistoryLimit": 0}}))
        .await;
    eventually("only the current revision", 10, || async {
        let revs = env.revisions("ds").await;
        (revs.iter().map(|r| r.revision).collect::<Vec<_>>() == vec![4]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r93_history_keeps_revisions_still_used_by_pods() {
    // OnDelete with limit 0: the old revision stays while a pod still carries its hash.
    let env = start(2).await;
    env.create_ds(
        "ds",
        json!({"spec": {"revisionHistoryLimit": 0, "updateStrategy": {"type": "OnDelete"}}}),
    )
    .await;
    wait_rolled_out(&env, "ds", V1, 2).await;
    env.patch_ds("ds", image_patch(V2)).await;
    env.wait_counts("ds", (2, 2, 2, 0, 2, 0, 0), 10).await;
    always(
        "the used revision stays",
        Duration::from_secs(1),
        || async { env.revisions("ds").await.len() == 2 },
    )
    .await;
    for p in env.live_pods("ds").await {
        env.pods
            .delete(&pod_name(&p), &DeleteParams::default())
            .await
            .expect("delete");
    }
    wait_rolled_out(&env, "ds", V2, 2).await;
    eventually("the unused revision is deleted", 10, || async {
        (env.revisions("ds").await.len() == 1).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r85_r86_revisions_are_named_labelled_owned_and_annotated() {
    let env = start(1).await;
    let ds = env
        .create_ds(
            "ds",
            json!({"metadata": {"annotations": {"kubernetes.io/change-cause": "first"}},
                   "spec": {"template": {"metadata": {"labels": {"tier": "node"}}}}}),
        )
        .await;
    wait_rolled_out(&env, "ds", V1, 1).await;
    let uid = ds.metadata.uid.clone().expect("uid");
    let revs = env.revisions("ds").await;
    assert_eq!(revs.len(), 1);
    let r = &revs[0];
    let hash = pod_hash_of(r);
    assert_eq!(
        r.metadata.name.as_deref(),
        Some(format!("ds-{hash}").as_str())
    );
    assert_eq!(r.revision, 1);
    let labels = r.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("ds"));
    assert_eq!(labels.get("tier").map(String::as_str), Some("node"));
    assert_eq!(
        r.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/change-cause"))
            .map(String::as_str),
        Some("first")
    );
    let refs = r.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (
            refs[0].kind.as_str(),
            refs[0].name.as_str(),
            refs[0].uid.as_str(),
            refs[0].controller,
            refs[0].block_owner_deletion
        ),
        ("DaemonSet", "ds", uid.as_str(), Some(true), Some(true))
    );
    let data = r.data.clone().expect("data").0;
    assert_eq!(data["spec"]["template"]["$patch"], json!("replace"));
    assert_eq!(
        data["spec"]["template"]["spec"]["containers"][0]["image"],
        json!(V1)
    );
    // The pods carry the revision's hash.
    for p in env.live_pods("ds").await {
        assert_eq!(
            pod_label(&p, "controller-revision-hash"),
            Some(hash.as_str())
        );
    }
    // A change with a new change-cause: revision 2 copies the annotations at that moment.
    env.dss
        .patch(
            "ds",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "metadata": {"annotations": {"kubernetes.io/change-cause": "second"}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": V2}]}}}})),
        )
        .await
        .expect("patch");
    wait_rolled_out(&env, "ds", V2, 1).await;
    let revs = env.revisions("ds").await;
    assert_eq!(revs.len(), 2);
    let r2 = &revs[1];
    assert_eq!(r2.revision, 2);
    assert_ne!(pod_hash_of(r2), hash);
    assert_eq!(
        r2.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/change-cause"))
            .map(String::as_str),
        Some("second")
    );
    // The first revision kept its own annotation.
    assert_eq!(
        revs[0]
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/change-cause"))
            .map(String::as_str),
        Some("first")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r91_name_collision_bumps_collision_count_and_rehashes() {
    let env = start(1).await;
    env.create_ds("ds", json!({})).await;
    wait_rolled_out(&env, "ds", V1, 1).await;
    let taken = env.revisions("ds").await[0]
        .metadata
        .name
        .clone()
        .expect("name");
    // Orphan the pods, drop the revision, and squat its name with other data.
    env.dss
        .delete(
            "ds",
            &DeleteParams {
                propagation_policy: Some(PropagationPolicy::Orphan),
                ..Default::default()
            },
        )
        .await
        .expect("delete");
    eventually("ds gone", 20, || async {
        env.dss.get_opt("ds").await.ok()?.is_none().then_some(())
    })
    .await;
    env.revs
        .delete(&taken, &DeleteParams::default())
        .await
        .expect("delete revision");
    eventually("revision gone", 10, || async {
        env.revs.get_opt(&taken).await.ok()?.is_none().then_some(())
    })
    .await;
    let squatter: ControllerRevision = serde_json::from_value(json!({
        "metadata": {"name": taken, "labels": {"app": "squatter"}},
        "data": {"spec": {"template": {"$patch": "replace", "metadata": {}}}},
        "revision": 7,
    }))
    .expect("revision literal");
    env.revs
        .create(&PostParams::default(), &squatter)
        .await
        .expect("squat");
    // The same DaemonSet again: its hash names the squatted revision.
    env.create_ds("ds", json!({})).await;
    let status = eventually("collisionCount 1", 20, || async {
        env.status("ds")
            .await
            .filter(|s| s.collision_count == Some(1))
    })
    .await;
    assert_eq!(status.collision_count, Some(1));
    let revs = eventually("a revision under a new name", 20, || async {
        let revs = env.revisions("ds").await;
        (revs.len() == 1 && revs[0].metadata.name.as_deref() != Some(taken.as_str()))
            .then_some(revs)
    })
    .await;
    let hash = pod_hash_of(&revs[0]);
    assert_eq!(revs[0].metadata.name, Some(format!("ds-{hash}")));
    // The squatter is untouched; the pods end up with the new hash.
    let sq = env.revs.get(&taken).await.expect("squatter");
    assert_eq!(sq.revision, 7);
    assert_eq!(sq.metadata.owner_references, None);
    // The adopted pod keeps running: it is updated through its pod-template-generation
    // label (R60) even though its hash label is the pre-collision one.
    env.wait_counts("ds", (1, 1, 1, 1, 1, 0, 0), 10).await;
    let pods = env.live_pods("ds").await;
    assert_eq!(pods.len(), 1);
    assert_ne!(
        pod_label(&pods[0], "controller-revision-hash"),
        Some(hash.as_str())
    );
    // A new pod gets the new hash.
    env.pods
        .delete(&pod_name(&pods[0]), &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually("the replacement carries the new hash", 20, || async {
        let pods = env.live_pods("ds").await;
        (pods.len() == 1
            && pods
                .iter()
                .all(|p| pod_label(p, "controller-revision-hash") == Some(hash.as_str())))
        .then_some(())
    })
    .await;
    env.wait_counts("ds", (1, 1, 1, 1, 1, 0, 0), 10).await;
}
