//! `metrics.k8s.io/v1beta1`, served as metrics-server serves it (an aggregated API there, a
//! built-in group here): `NodeMetrics` and `PodMetrics` from each real node's kubelet Summary
//! API (`/stats/summary`, scraped through [`super::forward`] when asked), with the group's
//! discovery documents, so `kubectl top node` and `kubectl top pod` work.
//!
//! As metrics-server: CPU is the summary's `usageNanoCores` (a quantity in `n`), memory its
//! `workingSetBytes` (in `Ki`); a pod is left out until every one of its containers has both;
//! a node whose kubelet cannot be scraped has no metrics. Simulated nodes have no kubelet:
//! they (and their pods) have no metrics, so `kubectl top node` shows them `<unknown>`, and
//! asking for one by name is a 404 as for any node metrics-server has no figures for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use super::{Forward, NodeLocation, forward};
use crate::AppState;
use crate::error::ApiError;

/// The group and version.
pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

/// How long one node's summary may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// The window metrics are reported over (metrics-server's default resolution).
const WINDOW: &str = "10s";

/// What a request under `/apis/metrics.k8s.io` asks.
#[derive(Debug, PartialEq, Eq)]
pub enum MetricsRequest {
    /// `/apis/metrics.k8s.io`: the APIGroup.
    Group,
    /// `/apis/metrics.k8s.io/v1beta1`: the APIResourceList.
    Resources,
    /// `nodes` or `pods`, in a namespace or not, one by name or all.
    Metrics {
        resource: &'static str,
        namespace: Option<String>,
        name: Option<String>,
    },
}

/// Reads `path` as a metrics.k8s.io request; `None` for any other path.
pub fn parse(path: &str) -> Option<MetricsRequest> {
    let rest = path
        .trim_end_matches('/')
        .strip_prefix("/apis/metrics.k8s.io")?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let owned = |s: &str| Some(s.to_string());
    let r = match segments.as_slice() {
        [] => MetricsRequest::Group,
        [VERSION] => MetricsRequest::Resources,
        [VERSION, "nodes"] => metrics("nodes", None, None),
        [VERSION, "nodes", name] => metrics("nodes", None, owned(name)),
        [VERSION, "pods"] => metrics("pods", None, None),
        [VERSION, "namespaces", ns, "pods"] => metrics("pods", owned(ns), None),
        [VERSION, "namespaces", ns, "pods", name] => metrics("pods", owned(ns), owned(name)),
        _ => return None,
    };
    Some(r)
}

fn metrics(
    resource: &'static str,
    namespace: Option<String>,
    name: Option<String>,
) -> MetricsRequest {
    MetricsRequest::Metrics {
        resource,
        namespace,
        name,
    }
}

/// The group in `/apis`' APIGroupList.
pub fn api_group() -> Value {
    let version = json!({"groupVersion": GROUP_VERSION, "version": VERSION});
    json!({"name": GROUP, "versions": [version], "preferredVersion": version})
}

/// The group in `/apis`' aggregated discovery (APIGroupDiscovery).
pub fn aggregated_group() -> Value {
    let resource = |plural: &str, singular: &str, kind: &str, scope: &str| {
        json!({"resource": plural, "singularResource": singular, "scope": scope,
            "responseKind": {"group": GROUP, "version": VERSION, "kind": kind},
            "verbs": ["get", "list"]})
    };
    json!({"metadata": {"name": GROUP, "creationTimestamp": null}, "versions": [{
        "version": VERSION, "freshness": "Current",
        "resources": [resource("nodes", "", "NodeMetrics", "Cluster"),
                      resource("pods", "", "PodMetrics", "Namespaced")]}]})
}

fn group_document() -> Value {
    let mut g = api_group();
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    g
}

fn resource_list() -> Value {
    let resource = |name: &str, kind: &str, namespaced: bool| {
        json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
            "verbs": ["get", "list"]})
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
        "resources": [resource("nodes", "NodeMetrics", false),
                      resource("pods", "PodMetrics", true)]})
}

