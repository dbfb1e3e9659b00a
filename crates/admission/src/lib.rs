//! Defaulting and validation of the kinds pernode serves, as kube-apiserver
//! does them.
//!
//! - [`defaults`]: the `SetDefaults_*` functions of core/v1 and apps/v1 and
//!   the defaulting admission plugins, mutating typed objects in place.
//! - [`validate`]: upstream's validation, returning every [`FieldError`]
//!   with upstream's field paths and texts.
//! - [`invalid_message`]: the message of the 422 Status
//!   (`DaemonSet.apps "x" is invalid: ...`); each error's
//!   [`FieldError::cause_message`] and [`FieldError::reason`] fill
//!   `details.causes`.
//! - [`template_changed`]: semantic pod-template comparison for the
//!   DaemonSet template generation.
//!
//! The API server runs, per write: decode → defaults → validate → store.

pub mod defaults;
mod error;
mod quantity;
pub mod validate;

pub use error::{ErrorKind, FieldError, go_map_render, go_quote, go_render, invalid_message};

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Serialize;
use serde_json::Value;

/// Whether two pod templates differ semantically, as
/// `apiequality.Semantic.DeepEqual` decides: a nil and an empty list are
/// equal, as are a nil and an empty map (labels, annotations, nodeSelector,
/// resource lists); a nil and an empty struct (`securityContext: {}`) are
/// not.
pub fn template_changed(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    !semantic_eq(a, b)
}

/// `apiequality.Semantic.DeepEqual` over the JSON forms of two values.
pub(crate) fn semantic_eq<T: Serialize>(a: &T, b: &T) -> bool {
    let (Ok(mut a), Ok(mut b)) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return false;
    };
    normalize(&mut a);
    normalize(&mut b);
    a == b
}

/// JSON object keys whose Go type is a map or a non-pointer struct (so empty
/// equals absent: `metadata`, `spec`, a container's `resources`); every
/// other object is a pointer to a struct, where an empty one differs from
/// absent.
const MAP_FIELDS: [&str; 12] = [
    "metadata",
    "spec",
    "resources",
    "labels",
    "annotations",
    "nodeSelector",
    "limits",
    "requests",
    "overhead",
    "volumeAttributes",
    "options",
    "matchLabels",
];

/// Drop nulls, empty lists and empty maps or value structs so that nil and
/// empty compare equal. (The maps listed hold strings, so a user's map key
/// can never be mistaken for a field here.)
fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for child in m.values_mut() {
                normalize(child);
            }
            m.retain(|k, child| match child {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !(o.is_empty() && MAP_FIELDS.contains(&k.as_str())),
                _ => true,
            });
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}
