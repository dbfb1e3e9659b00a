//! API errors as `metav1.Status` replies, worded as kube-apiserver words them so kubectl prints
//! the same lines (`Error from server (NotFound): pods "x" not found`, `The DaemonSet "x" is
//! invalid: ...`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One cause of a Status error (`details.causes[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// An error reply: HTTP code, Status reason, message and details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// Boxed: errors travel through every `Result` of the request path and are rarely built.
    details: Option<Box<Details>>,
}

/// `details` of a Status: `name`, `group`, `kind` (the resource, or the Kind for Invalid) and
/// the field causes.
#[derive(Debug, Clone, PartialEq)]
struct Details {
    name: String,
    group: String,
    kind: String,
    causes: Vec<Cause>,
    /// `retryAfterSeconds` (0: not written), also sent as the `Retry-After` header.
    retry_after_seconds: u32,
    /// Written as Go encodes `metav1.StatusDetails`, every empty member omitted (errors built
    /// by hand upstream, such as the eviction subresource's 429).
    omit_empty: bool,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// An error whose code, reason and message were decided elsewhere (e.g. by the patch crate).
    pub fn from_parts(code: u16, reason: &'static str, message: String) -> Self {
        Self::new(code, reason, message)
    }

    fn with_details(mut self, name: &str, group: &str, kind: &str) -> Self {
        self.details = Some(Box::new(Details {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            causes: Vec::new(),
            retry_after_seconds: 0,
            omit_empty: false,
        }));
        self
    }

    /// `errors.NewTooManyRequests(message, retryAfterSeconds)` with extra causes (each a
    /// `reason` and a `message`, no field), as the eviction subresource answers a budget
    /// that allows no disruption.
    pub fn too_many_requests(
        message: impl Into<String>,
        retry_after_seconds: u32,
        causes: Vec<Cause>,
    ) -> Self {
        let mut e = Self::new(429, "TooManyRequests", message).with_details("", "", "");
        if let Some(d) = e.details.as_mut() {
            d.causes = causes;
            d.retry_after_seconds = retry_after_seconds;
            d.omit_empty = true;
        }
        e
    }

    /// The `retryAfterSeconds` of the details, if any.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        self.details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0)
    }

    /// `pods "x" not found`, `daemonsets.apps "x" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", group_resource(group, plural)),
        )
        .with_details(name, group, plural)
    }

    /// A path that names nothing this server serves.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{name}\" already exists",
                group_resource(group, plural)
            ),
        )
        .with_details(name, group, plural)
    }

    /// Optimistic-concurrency failure, as kube-apiserver words it.
    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                group_resource(group, plural)
            ),
        )
        .with_details(name, group, plural)
    }

    pub fn modified(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per field error; `message` is the whole upstream message. Unlike
    /// the other errors, `details.kind` is the Kind here: kubectl prints `The <Kind> "x" is
    /// invalid` from it.
    pub fn invalid(
        group: &str,
        kind: &str,
        name: &str,
        message: String,
        causes: Vec<Cause>,
    ) -> Self {
        let mut e = Self::new(422, "Invalid", message).with_details(name, group, kind);
        if let Some(d) = e.details.as_mut() {
            d.causes = causes;
        }
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// What upstream's `NewForbidden(resource, name, err)` answers: `pods "x" is forbidden:
    /// <why>` (without the name when it is empty), with the resource in `details`.
    pub fn forbidden_object(group: &str, plural: &str, name: &str, why: &str) -> Self {
        let resource = group_resource(group, plural);
        let message = if name.is_empty() {
            format!("{resource} is forbidden: {why}")
        } else {
            format!("{resource} \"{name}\" is forbidden: {why}")
        };
        Self::new(403, "Forbidden", message).with_details(name, group, plural)
    }

    /// This error with one more cause in `details.causes` (details are added if missing).
    pub fn with_cause(mut self, cause: Cause) -> Self {
        if self.details.is_none() {
            self = self.with_details("", "", "");
        }
        if let Some(d) = self.details.as_mut() {
            d.causes.push(cause);
        }
        self
    }

    /// The causes of this error (`details.causes`).
    pub fn causes(&self) -> &[Cause] {
        self.details.as_ref().map_or(&[], |d| &d.causes)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn too_large() -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
    }

    /// 415 for a body in a format the resource does not take, worded as upstream's
    /// `UnsupportedMediaTypeError` with the media types it accepts there.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// An error upstream has no Status for (a failed dial, say): 500 with no reason, so kubectl
    /// prints `Error from server: <message>` as kube-apiserver's `ErrorToAPIStatus` makes it.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::new(500, "", message)
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "UnprocessableEntity", message)
    }

    /// The `metav1.Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        // StatusReasonUnknown is "" and omitted, as metav1.Status encodes it.
        if self.reason.is_empty()
            && let Some(s) = status.as_object_mut()
        {
            s.remove("reason");
        }
        if let Some(d) = &self.details {
            let mut details = serde_json::Map::new();
            if !d.omit_empty || !d.name.is_empty() {
                details.insert("name".into(), json!(d.name));
            }
            if !d.group.is_empty() {
                details.insert("group".into(), json!(d.group));
            }
            if !d.omit_empty || !d.kind.is_empty() {
                details.insert("kind".into(), json!(d.kind));
            }
            if !d.causes.is_empty() {
                let causes: Vec<Value> = d
                    .causes
                    .iter()
                    .map(|c| {
                        let mut cause =
                            json!({"reason": c.reason, "message": c.message, "field": c.field});
                        if d.omit_empty
                            && let Some(m) = cause.as_object_mut()
                        {
                            m.retain(|_, v| v.as_str().is_some_and(|s| !s.is_empty()));
                        }
                        cause
                    })
                    .collect();
                details.insert("causes".into(), Value::Array(causes));
            }
            if d.retry_after_seconds > 0 {
                details.insert("retryAfterSeconds".into(), json!(d.retry_after_seconds));
            }
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// `pods` for the core group, `daemonsets.apps` otherwise: how upstream names a resource in
/// messages.
pub fn group_resource(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.to_status().to_string();
        let retry_after = self.retry_after_seconds();
        let mut response = (code, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A success Status (delete of an object that is gone at once, eviction, binding).
pub fn success_status(name: &str, group: &str, plural: &str, uid: Option<&str>) -> Value {
    let mut details = json!({"name": name, "kind": plural});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    if let Some(uid) = uid {
        details["uid"] = json!(uid);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_group_resource_as_upstream() {
        let e = ApiError::not_found("apps", "daemonsets", "x");
        assert_eq!(e.message, "daemonsets.apps \"x\" not found");
        let s = e.to_status();
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["apiVersion"], "v1");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["kind"], "daemonsets");
        assert_eq!(s["details"]["group"], "apps");
        let core = ApiError::not_found("", "pods", "p");
        assert_eq!(core.message, "pods \"p\" not found");
        assert!(core.to_status()["details"].get("group").is_none());
    }

    #[test]
    fn invalid_carries_causes() {
        let e = ApiError::invalid(
            "apps",
            "DaemonSet",
            "x",
            "DaemonSet.apps \"x\" is invalid: spec.selector: Required value".into(),
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "spec.selector".into(),
            }],
        );
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(s["details"]["causes"][0]["field"], "spec.selector");
        assert_eq!(s["details"]["kind"], "DaemonSet");
    }
}
