//! `meta.k8s.io/v1` Table rendering with upstream's printer columns.
//!
//! kubectl asks for a Table on every human-readable `get` and prints the server's cells as
//! they are, so the columns, their order and the text of each cell follow upstream's
//! `pkg/printers/internalversion/printers.go` for every served kind that has a printer there.
//! A kube-apiserver always prints the wide set of cells and lets kubectl hide the
//! `priority: 1` columns, so every row here carries all of them. A resource without a
//! printer (Roles, ClusterRoles, custom resources) gets upstream's default Table: `Name` and
//! `Created At`.
//!
//! Cost model: each stored object is parsed once, into a lean struct naming only the
//! fields its columns read, with `metadata` borrowed as raw JSON. The Table is written
//! straight into a byte buffer; row objects copy the stored metadata (or the whole stored
//! object) verbatim, so nothing is re-serialized and no `serde_json::Value` is built for
//! a list.

mod apps;
mod certificates;
mod cluster;
mod columns;
mod core;
mod default_table;
mod event;
mod model;
mod network;
mod node;
mod pod;
mod rbac;
mod simple;

use k8s_openapi::jiff::Timestamp;

use crate::columns::Column;
use crate::model::{Cell, Head, RenderError, Row};

/// What `rows[].object` holds: the `includeObject` query parameter of a Table request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No `object` in the rows.
    None,
    /// A `PartialObjectMetadata` with the object's full `metadata` (kubectl's default; it
    /// reads labels for `--show-labels`/`-L` and the namespace for `-A` from it).
    #[default]
    Metadata,
    /// The full object, with `kind` and `apiVersion` (kubectl asks for it with `--sort-by`).
    Object,
}

impl IncludeObject {
    /// Parses `includeObject`; absent or unrecognised values mean `Metadata`, the server's
    /// default.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// Why a Table could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// A stored object does not have the JSON shape of its kind.
    #[error("cannot print {resource} object #{index}: {source}")]
    Decode {
        resource: String,
        index: usize,
        #[source]
        source: serde_json::Error,
    },
    /// A stored object holds a value upstream's printer rejects too.
    #[error("cannot print {resource} object #{index}: {message}")]
    Invalid {
        resource: String,
        index: usize,
        message: String,
    },
}

/// Parses one stored object and prints its row; the head borrows from the stored bytes.
type RenderFn = for<'a> fn(&'a [u8], Timestamp) -> Result<(Head<'a>, Row), RenderError>;

/// A resource's printer: its type meta, columns and row function.
struct Printer {
    /// The kind and apiVersion an `includeObject=Object` row adds when the stored object
    /// lacks them; empty for the default printer, whose objects are stored with theirs.
    kind: &'static str,
    api_version: &'static str,
    columns: &'static [Column],
    render: RenderFn,
}

/// A printer of a served kind, built from its kind, apiVersion, columns and row function.
macro_rules! printer {
    ($kind:literal, $api_version:literal, $columns:ident, $render:path) => {{
        static P: Printer = Printer {
            kind: $kind,
            api_version: $api_version,
            columns: columns::$columns,
            render: $render,
        };
        &P
    }};
}

/// The printer of `resource` (a plural), or upstream's default Table for one without.
fn printer(resource: &str) -> &'static Printer {
    known_printer(resource).unwrap_or(&DEFAULT)
}

/// Upstream's `DefaultTableConvertor`.
static DEFAULT: Printer = Printer {
    kind: "",
    api_version: "",
    columns: columns::DEFAULT,
    render: default_table::render_default,
};