/// Answers `req` (already authorized) with its query's `labelSelector`.
pub async fn serve(
    state: &Arc<AppState>,
    req: MetricsRequest,
    query: &crate::params::Query,
) -> Result<Response, ApiError> {
    let (resource, namespace, name) = match req {
        MetricsRequest::Group => return Ok(axum::Json(group_document()).into_response()),
        MetricsRequest::Resources => return Ok(axum::Json(resource_list()).into_response()),
        MetricsRequest::Metrics {
            resource,
            namespace,
            name,
        } => (resource, namespace, name),
    };
    let selector = query.label_selector()?;
    let matches = |labels: &Option<BTreeMap<String, String>>| {
        selector
            .as_ref()
            .is_none_or(|s| s.matches(labels.as_ref().unwrap_or(&BTreeMap::new())))
    };
    // Only the nodes asked about, or running the pods asked about, are scraped.
    let items: Vec<Value> = if resource == "nodes" {
        let nodes: Vec<Node> = stored_all::<Node>(state, "nodes/")
            .into_iter()
            .filter(|n| name.is_none() || n.metadata.name == name)
            .filter(|n| matches(&n.metadata.labels))
            .collect();
        let names = nodes.iter().filter_map(|n| n.metadata.name.clone());
        let summaries = scrape(state, names.collect()).await;
        nodes
            .iter()
            .filter_map(|n| node_metrics(n, summaries.get(n.metadata.name.as_deref()?)?))
            .collect()
    } else {
        let prefix = match &namespace {
            Some(ns) => format!("pods/{ns}/"),
            None => "pods/".to_string(),
        };
        let pods: Vec<Pod> = stored_all::<Pod>(state, &prefix)
            .into_iter()
            .filter(|p| name.is_none() || p.metadata.name == name)
            .filter(|p| matches(&p.metadata.labels))
            .collect();
        let node_of = |p: &Pod| p.spec.as_ref()?.node_name.clone();
        let nodes: std::collections::BTreeSet<String> = pods.iter().filter_map(node_of).collect();
        let summaries = scrape(state, nodes.into_iter().collect()).await;
        pods.iter()
            .filter_map(|p| pod_metrics(p, summaries.get(&node_of(p)?)?))
            .collect()
    };
    let kind = if resource == "nodes" {
        "NodeMetrics"
    } else {
        "PodMetrics"
    };
    if let Some(name) = &name {
        // As metrics-server's: a pod is named with its namespace.
        let missing = match &namespace {
            Some(ns) if resource == "pods" => {
                ApiError::not_found(GROUP, "podmetrics", &format!("{ns}/{name}"))
            }
            _ => ApiError::not_found(GROUP, "nodemetrics", name),
        };
        let item = items.into_iter().next().ok_or(missing)?;
        return Ok(axum::Json(item).into_response());
    }
    let list = json!({"kind": format!("{kind}List"), "apiVersion": GROUP_VERSION,
        "metadata": {}, "items": items});
    Ok(axum::Json(list).into_response())
}

fn stored_all<T: serde::de::DeserializeOwned>(state: &AppState, prefix: &str) -> Vec<T> {
    let (_, entries) = state.store.list(prefix, |_| true);
    entries
        .iter()
        .filter_map(|e| serde_json::from_slice(&e.json).ok())
        .collect()
}

