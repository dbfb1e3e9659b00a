//! `POST /apis/authentication.k8s.io/v1/tokenreviews`: who a token is, nothing stored, as
//! upstream's `pkg/registry/authentication/tokenreview`:
//!
//! - `spec.token` is required (400 `token is required for TokenReview in authentication`);
//! - the token is authenticated for `spec.audiences`, or the API server's when none are given;
//! - the answer (201) is the review with `status.authenticated`, `status.user` (name, uid,
//!   groups with `system:authenticated`, extra) and `status.audiences` (those of the token the
//!   review asked for), or `status.error` with the authenticators' errors as kube-apiserver's
//!   union reports them: `invalid bearer token` for a token no authenticator knows,
//!   `[invalid bearer token, <reason>]` for a service-account token refused for `<reason>`.
//!   Empty members are left out as Go's `omitempty` leaves them (a refused review has no
//!   `authenticated` member and an empty `user`).
//!
//! The only tokens known here are the service-account tokens this server issued
//! ([`crate::token_authn`]).

use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::authentication::v1::TokenReview;
use pernode_auth::serviceaccount::{VerifyError, aggregate};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::codec::{BodyKind, decode_object};
use crate::error::ApiError;
use crate::handlers::{Request, content_type, json_response};

/// What kube-apiserver's bearer-token authenticator says of a token nobody recognized.
pub const INVALID_BEARER_TOKEN: &str = "invalid bearer token";

/// Whether `info` is the TokenReview resource.
pub fn is_token_reviews(info: &pernode_resources::ResourceInfo) -> bool {
    info.group == pernode_resources::AUTHENTICATION && info.plural == "tokenreviews"
}

/// Reviews the token of a TokenReview.
pub fn create(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let mut body = decode_object(content_type(req), &req.body, &BodyKind::of(req.target.info))?;
    crate::handlers::check_type(&req.target, &mut body)?;
    let kind = req.target.info.kind;
    let review: TokenReview = serde_json::from_value(body.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: {e}"
        ))
    })?;
    let token = review.spec.token.as_deref().unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::bad_request(
            "token is required for TokenReview in authentication",
        ));
    }
    let audiences = review.spec.audiences.clone().unwrap_or_default();
    let mut status = Map::new();
    match crate::token_authn::review(state, token, &audiences) {
        Ok(authenticated) => {
            let user = authenticated.user;
            status.insert("authenticated".into(), json!(true));
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
            status.insert("user".into(), Value::Object(info));
            if !authenticated.audiences.is_empty() {
                status.insert("audiences".into(), json!(authenticated.audiences));
            }
        }
        Err(refusal) => {
            let error = match refusal {
                VerifyError::NotServiceAccountToken => INVALID_BEARER_TOKEN.to_string(),
                VerifyError::Invalid(reason) => aggregate(&[INVALID_BEARER_TOKEN, &reason]),
            };
            status.insert("user".into(), json!({}));
            status.insert("error".into(), json!(error));
        }
    }
    // The review as sent (its metadata and spec), with the status.
    let mut answer = Map::new();
    answer.insert("kind".into(), json!(kind));
    answer.insert("apiVersion".into(), json!(req.target.info.api_version()));
    answer.insert(
        "metadata".into(),
        body.get("metadata").cloned().unwrap_or_else(|| json!({})),
    );
    answer.insert("spec".into(), body.get("spec").cloned().unwrap_or_default());
    answer.insert("status".into(), Value::Object(status));
    Ok(json_response(
        StatusCode::CREATED,
        Value::Object(answer).to_string(),
    ))
}
