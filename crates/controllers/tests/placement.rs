//! Placement, pod construction, status, events, failures, scheduling, garbage collection and
//! adoption of daemon pods, end to end: API server, DaemonSet controller, scheduler, GC,
//! pod GC and the fleet simulator in process. Each test is named after the rule it checks
//! (`/work/shared/daemonset-semantics.md`).

mod e2e;

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{Env, always, eventually, pod_label, pod_name, start, target_node};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use serde_json::json;

fn nodes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Waits until DaemonSet `name` has exactly one Ready pod on each of `want` and no other
/// live pod, and its status agrees.
async fn wait_running_on(env: &Env, name: &str, want: &[&str]) {
    let want = nodes(want);
    let last = std::sync::Mutex::new(String::new());
    let _report = Report(&last);
    eventually(&format!("{name} running on {want:?}"), 20, || async {
        let pods = env.live_pods(name).await;
        let mut on: Vec<String> = pods.iter().map(target_node).collect();
        on.sort();
        let ready = pods.iter().all(|p| {
            pernode_core::pod::is_pod_ready(p)
                && p.spec.as_ref().and_then(|s| s.node_name.as_ref()) == Some(&target_node(p))
        });
        let s = env.status(name).await?;
        let n = want.len() as i32;
        let done = on == want && ready && s.desired_number_scheduled == n && s.number_ready == n;
        if !done {
            *last.lock().unwrap() = format!(
                "pods on {on:?}, all ready {ready}, status {:?}",
                e2e::counts(&s)
            );
        }
        done.then_some(())
    })
    .await;
}

/// Prints the last state seen if the test panics while waiting.
struct Report<'a>(&'a std::sync::Mutex<String>);

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "last seen: {}",
                self.0.lock().unwrap_or_else(|p| p.into_inner())
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r1_r9_r158_cordoned_node_gets_a_bound_running_pod() {
    let env = start(2).await;
    // Cordoned as kubectl cordon plus the node lifecycle controller leave it.
    env.patch_node(
        "node-2",
        json!({"spec": {"unschedulable": true, "taints": [
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}}),
    )
    .await;
    env.create_ds("ds", json!({})).await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
    env.wait_counts("ds", (2, 2, 2, 2, 2, 0, 0), 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r4_node_selector_and_required_affinity_operators() {
    let env = start(0).await;
    env.add_node("node-1", json!({"zone": "a", "gen": "3"}), json!(null))
        .await;
    env.add_node(
        "node-2",
        json!({"zone": "b", "gen": "5", "ssd": "true"}),
        json!(null),
    )
    .await;
    env.add_node("node-3", json!({"zone": "c"}), json!(null))
        .await;
    let expr = |key: &str, op: &str, values: &[&str]| {
        let mut e = json!({"key": key, "operator": op});
        if !values.is_empty() {
            e["values"] = json!(values);
        }
        e
    };
    let affinity = |terms: serde_json::Value| {
        json!({"spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}}}})
    };
    let one = |e: serde_json::Value| affinity(json!([{"matchExpressions": [e]}]));
    let cases: Vec<(&str, serde_json::Value, Vec<&str>)> = vec![
        (
            "selector",
            json!({"spec": {"template": {"spec": {"nodeSelector": {"zone": "a"}}}}}),
            vec!["node-1"],
        ),
        (
            "selector-two",
            json!({"spec": {"template": {"spec": {"nodeSelector": {"zone": "b", "ssd": "true"}}}}}),
            vec!["node-2"],
        ),
        (
            "in",
            one(expr("zone", "In", &["a", "b"])),
            vec!["node-1", "node-2"],
        ),
        (
            "notin",
            one(expr("zone", "NotIn", &["a"])),
            vec!["node-2", "node-3"],
        ),
        ("exists", one(expr("ssd", "Exists", &[])), vec!["node-2"]),
        (
            "dne",
            one(expr("ssd", "DoesNotExist", &[])),
            vec!["node-1", "node-3"],
        ),
        ("gt", one(expr("gen", "Gt", &["4"])), vec!["node-2"]),
        ("lt", one(expr("gen", "Lt", &["4"])), vec!["node-1"]),
        (
            "fields",
            affinity(json!([{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["node-3"]}]}])),
            vec!["node-3"],
        ),
        (
            "fields-notin",
            affinity(json!([{"matchFields": [
                {"key": "metadata.name", "operator": "NotIn", "values": ["node-3"]}]}])),
            vec!["node-1", "node-2"],
        ),
        (
            "or",
            affinity(json!([
                {"matchExpressions": [expr("zone", "In", &["a"])]},
                {"matchExpressions": [expr("ssd", "Exists", &[])]}])),
            vec!["node-1", "node-2"],
        ),
        (
            "and",
            affinity(json!([{
                "matchExpressions": [expr("zone", "In", &["a", "b", "c"]), expr("gen", "Lt", &["4"])],
                "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node-3"]}]}])),
            vec!["node-1"],
        ),
        (
            "selector-and-affinity",
            merged_over(
                json!({"spec": {"template": {"spec": {"nodeSelector": {"ssd": "true"}}}}}),
                one(expr("zone", "In", &["a"])),
            ),
            vec![],
        ),
    ];
    for (name, over, _) in &cases {
        env.create_ds(name, over.clone()).await;
    }
    for (name, _, want) in &cases {
        wait_running_on(&env, name, want).await;
    }

    // A matchFields In with two values is invalid (upstream's node field selector rule).
    let two = e2e::daemon_set(
        "two",
        affinity(json!([{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["node-1", "node-2"]}]}])),
    );
    match env.dss.create(&PostParams::default(), &two).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message.contains("must be only one value when `operator` is 'In' or 'NotIn' for node field selector"),
                "{}",
                s.message
            );
        }
        other => panic!("two-valued matchFields accepted: {other:?}"),
    }

    // Relabelling a node moves it into a selector's set (R168): node-3 joins "selector".
    env.patch_node("node-3", json!({"metadata": {"labels": {"zone": "a"}}}))
        .await;
    wait_running_on(&env, "selector", &["node-1", "node-3"]).await;
}

