//! A PodDisruptionBudget over a DaemonSet's pods on simulated nodes, against the in-process API
//! server: the disruption controller's status, evictions that keep the budget (and their dry
//! run) and one that would break it, and budgets the API server or the controller refuse.

mod common;

use common::{cluster, eventually, start_simulator};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams, PostParams};
use pernode_controllers::{daemonset, disruption, scheduler};
use serde_json::{Value, json};

const NODES: usize = 3;

async fn status_of(pdbs: &Api<PodDisruptionBudget>, name: &str) -> Value {
    let pdb = pdbs.get(name).await.expect("get budget");
    serde_json::to_value(pdb.status).expect("status")
}

fn condition(status: &Value) -> (String, String) {
    let c = &status["conditions"][0];
    (
        c["status"].as_str().unwrap_or_default().to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn a_budget_over_daemon_pods_guards_their_eviction() {
    let client = cluster().await;
    start_simulator(&client);
    pernode_agent::simulator::create_nodes(client.clone(), NODES, "node")
        .await
        .expect("nodes");
    let ds_controller = tokio::spawn(daemonset::run(client.clone(), Default::default()));
    tokio::spawn(scheduler::run(client.clone(), Default::default()));
    tokio::spawn(disruption::run(client.clone(), Default::default()));

    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
            },
        },
    }))
    .expect("daemon set");
    dss.create(&PostParams::default(), &ds)
        .await
        .expect("create daemon set");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let budget = |name: &str, spec: Value| -> PodDisruptionBudget {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("pdb")
    };

    // Invalid budgets are refused with upstream's field errors, and nothing is stored.
    let err = pdbs
        .create(
            &PostParams::default(),
            &budget(
                "both",
                json!({"minAvailable": 1, "maxUnavailable": 1, "selector": {"matchLabels": {"app": "agent"}}}),
            ),
        )
        .await
        .expect_err("both set");
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status
            .message
            .starts_with("PodDisruptionBudget.policy \"both\" is invalid: spec: Invalid value: policy.PodDisruptionBudgetSpec{"),
        "{}",
        status.message
    );
    assert!(
        status
            .message
            .ends_with(": minAvailable and maxUnavailable cannot be both set"),
        "{}",
        status.message
    );
    assert!(pdbs.get_opt("both").await.expect("get").is_none());

    let created = pdbs
        .create(
            &PostParams::default(),
            &budget(
                "agent",
                json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "agent"}}}),
            ),
        )
        .await
        .expect("create budget");
    assert_eq!(created.metadata.generation, Some(1));
    // maxUnavailable needs the scale of the pods' controller, which a DaemonSet lacks: the
    // controller fails safe, as upstream's.
    pdbs.create(
        &PostParams::default(),
        &budget(
            "by-scale",
            json!({"maxUnavailable": 1, "selector": {"matchLabels": {"tier": "none-yet"}}}),
        ),
    )
    .await
    .expect("create budget");

    // The controller's status: three expected and healthy, two desired, one disruption.
    let status = eventually("the budget's status", 60, || async {
        let s = status_of(&pdbs, "agent").await;
        (s["currentHealthy"] == NODES && s["expectedPods"] == NODES).then_some(s)
    })
    .await;
    assert_eq!(status["desiredHealthy"], 2);
    assert_eq!(status["disruptionsAllowed"], 1);
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(
        condition(&status),
        ("True".to_string(), "SufficientPods".to_string())
    );

    // From here on, evicted pods are not replaced, so the counts stay put.
    ds_controller.abort();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut names: Vec<String> = pods
        .list(&ListParams::default().labels("app=agent"))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names.len(), NODES);

    // A dry run is answered as the eviction and changes nothing.
    let dry = EvictParams {
        post_options: PostParams {
            dry_run: true,
            ..Default::default()
        },
        ..Default::default()
    };
    pods.evict(&names[0], &dry).await.expect("dry-run eviction");
    let unchanged = status_of(&pdbs, "agent").await;
    assert_eq!(unchanged["disruptionsAllowed"], 1);
    assert!(unchanged.get("disruptedPods").is_none(), "{unchanged}");
    assert!(
        pods.get(&names[0])
            .await
            .expect("pod")
            .metadata
            .deletion_timestamp
            .is_none()
    );

    // An eviction the budget allows: it takes the disruption, and the pod goes.
    pods.evict(&names[0], &EvictParams::default())
        .await
        .expect("eviction within the budget");
    let after = status_of(&pdbs, "agent").await;
    assert_eq!(after["disruptionsAllowed"], 0, "{after}");
    let evicted = pods.get_opt(&names[0]).await.expect("get pod");
    if let Some(p) = evicted {
        let conditions = serde_json::to_value(p.status.and_then(|s| s.conditions)).unwrap();
        assert!(
            conditions
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "DisruptionTarget" && c["reason"] == "EvictionByEvictionAPI"),
            "{conditions}"
        );
    }
    // The controller's status follows: the pod is gone, and so is its record.
    let status = eventually("the status after the eviction", 60, || async {
        let gone = pods.get_opt(&names[0]).await.expect("get pod").is_none();
        let s = status_of(&pdbs, "agent").await;
        (gone && s["expectedPods"] == NODES - 1 && s.get("disruptedPods").is_none()).then_some(s)
    })
    .await;
    assert_eq!(status["currentHealthy"], 2);
    assert_eq!(status["desiredHealthy"], 2);
    assert_eq!(status["disruptionsAllowed"], 0);
    assert_eq!(
        condition(&status),
        ("False".to_string(), "InsufficientPods".to_string())
    );

    // One more would break the budget: 429 with upstream's message and cause.
    let err = pods
        .evict(&names[1], &EvictParams::default())
        .await
        .expect_err("the budget refuses");
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 429);
    assert_eq!(status.reason, "TooManyRequests");
    assert_eq!(
        status.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let details = serde_json::to_value(&status.details).expect("details");
    assert_eq!(
        details["causes"],
        json!([{"reason": "DisruptionBudget", "message": "The disruption budget agent needs 2 healthy pods and has 2 currently"}]),
        "{details}"
    );
    assert!(
        pods.get(&names[1])
            .await
            .expect("the pod stays")
            .metadata
            .deletion_timestamp
            .is_none()
    );

    // The budget over DaemonSet pods by maxUnavailable: no disruption, SyncFailed, once a pod
    // it selects exists.
    pods.patch(
        &names[2],
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "none-yet"}}})),
    )
    .await
    .expect("label pod");
    let failed = eventually("the fail-safe status", 60, || async {
        let s = status_of(&pdbs, "by-scale").await;
        (s["conditions"][0]["reason"] == "SyncFailed").then_some(s)
    })
    .await;
    assert_eq!(failed["disruptionsAllowed"], 0);
    assert_eq!(
        failed["conditions"][0]["message"],
        "daemonsets.apps does not implement the scale subresource"
    );
    assert_eq!(failed["conditions"][0]["status"], "False");
}
