//! The `kubernetes` Service in `default`, as upstream's control plane keeps it
//! (pkg/controlplane/controller/kubernetesservice and the endpoint reconciler): the first
//! address of the service CIDR, port 443 named `https`, with Endpoints and an EndpointSlice
//! naming the API server's own address once it serves TCP. In-cluster clients and
//! `kubectl cluster-info` look for it.

use std::net::SocketAddr;

use pernode_store::{Store, StoreError};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::service_alloc::KUBERNETES_SERVICE_IP;

const SERVICE_KEY: &str = "services/default/kubernetes";
const ENDPOINTS_KEY: &str = "endpoints/default/kubernetes";
const SLICE_KEY: &str = "endpointslices/default/kubernetes";

/// Upstream's secure port, the Service's target until the server's own port is known.
const DEFAULT_TARGET_PORT: u16 = 6443;

fn meta(name: &str, labels: Value) -> Value {
    json!({"name": name, "namespace": "default", "labels": labels})
}

fn service(target_port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("kubernetes", json!({"component": "apiserver", "provider": "kubernetes"})),
        "spec": {
            "clusterIP": KUBERNETES_SERVICE_IP.to_string(),
            "clusterIPs": [KUBERNETES_SERVICE_IP.to_string()],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": target_port}],
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    })
}

/// Creates the Service if it is missing (at startup).
pub async fn ensure_service(store: &Store) -> Result<(), ApiError> {
    crate::ensure_object(store, SERVICE_KEY, service(DEFAULT_TARGET_PORT)).await
}

/// Points the Service, its Endpoints and its EndpointSlice at `addr`, where the server now
/// serves.
pub async fn reconcile(store: &Store, addr: SocketAddr) -> Result<(), ApiError> {
    let port = addr.port();
    let ip = addr.ip().to_string();
    ensure_service(store).await?;
    if let Some(entry) = store.get(SERVICE_KEY) {
        let mut svc: Value =
            serde_json::from_slice(&entry.json).map_err(|e| ApiError::internal(e.to_string()))?;
        if svc.pointer("/spec/ports/0/targetPort") != Some(&json!(port)) {
            svc["spec"]["ports"][0]["targetPort"] = json!(port);
            // A lost race means another writer changed it: its view wins until next start.
            let _ = store.update(SERVICE_KEY, svc, Some(entry.rv)).await;
        }
    }
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta("kubernetes", json!({"endpointslice.kubernetes.io/skip-mirror": "true"})),
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    });
    replace(store, ENDPOINTS_KEY, endpoints).await?;
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta("kubernetes", json!({"kubernetes.io/service-name": "kubernetes"})),
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    replace(store, SLICE_KEY, slice).await
}

/// Writes `obj` at `key`, keeping the stored object's identity if there is one.
async fn replace(store: &Store, key: &str, mut obj: Value) -> Result<(), ApiError> {
    let Some(entry) = store.get(key) else {
        return crate::ensure_object(store, key, obj).await;
    };
    let old: Value =
        serde_json::from_slice(&entry.json).map_err(|e| ApiError::internal(e.to_string()))?;
    for field in ["uid", "creationTimestamp"] {
        if let Some(v) = old.pointer(&format!("/metadata/{field}")) {
            obj["metadata"][field] = v.clone();
        }
    }
    let unchanged = ["subsets", "endpoints", "ports"]
        .iter()
        .all(|f| old.get(*f) == obj.get(*f));
    if unchanged {
        return Ok(());
    }
    match store.update(key, obj, Some(entry.rv)).await {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}
