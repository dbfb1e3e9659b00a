//! Shared helpers of the controller integration tests: an in-process API server, a fast
//! simulator, and polling.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use pernode_agent::simulator::{self, SimulatorOptions};
use serde_json::json;

/// A fresh in-process API server.
pub async fn cluster() -> kube::Client {
    let router = pernode_apiserver::in_memory_router()
        .await
        .expect("api server");
    kube::Client::new(router, "default")
}

/// Start the simulator with short intervals.
pub fn start_simulator(client: &kube::Client) {
    let opts = SimulatorOptions {
        heartbeat_interval: Duration::from_millis(300),
        node_status_interval: Duration::from_millis(500),
        ..Default::default()
    };
    tokio::spawn(simulator::run(client.clone(), opts));
}

/// Poll `f` until it yields Some, for up to `secs` seconds.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
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

/// A pod pinned to `node` the way the DaemonSet controller pins daemon pods.
pub fn pinned_pod(name: &str, node: &str, cpu: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "containers": [{"name": "c", "image": "nginx:1.27",
                            "resources": {"requests": {"cpu": cpu}}}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [node]}]}]}}},
        },
    }))
    .expect("pod literal")
}
