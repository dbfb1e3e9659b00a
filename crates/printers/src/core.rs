//! core/v1 ConfigMap, Secret, ServiceAccount, Service and Endpoints rows: ports of
//! upstream's `printConfigMap`, `printSecret`, `printServiceAccount`, `printService` and
//! `printEndpoints`.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::{Count, Head, Meta, RenderError, Row, lean_object, or_none, s};
use pernode_core::duration::age_since;
use pernode_core::labels::format_labels;

/// How many entries the list cells (Endpoints, EndpointSlice) show before `+ N more...`.
pub(crate) const LIST_MAX: usize = 3;

/// Upstream's `listWithMoreString` tail: `a,b,c + 2 more...` once `count` passed
/// [`LIST_MAX`].
pub(crate) fn with_more(list: &[String], more: bool, count: usize) -> String {
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(LIST_MAX))
    } else {
        joined
    }
}

lean_object! {
    struct ConfigMap<'a> {
        #[serde(default)]
        data: Count,
        #[serde(default)]
        binary_data: Count,
    }
}

pub(crate) fn render_config_map(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let cm: ConfigMap<'_> = serde_json::from_slice(bytes)?;
    let head = cm.head();
    let meta = Meta::parse(head.metadata)?;
    let row = Row {
        cells: vec![
            meta.name().into(),
            (cm.data.0 + cm.binary_data.0).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

lean_object! {
    struct Secret<'a> {
        #[serde(default, rename = "type")]
        type_: Option<String>,
        #[serde(default)]
        data: Count,
    }
}

pub(crate) fn render_secret(bytes: &[u8], now: Timestamp) -> Result<(Head<'_>, Row), RenderError> {
    let secret: Secret<'_> = serde_json::from_slice(bytes)?;
    let head = secret.head();
    let meta = Meta::parse(head.metadata)?;
    let row = Row {
        cells: vec![
            meta.name().into(),
            s(&secret.type_).into(),
            secret.data.0.into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

lean_object! {
    struct ServiceAccount<'a> {
        #[serde(default)]
        secrets: Count,
    }
}

pub(crate) fn render_service_account(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let sa: ServiceAccount<'_> = serde_json::from_slice(bytes)?;
    let head = sa.head();
    let meta = Meta::parse(head.metadata)?;
    let row = Row {
        cells: vec![
            meta.name().into(),
            sa.secrets.0.into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

lean_object! {
    struct Service<'a> {
        #[serde(default)]
        spec: Option<ServiceSpec>,
        #[serde(default)]
        status: Option<ServiceStatus>,
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ServiceSpec {
    #[serde(rename = "type")]
    type_: Option<String>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    cluster_ips: Option<Vec<String>>,
    #[serde(rename = "externalIPs")]
    external_ips: Option<Vec<String>>,
    external_name: Option<String>,
    ports: Option<Vec<ServicePort>>,
    selector: Option<BTreeMap<String, String>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ServicePort {
    port: Option<i64>,
    node_port: Option<i64>,
    protocol: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ServiceStatus {
    load_balancer: Option<LoadBalancerStatus>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct LoadBalancerStatus {
    ingress: Option<Vec<LoadBalancerIngress>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct LoadBalancerIngress {
    ip: Option<String>,
    hostname: Option<String>,
}

pub(crate) fn render_service(bytes: &[u8], now: Timestamp) -> Result<(Head<'_>, Row), RenderError> {
    let svc: Service<'_> = serde_json::from_slice(bytes)?;
    let head = svc.head();
    let meta = Meta::parse(head.metadata)?;
    let spec = svc.spec.unwrap_or_default();
    let status = svc.status.unwrap_or_default();

    // Upstream reads clusterIPs only; v1 defaulting fills it from clusterIP, so an object
    // that has just clusterIP is read the way upstream would see it after defaulting.
    let cluster_ip = spec
        .cluster_ips
        .as_deref()
        .and_then(<[String]>::first)
        .map(String::as_str)
        .unwrap_or(or_none(s(&spec.cluster_ip)));
    let ports = port_string(spec.ports.as_deref().unwrap_or_default());

    let row = Row {
        cells: vec![
            meta.name().into(),
            s(&spec.type_).into(),
            cluster_ip.into(),
            external_ip(&spec, &status).into(),
            or_none(&ports).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
            format_labels(&spec.selector.unwrap_or_default()).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

/// Upstream's `getServiceExternalIP` for wide output (a kube-apiserver always prints wide, so
/// load balancer addresses are never clipped to 16 characters).
fn external_ip(spec: &ServiceSpec, status: &ServiceStatus) -> String {
    let external = spec.external_ips.as_deref().unwrap_or_default();
    match s(&spec.type_) {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_owned()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            // A sorted set of each ingress point's IP, or its hostname when it has no IP.
            let lb: std::collections::BTreeSet<&str> = status
                .load_balancer
                .as_ref()
                .and_then(|lb| lb.ingress.as_deref())
                .unwrap_or_default()
                .iter()
                .map(|i| match s(&i.ip) {
                    "" => s(&i.hostname),
                    ip => ip,
                })
                .filter(|a| !a.is_empty())
                .collect();
            if !external.is_empty() {
                lb.into_iter()
                    .chain(external.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(",")
            } else if lb.is_empty() {
                "<pending>".to_owned()
            } else {
                lb.into_iter().collect::<Vec<_>>().join(",")
            }
        }
        "ExternalName" => s(&spec.external_name).to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

/// Upstream's `makePortString`: `80/TCP`, or `80:30080/TCP` with a node port.
fn port_string(ports: &[ServicePort]) -> String {
    ports
        .iter()
        .map(|p| {
            let port = p.port.unwrap_or(0);
            let protocol = s(&p.protocol);
            match p.node_port.unwrap_or(0) {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

lean_object! {
    struct Endpoints<'a> {
        #[serde(default)]
        subsets: Option<Vec<Subset>>,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Subset {
    addresses: Option<Vec<Address>>,
    ports: Option<Vec<EndpointPort>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Address {
    ip: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct EndpointPort {
    port: Option<i64>,
}

pub(crate) fn render_endpoints(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let ep: Endpoints<'_> = serde_json::from_slice(bytes)?;
    let head = ep.head();
    let meta = Meta::parse(head.metadata)?;
    let row = Row {
        cells: vec![
            meta.name().into(),
            format_endpoints(ep.subsets.as_deref().unwrap_or_default()).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

/// Upstream's `formatEndpoints` with every port: the first three `ip:port` pairs (bare IPs
/// for a subset without ports), then `+ N more...` counting every pair. Only ready
/// addresses count; subsets with none print as an empty cell, no subsets as `<none>`.
fn format_endpoints(subsets: &[Subset]) -> String {
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    let mut list: Vec<String> = Vec::with_capacity(LIST_MAX);
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = ss.addresses.as_deref().unwrap_or_default();
        match ss.ports.as_deref() {
            None | Some([]) => {
                // Headless services may have no ports.
                count += addresses.len();
                for a in addresses {
                    if list.len() == LIST_MAX {
                        more = true;
                        break;
                    }
                    list.push(s(&a.ip).to_owned());
                }
            }
            Some(ports) => {
                for port in ports {
                    count += addresses.len();
                    for a in addresses {
                        if list.len() == LIST_MAX {
                            more = true;
                            break;
                        }
                        list.push(join_host_port(s(&a.ip), port.port.unwrap_or(0)));
                    }
                }
            }
        }
    }
    with_more(&list, more, count)
}

/// Go's `net.JoinHostPort`: IPv6 addresses (anything with a colon) go in brackets.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
