//! The reviews `kubectl auth` asks: created and answered (201), never stored, as upstream's
//! `pkg/registry/authorization/*` and `pkg/registry/authentication/selfsubjectreview`:
//!
//! - SelfSubjectAccessReview (`kubectl auth can-i`): may the requester do this?
//! - SubjectAccessReview: may `spec.user` (with `spec.groups`, `spec.uid`, `spec.extra`)?
//! - LocalSubjectAccessReview: the same, in the namespace of the request only;
//! - SelfSubjectRulesReview (`kubectl auth can-i --list`): the requester's rules in
//!   `spec.namespace`, from the authorizers that can list them;
//! - SelfSubjectReview (`kubectl auth whoami`): who the requester is.
//!
//! An access review asks the server's authorizer chain (the one deciding requests) about
//! upstream's attributes (`authorizationutil.ResourceAttributesFrom`: an empty version is
//! `*`) and answers `status.allowed`, `status.denied`, `status.reason` and
//! `status.evaluationError`. Its validation is upstream's, whose errors name no kind (the
//! internal object upstream validates has none): `.authorization.k8s.io "" is invalid: ...`.

use axum::http::StatusCode;
use axum::response::Response;
use pernode_admission::FieldError;
use pernode_auth::authorizer::{Attributes, Decision};
use pernode_auth::serviceaccount::aggregate;
use pernode_auth::user::UserInfo;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::codec::{BodyKind, decode_object};
use crate::error::ApiError;
use crate::handlers::{Request, content_type, json_response};

/// What the Node authorizer says when asked to list a node's rules (upstream's
/// `NodeAuthorizer.RulesFor`): it decides from its graph, and has no list to give.
pub const NODE_RULES_UNSUPPORTED: &str = "node authorizer does not support user rule resolution";

/// The review a resource is, if it is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Review {
    SelfSubjectAccess,
    SubjectAccess,
    LocalSubjectAccess,
    SelfSubjectRules,
    SelfSubject,
}

fn review_of(info: &pernode_resources::ResourceInfo) -> Option<Review> {
    match (info.group, info.plural) {
        (pernode_resources::AUTHORIZATION, "selfsubjectaccessreviews") => {
            Some(Review::SelfSubjectAccess)
        }
        (pernode_resources::AUTHORIZATION, "subjectaccessreviews") => Some(Review::SubjectAccess),
        (pernode_resources::AUTHORIZATION, "localsubjectaccessreviews") => {
            Some(Review::LocalSubjectAccess)
        }
        (pernode_resources::AUTHORIZATION, "selfsubjectrulesreviews") => {
            Some(Review::SelfSubjectRules)
        }
        (pernode_resources::AUTHENTICATION, "selfsubjectreviews") => Some(Review::SelfSubject),
        _ => None,
    }
}

/// Whether `info` is one of the reviews answered here.
pub fn is_review(info: &pernode_resources::ResourceInfo) -> bool {
    review_of(info).is_some()
}

/// Answers the review a POST to its collection sends.
pub fn create(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let info = req.target.info;
    let Some(review) = review_of(info) else {
        return Err(ApiError::internal(format!(
            "{} are not reviews",
            info.group_resource()
        )));
    };
    let mut body = decode_object(content_type(req), &req.body, &BodyKind::of(info))?;
    crate::handlers::check_type(&req.target, &mut body)?;
    crate::handlers::check_namespace(&req.target, &mut body)?;
    let metadata = body.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    if !spec.is_object() && !spec.is_null() {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: spec: expected an object",
            kind = info.kind
        )));
    }
    let (metadata, spec, status) = match review {
        Review::SelfSubject => (
            json!({"creationTimestamp": crate::registry::now_rfc3339()}),
            None,
            json!({"userInfo": user_info(&req.user)}),
        ),
        Review::SelfSubjectRules => {
            let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
            if namespace.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            (
                json!({}),
                Some(json!({})),
                rules_status(state, &req.user, namespace),
            )
        }
        Review::SelfSubjectAccess | Review::SubjectAccess | Review::LocalSubjectAccess => {
            let errors = validate(review, &metadata, &spec);
            if !errors.is_empty() {
                return Err(crate::registry::invalid_kind(
                    pernode_resources::AUTHORIZATION,
                    "",
                    "",
                    &errors,
                ));
            }
            let subject = if review == Review::SelfSubjectAccess {
                (*req.user).clone()
            } else {
                subject_of(&spec)
            };
            let status = access_status(state, &subject, &spec);
            (metadata, Some(spec), status)
        }
    };
    let mut answer = Map::new();
    answer.insert("kind".into(), json!(info.kind));
    answer.insert("apiVersion".into(), json!(info.api_version()));
    answer.insert("metadata".into(), metadata);
    if let Some(spec) = spec {
        answer.insert("spec".into(), spec);
    }
    answer.insert("status".into(), status);
    Ok(json_response(
        StatusCode::CREATED,
        Value::Object(answer).to_string(),
    ))
}

