//! DaemonSet and ControllerRevision rows: ports of upstream's `printDaemonSet` and
//! `printControllerRevision`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::{Head, Meta, RenderError, Row, lean_object, s};
use pernode_core::duration::age_since;
use pernode_core::labels::{format_label_selector, format_labels};

lean_object! {
    struct DaemonSet<'a> {
        #[serde(default)]
        spec: Option<DsSpec>,
        #[serde(default)]
        status: Option<DsStatus>,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct DsSpec {
    selector: Option<LabelSelector>,
    template: Option<Template>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Template {
    spec: Option<TemplateSpec>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TemplateSpec {
    node_selector: Option<BTreeMap<String, String>>,
    containers: Option<Vec<Container>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Container {
    name: Option<String>,
    image: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DsStatus {
    desired_number_scheduled: Option<i64>,
    current_number_scheduled: Option<i64>,
    number_ready: Option<i64>,
    updated_number_scheduled: Option<i64>,
    number_available: Option<i64>,
}

pub(crate) fn render_daemonset(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let ds: DaemonSet<'_> = serde_json::from_slice(bytes)?;
    let head = ds.head();
    let meta = Meta::parse(head.metadata)?;
    let spec = ds.spec.unwrap_or_default();
    let st = ds.status.unwrap_or_default();
    let tpl = spec.template.and_then(|t| t.spec).unwrap_or_default();
    let containers = tpl.containers.as_deref().unwrap_or_default();
    let (names, images) = container_cells(containers);

    let row = Row {
        cells: vec![
            meta.name().into(),
            st.desired_number_scheduled.unwrap_or(0).into(),
            st.current_number_scheduled.unwrap_or(0).into(),
            st.number_ready.unwrap_or(0).into(),
            st.updated_number_scheduled.unwrap_or(0).into(),
            st.number_available.unwrap_or(0).into(),
            format_labels(&tpl.node_selector.unwrap_or_default()).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
            names.into(),
            images.into(),
            // A nil selector selects nothing, which upstream also prints as `<none>`.
            spec.selector
                .as_ref()
                .map_or_else(|| "<none>".to_owned(), format_label_selector)
                .into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

/// Upstream's `layoutContainerCells`: names and images, each comma-joined.
fn container_cells(containers: &[Container]) -> (String, String) {
    let names = containers
        .iter()
        .map(|c| s(&c.name))
        .collect::<Vec<_>>()
        .join(",");
    let images = containers
        .iter()
        .map(|c| s(&c.image))
        .collect::<Vec<_>>()
        .join(",");
    (names, images)
}

lean_object! {
    struct ControllerRevision<'a> {
        #[serde(default)]
        revision: Option<i64>,
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OwnerRef {
    api_version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    controller: Option<bool>,
}

pub(crate) fn render_controller_revision(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let cr: ControllerRevision<'_> = serde_json::from_slice(bytes)?;
    let head = cr.head();
    let meta = Meta::parse(head.metadata)?;
    let refs: Vec<OwnerRef> = match meta.owner_references {
        Some(raw) => serde_json::from_str::<Option<Vec<OwnerRef>>>(raw.get())?.unwrap_or_default(),
        None => Vec::new(),
    };
    let controller = match refs.iter().find(|r| r.controller == Some(true)) {
        None => "<none>".to_owned(),
        Some(r) => {
            let group = group_of(s(&r.api_version))?;
            format_resource_name(group, s(&r.kind), s(&r.name))
        }
    };
    let row = Row {
        cells: vec![
            meta.name().into(),
            controller.into(),
            cr.revision.unwrap_or(0).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

/// The group of an `apiVersion`, as `schema.ParseGroupVersion` splits it (`v1` is the core
/// group; more than one `/` is an error, which fails the row upstream too).
fn group_of(api_version: &str) -> Result<&str, RenderError> {
    match api_version.split_once('/') {
        None => Ok(""),
        Some((group, version)) if !version.contains('/') => Ok(group),
        Some(_) => Err(RenderError::Invalid(format!(
            "unexpected GroupVersion string: {api_version}"
        ))),
    }
}

/// Upstream's `formatResourceName` with kind: `daemonset.apps/name`, lower-cased.
fn format_resource_name(group: &str, kind: &str, name: &str) -> String {
    if group.is_empty() && kind.is_empty() {
        return name.to_owned();
    }
    let gk = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{name}", gk.to_lowercase())
}
