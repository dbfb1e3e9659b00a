//! The `kubernetes` Service in `default`, as upstream's control plane keeps it
//! (pkg/controlplane/controller/kubernetesservice and the endpoint reconciler): the first
//! address of the service CIDR, port 443 named `https`, with Endpoints and an EndpointSlice
//! naming the live API servers once they serve TCP. In-cluster clients and `kubectl
//! cluster-info` look for it.
//!
//! Several servers share the Endpoints as upstream's lease endpoint reconciler
//! (pkg/controlplane/reconcilers/lease.go) has them: each keeps a lease `masterleases/<ip>`
//! naming itself, renewed every two thirds of the TTL (upstream: 10 s of 15 s), and rewrites
//! the Endpoints and EndpointSlice to the servers whose lease is live; one that stops cleanly
//! removes its lease first. Upstream's lease is an etcd key with a TTL; pernode's store has no
//! TTLs, so the lease carries its expiry (`pernode.io/expires`, the writer's clock) and every
//! server deletes expired ones. As upstream, every server is taken to serve on the same port:
//! the Endpoints name the writer's.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use pernode_store::{Store, StoreError};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::service_alloc::KUBERNETES_SERVICE_IP;

const SERVICE_KEY: &str = "services/default/kubernetes";
const ENDPOINTS_KEY: &str = "endpoints/default/kubernetes";
const SLICE_KEY: &str = "endpointslices/default/kubernetes";
const LEASES_PREFIX: &str = "masterleases/";
const EXPIRES: &str = "pernode.io/expires";

/// Upstream's master lease TTL (`DefaultEndpointReconcilerTTL`).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

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

/// This server's lease: an Endpoints naming it, as upstream keeps under `/masterleases/<ip>`,
/// with its expiry.
fn lease(ip: &str, port: u16, expires: Timestamp) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": ip, "annotations": {EXPIRES: expires.to_string()}},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    })
}

/// Renews this server's lease for `ttl`, then points the Service, its Endpoints and its
/// EndpointSlice at the servers whose leases are live.
pub async fn reconcile(store: &Store, addr: SocketAddr, ttl: Duration) -> Result<(), ApiError> {
    let ip = addr.ip().to_string();
    let expires = Timestamp::now()
        .checked_add(ttl)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let key = format!("{LEASES_PREFIX}{ip}");
    let renewed = lease(&ip, addr.port(), expires);
    let written = match store.get(&key) {
        Some(entry) => store.update(&key, renewed, Some(entry.rv)).await.map(drop),
        None => store.create(&key, renewed).await.map(drop),
    };
    match written {
        Ok(()) | Err(StoreError::Conflict { .. } | StoreError::AlreadyExists) => {}
        Err(e) => return Err(ApiError::internal(e.to_string())),
    }
    write_endpoints(store, addr.port()).await
}

/// Removes this server's lease and the server from the Endpoints (a clean shutdown).
pub async fn remove(store: &Store, addr: SocketAddr) -> Result<(), ApiError> {
    let key = format!("{LEASES_PREFIX}{}", addr.ip());
    match store.delete(&key, None).await {
        Ok(_) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(ApiError::internal(e.to_string())),
    }
    write_endpoints(store, addr.port()).await
}

/// The IPs of the live leases, sorted; expired ones are deleted.
async fn live_servers(store: &Store) -> Vec<String> {
    let now = Timestamp::now();
    let (_, entries) = store.list(LEASES_PREFIX, |_| true);
    let mut live = Vec::new();
    for entry in entries {
        let lease: Value = serde_json::from_slice(&entry.json).unwrap_or_default();
        let expires = lease
            .pointer("/metadata/annotations/pernode.io~1expires")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok());
        let ip = lease.pointer("/metadata/name").and_then(Value::as_str);
        match (ip, expires) {
            (Some(ip), Some(expires)) if expires > now => live.push(ip.to_owned()),
            // Another server may renew or delete it first: its write wins.
            _ => drop(store.delete(&entry.key, Some(entry.rv)).await),
        }
    }
    live.sort_unstable();
    live
}

async fn write_endpoints(store: &Store, port: u16) -> Result<(), ApiError> {
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
    let ips = live_servers(store).await;
    let ports = json!([{"name": "https", "port": port, "protocol": "TCP"}]);
    let subsets = match ips.is_empty() {
        true => json!([]),
        false => {
            json!([{"addresses": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(), "ports": ports}])
        }
    };
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": meta("kubernetes", json!({"endpointslice.kubernetes.io/skip-mirror": "true"})),
        "subsets": subsets,
    });
    replace(store, ENDPOINTS_KEY, endpoints).await?;
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta("kubernetes", json!({"kubernetes.io/service-name": "kubernetes"})),
        "addressType": "IPv4",
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>(),
        "ports": ports,
    });
    replace(store, SLICE_KEY, slice).await
}

/// Keeps this server's lease and the Endpoints current until aborted.
pub fn spawn_reconciler(
    store: Store,
    addr: SocketAddr,
    ttl: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = reconcile(&store, addr, ttl).await {
                tracing::warn!(error = %e, "could not point the kubernetes Service at the live servers");
            }
            tokio::time::sleep(ttl * 2 / 3).await;
        }
    })
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
