//! The three patch formats kube-apiserver accepts on `PATCH`, applied to untyped JSON objects.
//!
//! - **JSON patch** (RFC 6902, `application/json-patch+json`) through the `json-patch` crate.
//! - **JSON merge patch** (RFC 7386, `application/merge-patch+json`) through `json_patch::merge`:
//!   maps merge key by key, `null` deletes a key, lists are replaced whole.
//! - **Strategic merge patch** (`application/strategic-merge-patch+json`), a port of upstream's
//!   `apimachinery/pkg/util/strategicpatch` as the server applies it: maps merge recursively and
//!   `null` deletes a key; lists with a patch merge key (containers by `name`, volumeMounts by
//!   `mountPath`, conditions by `type`, ...; see `fields.rs` for the table taken from the
//!   Kubernetes types) merge item by item, ordered by `$setElementOrder/<field>` when given;
//!   lists of scalars with the merge strategy (`metadata.finalizers`) are unioned; every other
//!   list is replaced whole. Directives: `$patch: replace|delete|merge` (on a map or as a list
//!   item), `$setElementOrder/<field>`, `$retainKeys`, `$deleteFromPrimitiveList/<field>`.
//!   No directive key is ever left in the result.
//!
//! Server-side apply (`application/apply-patch+yaml`) is not a patch format of this crate.
//!
//! Errors carry the HTTP status and reason kube-apiserver uses for the same failure
//! ([`PatchError::code`], [`PatchError::reason`], [`PatchError::status_message`]), so the API
//! server can build the same `Status` reply.

mod fields;
mod strategic;

use serde_json::Value;

pub use strategic::strategic_merge;

/// Upstream's `maxJSONPatchOperations` (apiserver/pkg/endpoints/handlers/patch.go).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The patch formats, one per `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value; parameters (`; charset=utf-8`) and case
    /// are ignored. `None` for anything else, including `application/apply-patch+yaml`.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/json-patch+json") {
            Some(PatchType::Json)
        } else if media.eq_ignore_ascii_case("application/merge-patch+json") {
            Some(PatchType::Merge)
        } else if media.eq_ignore_ascii_case("application/strategic-merge-patch+json") {
            Some(PatchType::StrategicMerge)
        } else {
            None
        }
    }

    /// The `Content-Type` value of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// Why a patch could not be applied. The `String` is the detail (upstream's error text where it
/// has one); [`PatchError::status_message`] is what kube-apiserver puts in `Status.message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body cannot be decoded as its patch type: not JSON, a JSON patch that is not an array
    /// of operations, a merge patch or strategic merge patch that is not an object.
    /// Upstream: **400 BadRequest** with the decoder's message (`Invalid JSON Patch` for merge
    /// patches).
    #[error("{0}")]
    Malformed(String),
    /// A JSON patch with more than [`MAX_JSON_PATCH_OPERATIONS`] operations.
    /// Upstream: **413 RequestEntityTooLarge**.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// A JSON patch operation failed: `test` did not match, a path is missing, ...
    /// Upstream: **422 Invalid** built by `NewGenericServerResponse(422, ...)`, which throws the
    /// detail away: the message is always "the server rejected our request due to an error in
    /// our request" and `details` is empty.
    #[error("{0}")]
    JsonPatchFailed(String),
    /// A malformed strategic merge patch directive (upstream's mergepatch `ErrBadJSONDoc`,
    /// `ErrBadPatchFormatForPrimitiveList`, `...ForRetainKeys`, `...ForSetElementOrderList`,
    /// `ErrUnsupportedStrategicMergePatchFormat`). Upstream: **400 BadRequest** with that text,
    /// e.g. "invalid patch format of retainKeys".
    #[error("{0}")]
    BadStrategicPatch(String),
    /// A strategic merge patch upstream answers with **422 Invalid** (generic message, as for
    /// [`PatchError::JsonPatchFailed`]): "lists of lists are not supported".
    #[error("{0}")]
    UnprocessableStrategicPatch(String),
    /// Any other strategic merge patch failure: an item without its merge key ("map: map\[image:x\]
    /// does not contain declared merge key: name"), an unknown `$patch` value, a patch list out
    /// of `$setElementOrder` order. Upstream returns these as plain Go errors, which the API
    /// server turns into **500** with an empty reason (`StatusReasonUnknown`) and the error text
    /// as message.
    #[error("{0}")]
    StrategicPatchFailed(String),
}

