//! What the in-process agent tests share: an in-memory API server with the objects a running
//! cluster keeps, agent options for fast tests, and polling helpers (every wait has a
//! deadline).

#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, ContainerStatus, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use pernode_agent::agent::{self, AgentOptions, CgroupMode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub struct Cluster {
    pub router: axum::Router,
    pub client: kube::Client,
}

/// The cluster CA of every test cluster: it signs the API server's kubelet client
/// certificate, and agents trust it for client certificates.
pub fn cluster_ca() -> &'static pernode_auth::pki::ClusterCa {
    static CA: std::sync::OnceLock<pernode_auth::pki::ClusterCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| pernode_auth::pki::ClusterCa::generate().expect("cluster CA"))
}

/// A client of kubelet ports presenting a certificate the cluster CA issued to `user`.
pub fn kubelet_client_as(
    user: &str,
    groups: &[&str],
) -> pernode_apiserver::node_proxy::KubeletClient {
    let cert = cluster_ca()
        .issue_client(user, groups, 1)
        .expect("client certificate");
    pernode_apiserver::node_proxy::KubeletClient::new(Some((&cert.cert_pem, &cert.key_pem)), None)
        .expect("kubelet client")
}

pub async fn cluster() -> Cluster {
    let options = pernode_apiserver::ApiServerOptions {
        kubelet_client: kubelet_client_as(pernode_apiserver::node_proxy::KUBELET_CLIENT_USER, &[]),
        ..Default::default()
    };
    let router = pernode_apiserver::in_memory_router_with(options)
        .await
        .expect("api server");
    let client = kube::Client::new(router.clone(), "default");
    // What the root CA publisher keeps in every namespace of a running cluster: the pods'
    // `kube-api-access-*` volumes project its `ca.crt`.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let ca: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "kube-root-ca.crt"},
        "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"},
    }))
    .expect("config map literal");
    cms.create(&PostParams::default(), &ca)
        .await
        .expect("kube-root-ca.crt");
    Cluster { router, client }
}

pub fn options(node: &str, root: &Path) -> AgentOptions {
    let mut o = AgentOptions::new(node, "127.0.0.1".parse().expect("ip"), root.to_path_buf());
    o.listen = "127.0.0.1:0".parse().expect("addr");
    o.lease_interval = Duration::from_millis(200);
    o.node_status_interval = Duration::from_millis(300);
    o.cgroups = CgroupMode::Disabled;
    o.backoff_initial = Duration::from_millis(300);
    o.backoff_max = Duration::from_secs(2);
    o.file_check_frequency = Duration::from_millis(200);
    o.server_auth.client_ca_pem = Some(cluster_ca().cert_pem.clone());
    o
}

/// Runs an agent until the handle is aborted (which leaves its processes running).
pub fn start(client: &kube::Client, opts: AgentOptions) -> JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        if let Err(e) = agent::run(client, opts).await {
            panic!("agent failed: {e}");
        }
    })
}

/// Polls `f` until it yields Some, for up to 20 s.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
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

pub fn pod(name: &str, node: &str, container: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5, "containers": [container]},
    }))
    .expect("pod literal")
}

pub fn sh(script: &str) -> Value {
    json!({"name": "c", "image": "busybox", "command": ["sh", "-c", script]})
}

pub fn status_of(p: &Pod) -> Option<&ContainerStatus> {
    p.status.as_ref()?.container_statuses.as_ref()?.first()
}

pub fn condition(p: &Pod, t: &str) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

pub async fn read_pid(path: &Path) -> u32 {
    eventually("the container writes its pid", || async {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
    .await
}

pub async fn get_raw(router: &axum::Router, uri: &str) -> (u16, String) {
    use tower::ServiceExt;
    let req = http::Request::get(uri)
        .body(axum::body::Body::empty())
        .expect("request");
    let resp = router.clone().oneshot(req).await.expect("response");
    let status = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Deletes the pod and waits until it is gone from the API and its process has exited.
pub async fn delete_and_wait(pods: &Api<Pod>, name: &str, pid: Option<u32>) {
    let _ = pods.delete(name, &DeleteParams::default()).await;
    eventually("the pod is removed after termination", || async {
        pods.get_opt(name)
            .await
            .ok()
            .flatten()
            .is_none()
            .then_some(())
    })
    .await;
    if let Some(pid) = pid {
        eventually("the process is gone", || async {
            (!pid_alive(pid)).then_some(())
        })
        .await;
    }
}

/// Unmounts whatever is still mounted under a directory when dropped: the memory-backed
/// volumes an agent mounted, should a test fail before its pods were torn down.
pub struct UnmountOnDrop(pub std::path::PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        let dir = self.0.display().to_string();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .collect();
        // Deepest first.
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = rustix::mount::unmount(p, rustix::mount::UnmountFlags::DETACH);
        }
    }
}
