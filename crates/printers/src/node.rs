//! Node rows: a port of upstream's `printNode` and `findNodeRoles`.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::{Head, Meta, RenderError, Row, lean_object, s};
use pernode_core::duration::age_since;

/// Label prefix of `node-role.kubernetes.io/<role>` labels.
const ROLE_PREFIX: &str = "node-role.kubernetes.io/";
/// The older `kubernetes.io/role=<role>` label.
const ROLE_LABEL: &str = "kubernetes.io/role";

lean_object! {
    struct Node<'a> {
        #[serde(default)]
        spec: Option<Spec>,
        #[serde(default)]
        status: Option<Status>,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Spec {
    unschedulable: Option<bool>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    conditions: Option<Vec<Condition>>,
    addresses: Option<Vec<Address>>,
    node_info: Option<NodeInfo>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Condition {
    #[serde(rename = "type")]
    type_: Option<String>,
    status: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Address {
    #[serde(rename = "type")]
    type_: Option<String>,
    address: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct NodeInfo {
    kubelet_version: Option<String>,
    os_image: Option<String>,
    kernel_version: Option<String>,
    container_runtime_version: Option<String>,
}

pub(crate) fn render(bytes: &[u8], now: Timestamp) -> Result<(Head<'_>, Row), RenderError> {
    let node: Node<'_> = serde_json::from_slice(bytes)?;
    let head = node.head();
    let meta = Meta::parse(head.metadata)?;
    let status = node.status.unwrap_or_default();
    let info = status.node_info.unwrap_or_default();

    // Upstream only reports the Ready condition; a later duplicate overrides an earlier one
    // because it goes through a map.
    let mut state = match status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .rfind(|c| s(&c.type_) == "Ready")
    {
        Some(c) if s(&c.status) == "True" => "Ready".to_owned(),
        Some(_) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if node.spec.is_some_and(|sp| sp.unschedulable == Some(true)) {
        state.push_str(",SchedulingDisabled");
    }

    let labels: BTreeMap<String, String> = match meta.labels {
        Some(raw) => {
            serde_json::from_str::<Option<BTreeMap<String, String>>>(raw.get())?.unwrap_or_default()
        }
        None => BTreeMap::new(),
    };
    let roles = roles(&labels);

    let addresses = status.addresses.as_deref().unwrap_or_default();
    let address = |kind: &str| {
        addresses
            .iter()
            .find(|a| s(&a.type_) == kind)
            .map_or("<none>", |a| s(&a.address))
            .to_owned()
    };
    let or_unknown = |v: &Option<String>| match s(v) {
        "" => "<unknown>".to_owned(),
        v => v.to_owned(),
    };

    let row = Row {
        cells: vec![
            meta.name().into(),
            state.into(),
            roles.into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
            s(&info.kubelet_version).into(),
            address("InternalIP").into(),
            address("ExternalIP").into(),
            or_unknown(&info.os_image).into(),
            or_unknown(&info.kernel_version).into(),
            or_unknown(&info.container_runtime_version).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

/// The sorted, de-duplicated roles of a node, comma-joined, or `<none>`.
fn roles(labels: &BTreeMap<String, String>) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in labels {
        if let Some(role) = k.strip_prefix(ROLE_PREFIX) {
            if !role.is_empty() {
                roles.insert(role);
            }
        } else if k == ROLE_LABEL && !v.is_empty() {
            roles.insert(v.as_str());
        }
    }
    if roles.is_empty() {
        return "<none>".to_owned();
    }
    roles.into_iter().collect::<Vec<_>>().join(",")
}