/// `status.userInfo` of a SelfSubjectReview (empty members left out, as Go's `omitempty`).
fn user_info(user: &UserInfo) -> Value {
    let mut info = Map::new();
    info.insert("username".into(), json!(user.name));
    if !user.uid.is_empty() {
        info.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        info.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        info.insert("extra".into(), json!(user.extra));
    }
    Value::Object(info)
}

/// Whether a JSON value is what Go decodes to a zero value (`apiequality.Semantic` treats
/// empty and absent maps and lists alike).
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(members) => members.values().all(is_zero),
    }
}

/// Upstream's `ValidateSubjectAccessReview`, `ValidateSelfSubjectAccessReview` and
/// `ValidateLocalSubjectAccessReview`.
fn validate(review: Review, metadata: &Value, spec: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let present = |key: &str| spec.get(key).is_some_and(|v| !v.is_null());
    let resource = present("resourceAttributes");
    let non_resource = present("nonResourceAttributes");
    if resource && non_resource {
        errors.push(FieldError::invalid(
            "spec.nonResourceAttributes",
            compact(&spec["nonResourceAttributes"]),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if !resource && !non_resource {
        errors.push(FieldError::invalid(
            "spec.resourceAttributes",
            Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if review != Review::SelfSubjectAccess {
        let user = spec.get("user").and_then(Value::as_str).unwrap_or("");
        let groups = spec
            .get("groups")
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty());
        if user.is_empty() && !groups {
            errors.push(FieldError::invalid(
                "spec.user",
                user,
                "at least one of user or group must be specified",
            ));
        }
    }
    let mut meta = metadata.as_object().cloned().unwrap_or_default();
    meta.remove("managedFields");
    let local = review == Review::LocalSubjectAccess;
    let namespace = if local {
        meta.remove("namespace")
            .and_then(|n| n.as_str().map(str::to_string))
            .unwrap_or_default()
    } else {
        String::new()
    };
    if !is_zero(&Value::Object(meta)) {
        let detail = if local {
            "must be empty except for namespace"
        } else {
            "must be empty"
        };
        errors.push(FieldError::invalid("metadata", compact(metadata), detail));
    }
    if local {
        if resource {
            let asked = spec["resourceAttributes"]
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            if asked != namespace {
                errors.push(FieldError::invalid(
                    "spec.resourceAttributes.namespace",
                    asked,
                    "must match metadata.namespace",
                ));
            }
        }
        if non_resource {
            errors.push(FieldError::invalid(
                "spec.nonResourceAttributes",
                compact(&spec["nonResourceAttributes"]),
                "disallowed on this kind of request",
            ));
        }
    }
    errors
}

/// A struct's value in a field error, printed as compact JSON.
fn compact(value: &Value) -> Value {
    Value::String(value.to_string())
}

/// The user a SubjectAccessReview asks about (`AuthorizationAttributesFrom`).
fn subject_of(spec: &Value) -> UserInfo {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut user = UserInfo::new(
        spec.get("user").and_then(Value::as_str).unwrap_or(""),
        strings(spec.get("groups").unwrap_or(&Value::Null)),
    );
    user.uid = spec
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(extra) = spec.get("extra").and_then(Value::as_object) {
        for (key, values) in extra {
            user.extra.insert(key.clone(), strings(values));
        }
    }
    user
}

/// Asks the authorizer chain about the review's attributes; upstream's
/// `SubjectAccessReviewStatus` (`allowed` always; `denied`, `reason`, `evaluationError` only
/// when set).
fn access_status(state: &AppState, user: &UserInfo, spec: &Value) -> Value {
    let text = |v: &Value, key: &str| -> String {
        v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
    };
    let mut evaluation_errors = Vec::new();
    let decision = match spec.get("resourceAttributes").filter(|v| !v.is_null()) {
        Some(attrs) => {
            let version = match text(attrs, "version") {
                v if v.is_empty() => "*".to_string(),
                v => v,
            };
            let (verb, namespace, group) = (
                text(attrs, "verb"),
                text(attrs, "namespace"),
                text(attrs, "group"),
            );
            let (resource, subresource, name) = (
                text(attrs, "resource"),
                text(attrs, "subresource"),
                text(attrs, "name"),
            );
            let raw = attrs
                .pointer("/fieldSelector/rawSelector")
                .and_then(Value::as_str)
                .unwrap_or("");
            let selector = if raw.is_empty() {
                None
            } else {
                match pernode_core::fields::parse(raw) {
                    Ok(s) => Some(s),
                    Err(_) => {
                        evaluation_errors.push(
                            "spec.resourceAttributes.fieldSelector ignored due to parse error",
                        );
                        None
                    }
                }
            };
            let attributes = Attributes::resource(
                user,
                &verb,
                &namespace,
                &group,
                &version,
                &resource,
                &subresource,
                &name,
            )
            .with_field_selector(selector.as_ref().map_or(&[], |s| s.requirements()));
            state.authorizer.authorize(&attributes)
        }
        None => {
            let attrs = spec
                .get("nonResourceAttributes")
                .cloned()
                .unwrap_or_default();
            let (verb, path) = (text(&attrs, "verb"), text(&attrs, "path"));
            state
                .authorizer
                .authorize(&Attributes::non_resource(user, &verb, &path))
        }
    };
    let mut status = Map::new();
    let reason = match decision {
        Decision::Allow => {
            status.insert("allowed".into(), json!(true));
            String::new()
        }
        Decision::Deny(reason) => {
            status.insert("allowed".into(), json!(false));
            status.insert("denied".into(), json!(true));
            reason
        }
        Decision::NoOpinion(reason) => {
            status.insert("allowed".into(), json!(false));
            reason
        }
    };
    if !reason.is_empty() {
        status.insert("reason".into(), json!(reason));
    }
    if !evaluation_errors.is_empty() {
        status.insert(
            "evaluationError".into(),
            json!(evaluation_errors.join("; ")),
        );
    }
    Value::Object(status)
}

/// What the authorizers that can list rules say `user` may do in `namespace`: upstream's union
/// rule resolver over the Node authorizer (a node's rules cannot be listed: incomplete) and
/// RBAC (`RbacAuthorizer::rules_for`; roles it cannot resolve are evaluation errors). The
/// privileged group lists none: `system:masters` holds its rules through the bootstrap
/// `cluster-admin` binding, as upstream's.
fn rules_status(state: &AppState, user: &UserInfo, namespace: &str) -> Value {
    let mut incomplete = false;
    let mut errors: Vec<String> = Vec::new();
    if user.node_identity().is_some() {
        incomplete = true;
        errors.push(NODE_RULES_UNSUPPORTED.to_string());
    }
    let rbac = state.rbac.authorizer().rules_for(user, namespace);
    errors.extend(rbac.errors.iter().map(|e| e.lister_message()));
    let mut status = Map::new();
    status.insert("resourceRules".into(), json!(rbac.resource_rules));
    status.insert("nonResourceRules".into(), json!(rbac.non_resource_rules));
    status.insert("incomplete".into(), json!(incomplete));
    if !errors.is_empty() {
        status.insert("evaluationError".into(), json!(aggregate(&errors)));
    }
    Value::Object(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(review: Review, metadata: Value, spec: Value) -> Vec<String> {
        validate(review, &metadata, &spec)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn validation_reads_as_upstreams() {
        assert_eq!(
            messages(Review::SubjectAccess, json!({}), json!({})),
            [
                "spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified",
                r#"spec.user: Invalid value: "": at least one of user or group must be specified"#
            ]
        );
        assert!(
            messages(
                Review::SelfSubjectAccess,
                json!({"creationTimestamp": null}),
                json!({"resourceAttributes": {"verb": "get"}})
            )
            .is_empty()
        );
        assert_eq!(
            messages(
                Review::SelfSubjectAccess,
                json!({"name": "x"}),
                json!({"resourceAttributes": {}, "nonResourceAttributes": {"path": "/x"}})
            ),
            [
                r#"spec.nonResourceAttributes: Invalid value: "{\"path\":\"/x\"}": cannot be specified in combination with resourceAttributes"#,
                r#"metadata: Invalid value: "{\"name\":\"x\"}": must be empty"#
            ]
        );
        assert_eq!(
            messages(
                Review::LocalSubjectAccess,
                json!({"namespace": "default"}),
                json!({"groups": ["dev"], "resourceAttributes": {"namespace": "other"}})
            ),
            [
                r#"spec.resourceAttributes.namespace: Invalid value: "other": must match metadata.namespace"#
            ]
        );
        assert_eq!(
            messages(
                Review::LocalSubjectAccess,
                json!({"namespace": "default"}),
                json!({"user": "bob", "nonResourceAttributes": {"path": "/x"}})
            ),
            [
                r#"spec.nonResourceAttributes: Invalid value: "{\"path\":\"/x\"}": disallowed on this kind of request"#
            ]
        );
    }

    #[test]
    fn subjects_carry_groups_uid_and_extra() {
        let user = subject_of(&json!({
            "user": "bob", "groups": ["dev"], "uid": "u-1",
            "extra": {"scopes": ["a", "b"]}
        }));
        assert_eq!(user.name, "bob");
        assert_eq!(user.groups, ["dev"]);
        assert_eq!(user.uid, "u-1");
        assert_eq!(user.extra["scopes"], ["a", "b"]);
    }

    #[test]
    fn zero_values() {
        assert!(is_zero(&json!({"creationTimestamp": null, "labels": {}})));
        assert!(!is_zero(&json!({"labels": {"a": "b"}})));
    }
}
