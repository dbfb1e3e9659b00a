//! Namespace and Lease rows: ports of upstream's `printNamespace` and `printLease`.

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::{Head, Meta, RenderError, Row, lean_object, s};
use pernode_core::duration::age_since;

lean_object! {
    struct Namespace<'a> {
        #[serde(default)]
        status: Option<NamespaceStatus>,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct NamespaceStatus {
    phase: Option<String>,
}

pub(crate) fn render_namespace(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let ns: Namespace<'_> = serde_json::from_slice(bytes)?;
    let head = ns.head();
    let meta = Meta::parse(head.metadata)?;
    let phase = ns.status.unwrap_or_default().phase;
    let row = Row {
        cells: vec![
            meta.name().into(),
            s(&phase).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

lean_object! {
    struct Lease<'a> {
        #[serde(default)]
        spec: Option<LeaseSpec>,
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct LeaseSpec {
    holder_identity: Option<String>,
}

pub(crate) fn render_lease(bytes: &[u8], now: Timestamp) -> Result<(Head<'_>, Row), RenderError> {
    let lease: Lease<'_> = serde_json::from_slice(bytes)?;
    let head = lease.head();
    let meta = Meta::parse(head.metadata)?;
    let holder = lease.spec.unwrap_or_default().holder_identity;
    let row = Row {
        cells: vec![
            meta.name().into(),
            s(&holder).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}