/// The summaries of the real ones of `nodes`, scraped at once; simulated nodes are never
/// dialled, and nodes that do not answer are left out.
async fn scrape(state: &Arc<AppState>, nodes: Vec<String>) -> BTreeMap<String, Value> {
    let scrapes = nodes.into_iter().map(|name| {
        let state = state.clone();
        async move {
            let NodeLocation::Real { node, host, port } = NodeLocation::of(&state, &name).ok()?
            else {
                return None;
            };
            let headers = HeaderMap::new();
            let fwd = Forward {
                method: Method::GET,
                path_and_query: "/stats/summary".to_string(),
                headers: &headers,
                body: bytes::Bytes::new(),
                upgrade: None,
            };
            let fetch = async {
                let response = forward(&state, &node, &host, port, fwd).await.ok()?;
                let body = response.into_body().collect().await.ok()?.to_bytes();
                serde_json::from_slice::<Value>(&body).ok()
            };
            let summary = tokio::time::timeout(SCRAPE_TIMEOUT, fetch).await.ok()??;
            Some((name, summary))
        }
    });
    futures::future::join_all(scrapes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// CPU and memory of a summary entry as resource quantities, if both are there.
fn usage(stats: &Value) -> Option<Value> {
    let cpu = stats["cpu"]["usageNanoCores"].as_u64()?;
    let memory = stats["memory"]["workingSetBytes"].as_u64()?;
    Some(json!({"cpu": format!("{cpu}n"), "memory": format!("{}Ki", memory / 1024)}))
}

fn timestamp(stats: &Value) -> Value {
    stats["cpu"]["time"].clone()
}

fn node_metrics(node: &Node, summary: &Value) -> Option<Value> {
    let stats = &summary["node"];
    Some(json!({
        "kind": "NodeMetrics", "apiVersion": GROUP_VERSION,
        "metadata": {"name": node.metadata.name, "labels": node.metadata.labels,
            "creationTimestamp": timestamp(stats)},
        "timestamp": timestamp(stats), "window": WINDOW, "usage": usage(stats)?,
    }))
}

fn pod_metrics(pod: &Pod, summary: &Value) -> Option<Value> {
    let entry = summary["pods"].as_array()?.iter().find(|p| {
        p["podRef"]["uid"].as_str() == pod.metadata.uid.as_deref()
            && p["podRef"]["name"].as_str() == pod.metadata.name.as_deref()
    })?;
    let containers: Vec<Value> = entry["containers"]
        .as_array()?
        .iter()
        .map(|c| Some(json!({"name": c["name"], "usage": usage(c)?})))
        .collect::<Option<_>>()?;
    if containers.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "PodMetrics", "apiVersion": GROUP_VERSION,
        "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace,
            "labels": pod.metadata.labels, "creationTimestamp": timestamp(&entry["cpu"])},
        "timestamp": entry["cpu"]["time"], "window": WINDOW, "containers": containers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_as_metrics_server_serves_them() {
        assert_eq!(parse("/apis/metrics.k8s.io"), Some(MetricsRequest::Group));
        assert_eq!(
            parse("/apis/metrics.k8s.io/v1beta1/"),
            Some(MetricsRequest::Resources)
        );
        assert_eq!(
            parse("/apis/metrics.k8s.io/v1beta1/namespaces/ns/pods/p"),
            Some(metrics("pods", Some("ns".into()), Some("p".into())))
        );
        assert_eq!(
            parse("/apis/metrics.k8s.io/v1beta1/nodes"),
            Some(metrics("nodes", None, None))
        );
        assert_eq!(parse("/apis/metrics.k8s.io/v1/nodes"), None);
        assert_eq!(parse("/apis/apps/v1"), None);
    }

    #[test]
    fn pods_get_figures_only_when_every_container_has_them() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns",
            "uid": "u"}}))
        .expect("pod");
        let container = |name: &str, cores: Option<u64>| {
            let mut cpu = json!({"time": "2026-01-01T00:00:00Z"});
            if let Some(c) = cores {
                cpu["usageNanoCores"] = json!(c);
            }
            json!({"name": name, "cpu": cpu, "memory": {"workingSetBytes": 2048}})
        };
        let summary = |containers: Vec<Value>| {
            json!({"pods": [{"podRef": {"name": "p", "namespace": "ns", "uid": "u"},
                "cpu": {"time": "2026-01-01T00:00:00Z"}, "containers": containers}]})
        };
        let m = pod_metrics(&pod, &summary(vec![container("a", Some(5_000_000))])).expect("m");
        assert_eq!(
            m["containers"][0]["usage"],
            json!({"cpu": "5000000n", "memory": "2Ki"})
        );
        let partial = summary(vec![container("a", Some(1)), container("b", None)]);
        assert!(pod_metrics(&pod, &partial).is_none());
    }
}