impl PatchError {
    /// The HTTP status kube-apiserver answers with.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::Malformed(_) | PatchError::BadStrategicPatch(_) => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::JsonPatchFailed(_) | PatchError::UnprocessableStrategicPatch(_) => 422,
            PatchError::StrategicPatchFailed(_) => 500,
        }
    }

    /// The `Status.reason` kube-apiserver answers with (`""` is `StatusReasonUnknown`).
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::Malformed(_) | PatchError::BadStrategicPatch(_) => "BadRequest",
            PatchError::TooManyOperations { .. } => "RequestEntityTooLarge",
            PatchError::JsonPatchFailed(_) | PatchError::UnprocessableStrategicPatch(_) => {
                "Invalid"
            }
            PatchError::StrategicPatchFailed(_) => "",
        }
    }

    /// The `Status.message` kube-apiserver answers with.
    pub fn status_message(&self) -> String {
        match self {
            PatchError::JsonPatchFailed(_) | PatchError::UnprocessableStrategicPatch(_) => {
                "the server rejected our request due to an error in our request".to_string()
            }
            // NewRequestEntityTooLargeError prefixes its message.
            PatchError::TooManyOperations { .. } => format!("Request entity too large: {self}"),
            _ => self.to_string(),
        }
    }
}

/// Applies `patch` (the request body) of type `patch_type` to `original` and returns the patched
/// object. `original` is not modified; a patch that changes nothing returns a value equal to it.
pub fn apply(patch_type: PatchType, original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => apply_merge_patch(original, patch),
        PatchType::StrategicMerge => {
            let patch: Value =
                serde_json::from_slice(patch).map_err(|e| PatchError::Malformed(e.to_string()))?;
            strategic_merge(original, patch)
        }
    }
}

/// [`apply`] with a merge or strategic merge patch already parsed, for callers that read the
/// patch first. A JSON patch (a list of operations) is refused as a body that is not one.
pub fn apply_parsed(
    patch_type: PatchType,
    original: &Value,
    patch: Value,
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => Err(PatchError::Malformed(
            "a JSON patch is applied from its bytes".to_string(),
        )),
        PatchType::Merge => merge_parsed(original, Some(patch)),
        PatchType::StrategicMerge => strategic_merge(original, patch),
    }
}

fn apply_json_patch(original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let patch: json_patch::Patch =
        serde_json::from_slice(patch).map_err(|e| PatchError::Malformed(e.to_string()))?;
    if patch.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: patch.0.len(),
        });
    }
    let mut doc = original.clone();
    // json_patch::patch undoes the operations already applied when one fails; doc is a copy
    // anyway, so a failure never shows a half-patched object.
    json_patch::patch(&mut doc, &patch.0)
        .map_err(|e| PatchError::JsonPatchFailed(e.to_string()))?;
    Ok(doc)
}

fn apply_merge_patch(original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    merge_parsed(original, serde_json::from_slice(patch).ok())
}

fn merge_parsed(original: &Value, patch: Option<Value>) -> Result<Value, PatchError> {
    // evanphx/json-patch answers ErrBadJSONPatch ("Invalid JSON Patch") for bodies that are not
    // JSON and for `null`; a non-object would replace the whole object and then fail to decode
    // upstream, so it is refused here as well.
    let patch = patch
        .filter(Value::is_object)
        .ok_or_else(|| PatchError::Malformed("Invalid JSON Patch".to_string()))?;
    let mut doc = original.clone();
    json_patch::merge(&mut doc, &patch);
    Ok(doc)
}
