//! discovery.k8s.io EndpointSlice and networking.k8s.io NetworkPolicy rows: ports of
//! upstream's `printEndpointSlice` and `printNetworkPolicy`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::core::{LIST_MAX, with_more};
use crate::model::{Head, Meta, RenderError, Row, lean_object, s};
use pernode_core::duration::age_since;
use pernode_core::labels::format_label_selector;

lean_object! {
    struct EndpointSlice<'a> {
        #[serde(default)]
        address_type: Option<String>,
        #[serde(default)]
        ports: Option<Vec<SlicePort>>,
        #[serde(default)]
        endpoints: Option<Vec<Endpoint>>,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SlicePort {
    name: Option<String>,
    port: Option<i64>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Endpoint {
    addresses: Option<Vec<String>>,
}

pub(crate) fn render_endpoint_slice(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let slice: EndpointSlice<'_> = serde_json::from_slice(bytes)?;
    let head = slice.head();
    let meta = Meta::parse(head.metadata)?;

    // Upstream's `formatDiscoveryPorts`: the number, else the name, else `*` (all ports).
    let ports = slice.ports.as_deref().unwrap_or_default();
    let port_cells = ports
        .iter()
        .take(LIST_MAX)
        .map(|p| match (p.port, &p.name) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => "*".to_owned(),
        });
    let ports = list_cell(port_cells.collect(), ports.len());

    // Upstream's `formatDiscoveryEndpoints`: every address of every endpoint counts.
    let addresses = slice
        .endpoints
        .as_deref()
        .unwrap_or_default()
        .iter()
        .flat_map(|e| e.addresses.as_deref().unwrap_or_default());
    let count = addresses.clone().count();
    let endpoints = list_cell(addresses.take(LIST_MAX).cloned().collect(), count);

    let row = Row {
        cells: vec![
            meta.name().into(),
            s(&slice.address_type).into(),
            ports.into(),
            endpoints.into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

/// Upstream's `listWithMoreString`: the first entries, `+ N more...` past three, `<unset>`
/// when there are none.
fn list_cell(first: Vec<String>, count: usize) -> String {
    match with_more(&first, count > LIST_MAX, count) {
        joined if joined.is_empty() => "<unset>".to_owned(),
        joined => joined,
    }
}

lean_object! {
    struct NetworkPolicy<'a> {
        #[serde(default)]
        spec: Option<NetworkPolicySpec>,
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct NetworkPolicySpec {
    pod_selector: Option<LabelSelector>,
}

pub(crate) fn render_network_policy(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let np: NetworkPolicy<'_> = serde_json::from_slice(bytes)?;
    let head = np.head();
    let meta = Meta::parse(head.metadata)?;
    // `podSelector` is a value, not a pointer, upstream: absent is the empty selector,
    // which selects every pod and prints as `<none>`.
    let selector = np.spec.and_then(|sp| sp.pod_selector).unwrap_or_default();
    let row = Row {
        cells: vec![
            meta.name().into(),
            format_label_selector(&selector).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}