fn merged_over(a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
    e2e::merged(a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r5_r6_r44_noschedule_taint_keeps_running_pod_and_counts_misscheduled() {
    let env = start(2).await;
    env.create_ds("ds", json!({})).await;
    env.create_ds(
        "tolerant",
        json!({"spec": {"template": {"spec": {"tolerations": [
            {"key": "forbid", "operator": "Exists", "effect": "NoSchedule"}]}}}}),
    )
    .await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
    wait_running_on(&env, "tolerant", &["node-1", "node-2"]).await;
    let before = env.pods_by_node("ds").await;

    env.taint(
        "node-1",
        json!([{"key": "forbid", "value": "true", "effect": "NoSchedule"}]),
    )
    .await;
    // Desired drops to 1, the node-1 pod is misscheduled (R44) but stays (R6).
    env.wait_counts("ds", (1, 1, 1, 1, 1, 1, 0), 10).await;
    always(
        "the node-1 pod survives",
        Duration::from_millis(1500),
        || async { env.pods_by_node("ds").await == before },
    )
    .await;
    // A tolerating DaemonSet is unaffected (R5, R7).
    env.wait_counts("tolerant", (2, 2, 2, 2, 2, 0, 0), 10).await;

    // Once deleted, the pod is not recreated under the untolerated taint.
    let victim = before["node-1"][0].clone();
    env.pods
        .delete(&victim, &DeleteParams::default())
        .await
        .expect("delete pod");
    env.wait_counts("ds", (1, 1, 1, 1, 1, 0, 0), 10).await;
    always(
        "no pod comes back on node-1",
        Duration::from_secs(1),
        || async { env.nodes_with_pods("ds").await == nodes(&["node-2"]) },
    )
    .await;

    // PreferNoSchedule is ignored (R5): still no pod while NoSchedule is there, and a pod
    // once only PreferNoSchedule remains.
    env.taint(
        "node-1",
        json!([{"key": "soft", "value": "x", "effect": "PreferNoSchedule"}]),
    )
    .await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
    env.wait_counts("ds", (2, 2, 2, 2, 2, 0, 0), 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r6_r37_r155_untolerated_noexecute_taint_removes_the_pod() {
    let env = start(2).await;
    env.create_ds("ds", json!({})).await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
    let victim = env.pods_by_node("ds").await["node-1"][0].clone();

    env.taint(
        "node-1",
        json!([{"key": "evict", "value": "now", "effect": "NoExecute"}]),
    )
    .await;
    wait_running_on(&env, "ds", &["node-2"]).await;
    env.wait_counts("ds", (1, 1, 1, 1, 1, 0, 0), 10).await;
    // R52: the deletion is reported.
    let ev = env
        .wait_event(
            "ds",
            "SuccessfulDelete",
            |m| m == format!("Deleted pod: {victim}"),
            10,
        )
        .await;
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    assert_eq!(
        ev.source.and_then(|s| s.component).as_deref(),
        Some("daemonset-controller")
    );
    // R155: not recreated while the taint stays.
    always("node-1 stays empty", Duration::from_secs(1), || async {
        env.nodes_with_pods("ds").await == nodes(&["node-2"])
    })
    .await;
    env.taint("node-1", json!(null)).await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r5_tolerated_noexecute_with_toleration_seconds_is_left_to_eviction() {
    // The controller's part: a tolerated NoExecute taint (even with tolerationSeconds) keeps
    // the node eligible, so the controller neither deletes the pod nor skips the node;
    // evicting after tolerationSeconds is the taint manager's job.
    let env = start(1).await;
    env.create_ds(
        "ds",
        json!({"spec": {"template": {"spec": {"tolerations": [
            {"key": "evict", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 1}]}}}}),
    )
    .await;
    wait_running_on(&env, "ds", &["node-1"]).await;
    let before = env.pods_by_node("ds").await;
    env.taint(
        "node-1",
        json!([{"key": "evict", "value": "x", "effect": "NoExecute"}]),
    )
    .await;
    env.add_node(
        "node-2",
        json!({}),
        json!([{"key": "evict", "value": "x", "effect": "NoExecute"}]),
    )
    .await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
    assert_eq!(
        env.pods_by_node("ds").await["node-1"],
        before["node-1"],
        "the node-1 pod was not replaced"
    );
    always(
        "the controller keeps the pod past tolerationSeconds",
        Duration::from_millis(2000),
        || async { env.pods_by_node("ds").await["node-1"] == before["node-1"] },
    )
    .await;
    env.wait_counts("ds", (2, 2, 2, 2, 2, 0, 0), 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r10_r22_not_ready_and_unreachable_noexecute_nodes_still_get_pods() {
    let env = start(0).await;
    let t = |key: &str, effect: &str| json!([{"key": key, "effect": effect}]);
    env.add_node(
        "node-1",
        json!({}),
        t("node.kubernetes.io/not-ready", "NoExecute"),
    )
    .await;
    env.add_node(
        "node-2",
        json!({}),
        t("node.kubernetes.io/unreachable", "NoExecute"),
    )
    .await;
    // R22: the NoSchedule variants are not tolerated by default.
    env.add_node(
        "node-3",
        json!({}),
        t("node.kubernetes.io/not-ready", "NoSchedule"),
    )
    .await;
    env.add_node(
        "node-4",
        json!({}),
        t("node.kubernetes.io/out-of-service", "NoExecute"),
    )
    .await;
    // A condition without a taint changes nothing (R10).
    env.add_node("node-5", json!({}), json!(null)).await;
    env.create_ds("ds", json!({})).await;
    wait_running_on(&env, "ds", &["node-1", "node-2", "node-5"]).await;
    env.wait_counts("ds", (3, 3, 3, 3, 3, 0, 0), 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r157_new_node_gets_a_pod() {
    let env = start(1).await;
    env.create_ds("ds", json!({})).await;
    wait_running_on(&env, "ds", &["node-1"]).await;
    env.add_node("node-2", json!({}), json!(null)).await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
    env.wait_counts("ds", (2, 2, 2, 2, 2, 0, 0), 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r37_node_that_stops_matching_loses_its_pod() {
    let env = start(2).await;
    for n in ["node-1", "node-2"] {
        env.patch_node(n, json!({"metadata": {"labels": {"role": "daemon"}}}))
            .await;
    }
    env.create_ds(
        "ds",
        json!({"spec": {"template": {"spec": {"nodeSelector": {"role": "daemon"}}}}}),
    )
    .await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
    env.patch_node("node-2", json!({"metadata": {"labels": {"role": null}}}))
        .await;
    wait_running_on(&env, "ds", &["node-1"]).await;
    env.wait_counts("ds", (1, 1, 1, 1, 1, 0, 0), 10).await;
    always("no pod on node-2", Duration::from_secs(1), || async {
        env.nodes_with_pods("ds").await == nodes(&["node-1"])
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r156_deleted_node_loses_its_pod_through_pod_gc() {
    let env = start(2).await;
    env.create_ds("ds", json!({})).await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
    env.nodes
        .delete("node-2", &DeleteParams::default())
        .await
        .expect("delete node");
    eventually("node-2's pod removed", 20, || async {
        let all = env.all_pods("ds").await;
        (all.len() == 1 && target_node(&all[0]) == "node-1").then_some(())
    })
    .await;
    env.wait_counts("ds", (1, 1, 1, 1, 1, 0, 0), 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r35_r110_extra_pods_on_a_node_are_pruned_to_the_oldest() {
    let env = start(1).await;
    env.create_ds("ds", json!({})).await;
    wait_running_on(&env, "ds", &["node-1"]).await;
    let original = env.pods_by_node("ds").await["node-1"][0].clone();
    // Two more matching pods on the same node (orphans: adopted, then pruned).
    for name in ["zz-extra-1", "zz-extra-2"] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "ds"}},
            "spec": {"nodeName": "node-1",
                     "containers": [{"name": "c", "image": "nginx:1.27"}]},
        }))
        .expect("pod literal");
        env.pods
            .create(&PostParams::default(), &pod)
            .await
            .expect("create extra pod");
    }
    eventually("extras gone", 20, || async {
        let all = env.all_pods("ds").await;
        (all.len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        env.pods_by_node("ds").await["node-1"],
        vec![original],
        "the oldest pod is kept"
    );
    env.wait_counts("ds", (1, 1, 1, 1, 1, 0, 0), 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r15_r21_r52_pod_construction_seen_through_the_api() {
    let env = start(2).await;
    for n in ["node-1", "node-2"] {
        env.patch_node(n, json!({"metadata": {"labels": {"zone": "a"}}}))
            .await;
    }
    let ds = env
        .create_ds(
            "ds",
            json!({"spec": {"template": {
            "metadata": {"labels": {"tier": "node"}, "annotations": {"note": "kept"}},
            "spec": {
                "hostNetwork": true,
                "tolerations": [
                    {"key": "custom", "operator": "Equal", "value": "x", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                     "effect": "NoExecute", "tolerationSeconds": 60}],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]},
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 5, "preference": {"matchExpressions": [
                                {"key": "zone", "operator": "In", "values": ["a"]}]}}]}},
            }}}}),
        )
        .await;
    wait_running_on(&env, "ds", &["node-1", "node-2"]).await;
    let uid = ds.metadata.uid.clone().expect("uid");
    let revs = env.revisions("ds").await;
    assert_eq!(revs.len(), 1);
    let hash = revs[0]
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .expect("hash label");

    for p in env.live_pods("ds").await {
        let node = target_node(&p);
        let name = pod_name(&p);
        // R15: generateName, namespace, labels and annotations of the template.
        assert_eq!(p.metadata.generate_name.as_deref(), Some("ds-"));
        assert!(
            name.starts_with("ds-") && name.len() == "ds-".len() + 5,
            "{name}"
        );
        assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
        let labels: BTreeMap<&str, &str> = p
            .metadata
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // R16: revision hash from the revision's label, template generation 1.
        assert_eq!(
            labels,
            BTreeMap::from([
                ("app", "ds"),
                ("tier", "node"),
                ("controller-revision-hash", hash.as_str()),
                ("pod-template-generation", "1"),
            ])
        );
        assert_eq!(
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("note"))
                .map(String::as_str),
            Some("kept")
        );
        // R17: exactly one controller reference.
        let refs = p.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(refs.len(), 1);
        let r = &refs[0];
        assert_eq!(
            (
                r.api_version.as_str(),
                r.kind.as_str(),
                r.name.as_str(),
                r.uid.as_str(),
                r.controller,
                r.block_owner_deletion
            ),
            (
                "apps/v1",
                "DaemonSet",
                "ds",
                uid.as_str(),
                Some(true),
                Some(true)
            )
        );
        let spec = p.spec.clone().expect("spec");
        assert!(spec.host_network == Some(true));
        // R19: required affinity replaced by the one matchFields term; preferred kept.
        let na =
            serde_json::to_value(spec.affinity.as_ref().unwrap().node_affinity.as_ref()).unwrap();
        assert_eq!(
            na["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [node]}]}]})
        );
        assert_eq!(
            na["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
            json!(5)
        );
        // R20, R21: user tolerations keep their order, the identical not-ready toleration is
        // replaced in place (tolerationSeconds lost), the other defaults appended, with
        // network-unavailable because of hostNetwork.
        let tol = serde_json::to_value(spec.tolerations.clone().unwrap_or_default()).unwrap();
        let d = |key: &str, effect: &str| json!({"key": format!("node.kubernetes.io/{key}"), "operator": "Exists", "effect": effect});
        assert_eq!(
            tol,
            json!([
                {"key": "custom", "operator": "Equal", "value": "x", "effect": "NoSchedule"},
                d("not-ready", "NoExecute"),
                d("unreachable", "NoExecute"),
                d("disk-pressure", "NoSchedule"),
                d("memory-pressure", "NoSchedule"),
                d("pid-pressure", "NoSchedule"),
                d("unschedulable", "NoSchedule"),
                d("network-unavailable", "NoSchedule"),
            ])
        );
        // R52: one SuccessfulCreate per pod from the controller.
        let ev = env
            .wait_event(
                "ds",
                "SuccessfulCreate",
                |m| m == format!("Created pod: {name}"),
                10,
            )
            .await;
        assert_eq!(ev.type_.as_deref(), Some("Normal"));
        assert_eq!(
            ev.source.and_then(|s| s.component).as_deref(),
            Some("daemonset-controller")
        );
        assert_eq!(ev.involved_object.kind.as_deref(), Some("DaemonSet"));
        assert_eq!(ev.involved_object.uid.as_deref(), Some(uid.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r41_r46_status_counters_follow_pods_and_nodes() {
    let env = start(3).await;
    env.patch_node("node-3", json!({"metadata": {"labels": {"skip": "yes"}}}))
        .await;
    env.create_ds(
        "ds",
        json!({"spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]}]}}}}}}}),
    )
    .await;
    // R41-R45: desired = eligible nodes; everything ready and available; nothing unavailable.
    env.wait_counts("ds", (2, 2, 2, 2, 2, 0, 0), 20).await;
    // R46: a pod pinned to a node that does not exist is counted nowhere (and, unbound, is
    // deleted: R39).
    let ghost: Pod = serde_json::from_value(json!({
        "metadata": {"name": "ghost", "labels": {"app": "ds"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}],
                 "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["nowhere"]}]}]}}}},
    }))
    .expect("pod literal");
    env.pods
        .create(&PostParams::default(), &ghost)
        .await
        .expect("create ghost");
    eventually("ghost deleted", 10, || async {
        env.pods.get_opt("ghost").await.ok().and_then(|p| {
            p.is_none_or(|p| p.metadata.deletion_timestamp.is_some())
                .then_some(())
        })
    })
    .await;
    env.wait_counts("ds", (2, 2, 2, 2, 2, 0, 0), 10).await;
    // Making node-3 eligible raises desired at once; current and ready follow.
    env.patch_node("node-3", json!({"metadata": {"labels": {"skip": null}}}))
        .await;
    env.wait_counts("ds", (3, 3, 3, 3, 3, 0, 0), 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r34_r119_r52_failed_pods_are_deleted_and_recreated_with_backoff() {
    let env = start(1).await;
    let watch = e2e::PodWatch::start(&env, "app=ds").await;
    env.create_ds(
        "ds",
        json!({"spec": {"template": {"metadata": {"annotations": {
            "pernode.io/simulate-exit": "1"}}}}}),
    )
    .await;
    // Each pod fails; the controller deletes it (FailedDaemonPod) and creates a new one.
    let ev = env
        .wait_event(
            "ds",
            "FailedDaemonPod",
            |m| {
                m.starts_with("Found failed daemon pod default/ds-")
                    && m.ends_with(" on node node-1, will try to kill it")
            },
            10,
        )
        .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    // Three deletions: the first immediate, then after >= 1 s, then after >= 2 s (R119).
    let times = eventually("three failed pods deleted", 20, || async {
        let t = watch.deletion_times();
        (t.len() >= 3).then_some(t)
    })
    .await;
    let mut at: Vec<std::time::Instant> = times.values().copied().collect();
    at.sort();
    let gap1 = at[1] - at[0];
    let gap2 = at[2] - at[1];
    assert!(gap1 >= Duration::from_millis(900), "first backoff {gap1:?}");
    assert!(
        gap2 >= Duration::from_millis(1900),
        "second backoff {gap2:?}"
    );
    assert!(gap2 < Duration::from_secs(6), "second backoff {gap2:?}");
    // A replacement exists and is counted; the failed pods never make the node available.
    let s = env.status("ds").await.expect("status");
    assert_eq!(s.desired_number_scheduled, 1);
    assert_eq!(s.number_available.unwrap_or(0), 0);
    assert_eq!(s.number_unavailable, Some(1));
    eventually("a replacement pod exists", 10, || async {
        (!env.live_pods("ds").await.is_empty()).then_some(())
    })
    .await;
    // Every pod seen was bound to node-1 and at most one was live at a time.
    for s in watch.snapshots() {
        let live = s
            .pods
            .values()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none() && !pernode_core::pod::is_pod_terminal(p)
            })
            .count();
        assert!(live <= 1, "two live pods at once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_image_stays_pending_with_image_pull_errors_and_counts_unavailable() {
    let env = start(2).await;
    env.create_ds(
        "ds",
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:1.27-bad"}]}}}}),
    )
    .await;
    let waiting = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone())
    };
    eventually("ErrImagePull on both nodes", 10, || async {
        let pods = env.live_pods("ds").await;
        (pods.len() == 2
            && pods.iter().all(|p| {
                p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")
                    && waiting(p).is_some_and(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
            }))
        .then_some(())
    })
    .await;
    eventually("ImagePullBackOff on both nodes", 10, || async {
        let pods = env.live_pods("ds").await;
        (pods.len() == 2
            && pods
                .iter()
                .all(|p| waiting(p).as_deref() == Some("ImagePullBackOff")))
        .then_some(())
    })
    .await;
    env.wait_counts("ds", (2, 2, 0, 2, 0, 0, 2), 10).await;
    // The pods are neither failed nor replaced: same names over a window.
    let names: Vec<String> = env.live_pods("ds").await.iter().map(pod_name).collect();
    always("pending pods are kept", Duration::from_secs(1), || async {
        env.live_pods("ds")
            .await
            .iter()
            .map(pod_name)
            .collect::<Vec<_>>()
            == names
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r8_r42_r158_pod_that_does_not_fit_stays_pending_with_failed_scheduling() {
    let env = start(2).await;
    env.create_ds(
        "ds",
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:1.27", "resources": {"requests": {"cpu": "64"}}}]}}}}),
    )
    .await;
    let unschedulable = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
            .is_some_and(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
    };
    let pods = eventually("both pods unschedulable", 10, || async {
        let pods = env.live_pods("ds").await;
        (pods.len() == 2 && pods.iter().all(unschedulable)).then_some(pods)
    })
    .await;
    for p in &pods {
        assert_eq!(p.spec.as_ref().and_then(|s| s.node_name.clone()), None);
        assert_eq!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Pending")
        );
        let name = pod_name(p);
        env.wait_event(
            &name,
            "FailedScheduling",
            |m| m.contains("Insufficient cpu"),
            10,
        )
        .await;
    }
    // R42: unscheduled pods count as current; none is ready or available.
    env.wait_counts("ds", (2, 2, 0, 2, 0, 0, 2), 10).await;
    // R8: the controller does not react to the lack of resources.
    always(
        "no replacement, no controller warning",
        Duration::from_secs(1),
        || async {
            let same = env
                .live_pods("ds")
                .await
                .iter()
                .map(pod_name)
                .collect::<Vec<_>>()
                == pods.iter().map(pod_name).collect::<Vec<_>>();
            let warnings = env
                .events
                .list(&Default::default())
                .await
                .map(|l| {
                    l.items.into_iter().any(|e| {
                        e.involved_object.name.as_deref() == Some("ds")
                            && e.type_.as_deref() == Some("Warning")
                    })
                })
                .unwrap_or(true);
            same && !warnings
        },
    )
    .await;
}

/// Creates DaemonSet `ds` running on both nodes; returns its pod names.
async fn running_ds(env: &Env) -> Vec<String> {
    env.create_ds("ds", json!({})).await;
    wait_running_on(env, "ds", &["node-1", "node-2"]).await;
    eventually("one revision", 10, || async {
        (env.revisions("ds").await.len() == 1).then_some(())
    })
    .await;
    env.live_pods("ds").await.iter().map(pod_name).collect()
}

fn propagation(p: PropagationPolicy) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(p),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r106_r107_background_deletion_removes_pods_and_revisions() {
    let env = start(2).await;
    running_ds(&env).await;
    env.dss
        .delete("ds", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        env.dss.get_opt("ds").await.expect("get").is_none(),
        "gone at once"
    );
    eventually("pods and revisions collected", 20, || async {
        (env.all_pods("ds").await.is_empty() && env.revisions("ds").await.is_empty()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r29_r107_foreground_deletion_removes_pods_first_and_creates_none() {
    let env = start(2).await;
    let names = running_ds(&env).await;
    let watch = e2e::PodWatch::start(&env, "app=ds").await;
    env.dss
        .delete("ds", &propagation(PropagationPolicy::Foreground))
        .await
        .expect("delete");
    let saw_finalizer = std::cell::Cell::new(false);
    eventually("ds gone", 20, || async {
        match env.dss.get_opt("ds").await.ok()? {
            Some(ds) => {
                if ds
                    .metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .any(|f| f == "foregroundDeletion")
                {
                    saw_finalizer.set(true);
                }
                None
            }
            None => Some(()),
        }
    })
    .await;
    assert!(
        saw_finalizer.get(),
        "the DaemonSet waited with foregroundDeletion"
    );
    assert!(env.all_pods("ds").await.is_empty(), "pods removed first");
    // R29: no pod was created while the DaemonSet was being deleted.
    let mut seen: Vec<String> = watch.names_seen().into_iter().collect();
    seen.sort();
    let mut names = names;
    names.sort();
    assert_eq!(seen, names, "only the original pods ever existed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r107_r112_orphan_deletion_keeps_pods_and_a_recreated_ds_adopts_them() {
    let env = start(2).await;
    let mut names = running_ds(&env).await;
    names.sort();
    env.dss
        .delete("ds", &propagation(PropagationPolicy::Orphan))
        .await
        .expect("delete");
    eventually("ds gone", 20, || async {
        env.dss.get_opt("ds").await.ok()?.is_none().then_some(())
    })
    .await;
    let pods = env.live_pods("ds").await;
    assert_eq!(pods.iter().map(pod_name).collect::<Vec<_>>(), names);
    for p in &pods {
        assert_eq!(p.metadata.owner_references, None, "released");
        assert!(pernode_core::pod::is_pod_ready(p), "still running");
    }
    let revs = env.revisions("ds").await;
    assert_eq!(revs.len(), 1);
    assert_eq!(revs[0].metadata.owner_references, None);

    // R112: the same DaemonSet again adopts pods and revision; nothing restarts.
    let ds = env.create_ds("ds", json!({})).await;
    let uid = ds.metadata.uid.expect("uid");
    eventually("adopted", 20, || async {
        let pods = env.live_pods("ds").await;
        let owned = pods.iter().all(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid && r.controller == Some(true))
        });
        let revs = env.revisions("ds").await;
        let rev_owned = revs.len() == 1
            && revs[0]
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.uid == uid);
        (owned && rev_owned && pods.len() == 2).then_some(())
    })
    .await;
    env.wait_counts("ds", (2, 2, 2, 2, 2, 0, 0), 10).await;
    assert_eq!(
        env.live_pods("ds")
            .await
            .iter()
            .map(pod_name)
            .collect::<Vec<_>>(),
        names,
        "no pod restarted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r108_r109_orphans_adopted_foreign_pods_ignored_non_matching_released() {
    let env = start(2).await;
    // An orphan on node-1 before the DaemonSet exists.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "ds"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx:1.27"}]},
    }))
    .expect("pod literal");
    env.pods
        .create(&PostParams::default(), &orphan)
        .await
        .expect("orphan");
    // Another DaemonSet whose pods carry our labels too: they are its, not ours (R108, R114).
    env.create_ds(
        "other",
        json!({"spec": {
            "selector": {"matchLabels": {"app": null, "team": "x"}},
            "template": {"metadata": {"labels": {"app": "ds", "team": "x"}}}}}),
    )
    .await;
    // OnDelete, so the adopted pod (an old pod: it has no revision labels) is kept (R110).
    let ds = env
        .create_ds(
            "ds",
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        )
        .await;
    let uid = ds.metadata.uid.clone().expect("uid");
    eventually("orphan adopted, one own pod per node", 20, || async {
        let ours: Vec<Pod> = env
            .live_pods("ds")
            .await
            .into_iter()
            .filter(|p| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.uid == uid)
            })
            .collect();
        let mut on: Vec<String> = ours.iter().map(target_node).collect();
        on.sort();
        let adopted = ours.iter().any(|p| pod_name(p) == "orphan");
        (adopted && on == nodes(&["node-1", "node-2"])).then_some(())
    })
    .await;
    let adopted = env.pods.get("orphan").await.expect("orphan");
    let r = &adopted.metadata.owner_references.as_ref().expect("refs")[0];
    assert_eq!(
        (r.kind.as_str(), r.controller, r.block_owner_deletion),
        ("DaemonSet", Some(true), Some(true))
    );
    // The adopted pod is not updated: updatedNumberScheduled 1.
    env.wait_counts("ds", (2, 2, 2, 1, 2, 0, 0), 10).await;
    env.wait_counts("other", (2, 2, 2, 2, 2, 0, 0), 10).await;
    assert_eq!(env.live_pods("ds").await.len(), 4, "2 ours + 2 of other");

    // R108: a pod whose labels stop matching is released, not deleted; its node gets a new one.
    let released = env.pods_by_node("ds").await;
    let victim = released["node-2"]
        .iter()
        .find(|n| n.starts_with("ds-"))
        .expect("our node-2 pod")
        .clone();
    env.pods
        .patch(
            &victim,
            &Default::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
        )
        .await
        .expect("relabel");
    eventually("released and replaced", 20, || async {
        let p = env.pods.get(&victim).await.ok()?;
        let released = p
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(|r| r.is_empty());
        let replaced = env.live_pods("ds").await.iter().any(|p| {
            target_node(p) == "node-2" && pod_label(p, "team").is_none() && pod_name(p) != victim
        });
        (released && replaced && p.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    env.wait_counts("ds", (2, 2, 2, 1, 2, 0, 0), 10).await;
    assert!(
        env.pods.get("orphan").await.is_ok(),
        "the adopted pod was kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r110_adopted_old_pod_is_rolled_under_rolling_update() {
    let env = start(1).await;
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "ds"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx:1.27"}]},
    }))
    .expect("pod literal");
    env.pods
        .create(&PostParams::default(), &orphan)
        .await
        .expect("orphan");
    env.create_ds("ds", json!({})).await;
    // Adopted, found old (no revision labels), replaced by an updated pod.
    env.wait_event("ds", "SuccessfulDelete", |m| m == "Deleted pod: orphan", 20)
        .await;
    wait_running_on(&env, "ds", &["node-1"]).await;
    env.wait_counts("ds", (1, 1, 1, 1, 1, 0, 0), 10).await;
    let pods = env.live_pods("ds").await;
    assert_ne!(pod_name(&pods[0]), "orphan");
    assert!(pod_label(&pods[0], "controller-revision-hash").is_some());
}
