//! Pod GC against pernode's own API server, in process.

mod common;

use std::time::Duration;

use common::{cluster, eventually, start_simulator};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use pernode_agent::simulator;
use pernode_controllers::pod_gc::{self, PodGcOptions};
use serde_json::json;

fn bound_pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx:1.27"}]},
    }))
    .expect("pod literal")
}

#[tokio::test]
async fn pods_of_a_deleted_node_are_removed_after_quarantine() {
    let client = cluster().await;
    simulator::create_nodes(client.clone(), 2, "node")
        .await
        .expect("nodes");
    start_simulator(&client);
    let opts = PodGcOptions {
        quarantine: Duration::from_millis(500),
        sweep_interval: Duration::from_secs(1),
    };
    tokio::spawn(pod_gc::run(client.clone(), opts));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    pods.create(&pp, &bound_pod("stays", "node-1"))
        .await
        .expect("pod");
    pods.create(&pp, &bound_pod("goes", "node-2"))
        .await
        .expect("pod");
    pods.create(&pp, &bound_pod("ghost", "no-such-node"))
        .await
        .expect("pod");
    eventually("running", 10, || async {
        pods.get("goes")
            .await
            .ok()
            .filter(pernode_core::pod::is_pod_ready)
    })
    .await;

    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .delete("node-2", &DeleteParams::default())
        .await
        .expect("delete node");
    eventually("pods of vanished nodes removed", 15, || async {
        let goes = pods.get_opt("goes").await.ok()?;
        let ghost = pods.get_opt("ghost").await.ok()?;
        (goes.is_none() && ghost.is_none()).then_some(())
    })
    .await;
    assert!(pods.get_opt("stays").await.expect("get").is_some());
}