/// Plurals are unique across the served groups, so they key the printers.
fn known_printer(resource: &str) -> Option<&'static Printer> {
    Some(match resource {
        "pods" => printer!("Pod", "v1", POD, pod::render),
        "nodes" => printer!("Node", "v1", NODE, node::render),
        "namespaces" => printer!("Namespace", "v1", NAMESPACE, simple::render_namespace),
        "events" => printer!("Event", "v1", EVENT, event::render),
        "daemonsets" => printer!("DaemonSet", "apps/v1", DAEMONSET, apps::render_daemonset),
        "controllerrevisions" => printer!(
            "ControllerRevision",
            "apps/v1",
            CONTROLLER_REVISION,
            apps::render_controller_revision
        ),
        "leases" => printer!(
            "Lease",
            "coordination.k8s.io/v1",
            LEASE,
            simple::render_lease
        ),
        "configmaps" => printer!("ConfigMap", "v1", CONFIG_MAP, core::render_config_map),
        "secrets" => printer!("Secret", "v1", SECRET, core::render_secret),
        "serviceaccounts" => printer!(
            "ServiceAccount",
            "v1",
            SERVICE_ACCOUNT,
            core::render_service_account
        ),
        "services" => printer!("Service", "v1", SERVICE, core::render_service),
        "endpoints" => printer!("Endpoints", "v1", ENDPOINTS, core::render_endpoints),
        "endpointslices" => printer!(
            "EndpointSlice",
            "discovery.k8s.io/v1",
            ENDPOINT_SLICE,
            network::render_endpoint_slice
        ),
        "networkpolicies" => printer!(
            "NetworkPolicy",
            "networking.k8s.io/v1",
            NETWORK_POLICY,
            network::render_network_policy
        ),
        "rolebindings" => printer!(
            "RoleBinding",
            "rbac.authorization.k8s.io/v1",
            ROLE_BINDING,
            rbac::render_binding
        ),
        "clusterrolebindings" => printer!(
            "ClusterRoleBinding",
            "rbac.authorization.k8s.io/v1",
            CLUSTER_ROLE_BINDING,
            rbac::render_binding
        ),
        "certificatesigningrequests" => printer!(
            "CertificateSigningRequest",
            "certificates.k8s.io/v1",
            CERTIFICATE_SIGNING_REQUEST,
            certificates::render_certificate_signing_request
        ),
        "priorityclasses" => printer!(
            "PriorityClass",
            "scheduling.k8s.io/v1",
            PRIORITY_CLASS,
            cluster::render_priority_class
        ),
        "poddisruptionbudgets" => printer!(
            "PodDisruptionBudget",
            "policy/v1",
            POD_DISRUPTION_BUDGET,
            cluster::render_pod_disruption_budget
        ),
        "csidrivers" => printer!(
            "CSIDriver",
            "storage.k8s.io/v1",
            CSI_DRIVER,
            cluster::render_csi_driver
        ),
        "csinodes" => printer!(
            "CSINode",
            "storage.k8s.io/v1",
            CSI_NODE,
            cluster::render_csi_node
        ),
        "mutatingwebhookconfigurations" => printer!(
            "MutatingWebhookConfiguration",
            "admissionregistration.k8s.io/v1",
            WEBHOOK_CONFIGURATION,
            cluster::render_webhook_configuration
        ),
        "validatingwebhookconfigurations" => printer!(
            "ValidatingWebhookConfiguration",
            "admissionregistration.k8s.io/v1",
            WEBHOOK_CONFIGURATION,
            cluster::render_webhook_configuration
        ),
        _ => return None,
    })
}

