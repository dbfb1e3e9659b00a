//! Rows of the cluster-level kinds: scheduling.k8s.io PriorityClass, policy
//! PodDisruptionBudget, storage.k8s.io CSIDriver and CSINode, and admissionregistration.k8s.io
//! webhook configurations. Ports of upstream's `printPriorityClass`,
//! `printPodDisruptionBudget`, `printCSIDriver`, `printCSINode`, `printMutatingWebhook` and
//! `printValidatingWebhook`.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::{Count, Head, Meta, RenderError, Row, lean_object, s};
use pernode_core::duration::age_since;

lean_object! {
    struct PriorityClass<'a> {
        #[serde(default)]
        value: Option<i64>,
        #[serde(default)]
        global_default: Option<bool>,
        #[serde(default)]
        preemption_policy: Option<String>,
    }
}

pub(crate) fn render_priority_class(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let pc: PriorityClass<'_> = serde_json::from_slice(bytes)?;
    let head = pc.head();
    let meta = Meta::parse(head.metadata)?;
    let row = Row {
        cells: vec![
            meta.name().into(),
            pc.value.unwrap_or(0).into(),
            pc.global_default.unwrap_or(false).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
            // Wide-only upstream, and a kube-apiserver always prints wide.
            s(&pc.preemption_policy).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

lean_object! {
    struct PodDisruptionBudget<'a> {
        #[serde(default)]
        spec: Option<PdbSpec>,
        #[serde(default)]
        status: Option<PdbStatus>,
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PdbSpec {
    min_available: Option<IntOrString>,
    max_unavailable: Option<IntOrString>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PdbStatus {
    disruptions_allowed: Option<i64>,
}

/// `IntOrString.String()`, or `N/A` when the field is unset.
fn int_or_string(v: Option<&IntOrString>) -> String {
    match v {
        None => "N/A".to_owned(),
        Some(IntOrString::Int(n)) => n.to_string(),
        Some(IntOrString::String(v)) => v.clone(),
    }
}

pub(crate) fn render_pod_disruption_budget(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let pdb: PodDisruptionBudget<'_> = serde_json::from_slice(bytes)?;
    let head = pdb.head();
    let meta = Meta::parse(head.metadata)?;
    let spec = pdb.spec.unwrap_or_default();
    let allowed = pdb.status.unwrap_or_default().disruptions_allowed;
    let row = Row {
        cells: vec![
            meta.name().into(),
            int_or_string(spec.min_available.as_ref()).into(),
            int_or_string(spec.max_unavailable.as_ref()).into(),
            allowed.unwrap_or(0).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

lean_object! {
    struct CsiDriver<'a> {
        #[serde(default)]
        spec: Option<CsiDriverSpec>,
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CsiDriverSpec {
    attach_required: Option<bool>,
    pod_info_on_mount: Option<bool>,
    storage_capacity: Option<bool>,
    token_requests: Option<Vec<TokenRequest>>,
    requires_republish: Option<bool>,
    volume_lifecycle_modes: Option<Vec<String>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct TokenRequest {
    audience: Option<String>,
}

pub(crate) fn render_csi_driver(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let driver: CsiDriver<'_> = serde_json::from_slice(bytes)?;
    let head = driver.head();
    let meta = Meta::parse(head.metadata)?;
    let spec = driver.spec.unwrap_or_default();
    // Unset is `<unset>`; a present list, even an empty one, is its audiences.
    let token_requests = match &spec.token_requests {
        None => "<unset>".to_owned(),
        Some(requests) => requests
            .iter()
            .map(|t| s(&t.audience))
            .collect::<Vec<_>>()
            .join(","),
    };
    let modes = match spec.volume_lifecycle_modes.as_deref() {
        None | Some([]) => "<none>".to_owned(),
        Some(modes) => modes.join(","),
    };
    let row = Row {
        cells: vec![
            meta.name().into(),
            spec.attach_required.unwrap_or(true).into(),
            spec.pod_info_on_mount.unwrap_or(false).into(),
            spec.storage_capacity.unwrap_or(false).into(),
            token_requests.into(),
            spec.requires_republish.unwrap_or(false).into(),
            modes.into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

lean_object! {
    struct CsiNode<'a> {
        #[serde(default)]
        spec: Option<CsiNodeSpec>,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CsiNodeSpec {
    drivers: Count,
}

pub(crate) fn render_csi_node(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let node: CsiNode<'_> = serde_json::from_slice(bytes)?;
    let head = node.head();
    let meta = Meta::parse(head.metadata)?;
    let drivers = node.spec.unwrap_or_default().drivers.0;
    let row = Row {
        cells: vec![
            meta.name().into(),
            drivers.into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}

lean_object! {
    /// Mutating and validating webhook configurations: both count their webhooks.
    struct WebhookConfiguration<'a> {
        #[serde(default)]
        webhooks: Count,
    }
}

pub(crate) fn render_webhook_configuration(
    bytes: &[u8],
    now: Timestamp,
) -> Result<(Head<'_>, Row), RenderError> {
    let config: WebhookConfiguration<'_> = serde_json::from_slice(bytes)?;
    let head = config.head();
    let meta = Meta::parse(head.metadata)?;
    let row = Row {
        cells: vec![
            meta.name().into(),
            config.webhooks.0.into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}
