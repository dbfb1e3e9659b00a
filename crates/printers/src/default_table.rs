//! Upstream's `DefaultTableConvertor` (staging/src/k8s.io/apiserver/pkg/registry/rest/table.go):
//! the Table of every resource without a printer, Roles, ClusterRoles and custom resources
//! among them.

use k8s_openapi::jiff::Timestamp;

use crate::model::{Head, Meta, RenderError, Row, lean_object};

lean_object! {
    /// Any object: the default Table reads only its metadata.
    struct AnyObject<'a> {}
}

/// Upstream's `DefaultTableConvertor` row: the name and `creationTimestamp` in RFC 3339 (UTC,
/// whole seconds; Go's zero time when unset), never an age.
pub(crate) fn render_default(
    bytes: &[u8],
    _now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let obj: AnyObject<'_> = serde_json::from_slice(bytes)?;
    let head = obj.head();
    let meta = Meta::parse(head.metadata)?;
    let created = match &meta.creation_timestamp {
        Some(t) => t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_owned(),
    };
    let row = Row {
        cells: vec![meta.name().into(), created.into()],
        conditions: None,
    };
    Ok((head, row))
}