/// The `columnDefinitions` of a resource (plural name, e.g. `daemonsets`; the default
/// Table's for one without a printer). Each is `{name, type, format, description,
/// priority}`; priority 1 columns are the `-o wide` ones.
pub fn column_definitions(resource: &str) -> Vec<serde_json::Value> {
    printer(resource)
        .columns
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

/// Renders a serialized `meta.k8s.io/v1` Table of `objects` (each the stored JSON of one
/// object of `resource`), with ages relative to `now`. `resource_version` and
/// `continue_token` go to the Table's list metadata (left out when empty). A single-object
/// GET and each watch event are one-row Tables of this same shape.
pub fn table(
    resource: &str,
    objects: &[&[u8]],
    include: IncludeObject,
    now: Timestamp,
    resource_version: &str,
    continue_token: Option<&str>,
) -> Result<Vec<u8>, PrintError> {
    let p = printer(resource);
    // Row objects are at most the stored bytes; the cells are small next to them.
    let mut out = Vec::with_capacity(1024 + objects.iter().map(|o| o.len() + 128).sum::<usize>());
    out.extend_from_slice(br#"{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"#);
    let mut sep = false;
    if !resource_version.is_empty() {
        out.extend_from_slice(br#""resourceVersion":"#);
        push_json_str(&mut out, resource_version);
        sep = true;
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        if sep {
            out.push(b',');
        }
        out.extend_from_slice(br#""continue":"#);
        push_json_str(&mut out, token);
    }
    out.extend_from_slice(br#"},"columnDefinitions":["#);
    for (i, c) in p.columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_column(&mut out, c);
    }
    out.extend_from_slice(br#"],"rows":["#);
    for (index, bytes) in objects.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_row(&mut out, p, resource, index, bytes, include, now)?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// One row (`{"cells":[...],"object":{...}}`) of `object`, for callers that assemble the
/// Table themselves (watch events carry a one-row Table each; see [`table`]).
pub fn row(
    resource: &str,
    object: &[u8],
    include: IncludeObject,
    now: Timestamp,
) -> Result<serde_json::Value, PrintError> {
    let p = printer(resource);
    let mut out = Vec::with_capacity(object.len() + 256);
    push_row(&mut out, p, resource, 0, object, include, now)?;
    serde_json::from_slice(&out).map_err(|source| PrintError::Decode {
        resource: resource.to_owned(),
        index: 0,
        source,
    })
}

fn push_row(
    out: &mut Vec<u8>,
    p: &Printer,
    resource: &str,
    index: usize,
    bytes: &[u8],
    include: IncludeObject,
    now: Timestamp,
) -> Result<(), PrintError> {
    let body = bytes.trim_ascii();
    // A derived struct also accepts a JSON array (positional fields); a stored object is
    // always a JSON object, and the Object row relies on it.
    if body.first() != Some(&b'{') {
        return Err(PrintError::Invalid {
            resource: resource.to_owned(),
            index,
            message: "not a JSON object".to_owned(),
        });
    }
    let (head, row) = (p.render)(body, now).map_err(|e| match e {
        RenderError::Decode(source) => PrintError::Decode {
            resource: resource.to_owned(),
            index,
            source,
        },
        RenderError::Invalid(message) => PrintError::Invalid {
            resource: resource.to_owned(),
            index,
            message,
        },
    })?;

    out.extend_from_slice(br#"{"cells":["#);
    for (i, cell) in row.cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match cell {
            Cell::Str(s) => push_json_str(out, s),
            Cell::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        }
    }
    out.push(b']');
    if let Some(conditions) = row.conditions {
        out.extend_from_slice(br#","conditions":"#);
        out.extend_from_slice(conditions.as_bytes());
    }
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            out.extend_from_slice(
                br#","object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#,
            );
            out.extend_from_slice(head.metadata.map_or("{}", |m| m.get()).as_bytes());
            out.push(b'}');
        }
        IncludeObject::Object => {
            out.extend_from_slice(br#","object":"#);
            push_object(out, body, head, p);
        }
    }
    out.push(b'}');
    Ok(())
}

/// Writes the stored object, adding `kind`/`apiVersion` in front when the store left them
/// out (kubectl decodes the row object by them). The registry stores every object with
/// both, so the default printer, which knows neither, copies the stored bytes as they are.
fn push_object(out: &mut Vec<u8>, body: &[u8], head: Head<'_>, p: &Printer) {
    let has_kind = head.has_kind || p.kind.is_empty();
    let has_api_version = head.has_api_version || p.api_version.is_empty();
    if has_kind && has_api_version {
        out.extend_from_slice(body);
        return;
    }
    // `body` starts with `{` (checked by the caller).
    let inner = body.get(1..).unwrap_or_default().trim_ascii_start();
    out.push(b'{');
    let mut sep = false;
    if !has_kind {
        out.extend_from_slice(br#""kind":"#);
        push_json_str(out, p.kind);
        sep = true;
    }
    if !has_api_version {
        if sep {
            out.push(b',');
        }
        out.extend_from_slice(br#""apiVersion":"#);
        push_json_str(out, p.api_version);
    }
    if inner.first() != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(inner);
}

fn push_column(out: &mut Vec<u8>, c: &Column) {
    out.extend_from_slice(br#"{"name":"#);
    push_json_str(out, c.name);
    out.extend_from_slice(br#","type":"#);
    push_json_str(out, c.ty);
    out.extend_from_slice(br#","format":"#);
    push_json_str(out, c.format);
    out.extend_from_slice(br#","description":"#);
    push_json_str(out, c.description);
    out.extend_from_slice(br#","priority":"#);
    out.extend_from_slice(c.priority.to_string().as_bytes());
    out.push(b'}');
}

/// Writes `s` as a JSON string. Hand-written because it cannot fail, unlike
/// `serde_json::to_writer`, and most cells need no escaping at all.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
