//! Service-account tokens with the real kubectl: `kubectl create token` prints a JWT naming the
//! account, a TokenReview created with kubectl authenticates it, the signing key in the data
//! dir keeps it valid across a restart, and a duration under ten minutes is upstream's 422.

mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use support::{Cluster, eventually};

const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// The payload of a JWT, decoded without verifying.
fn claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url payload");
    serde_json::from_slice(&payload).expect("JSON payload")
}

fn review(c: &Cluster, token: &str) -> Value {
    let manifest = format!(
        "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {token}\n"
    );
    let out = c.ok_stdin(&["create", "-f", "-", "-o", "json"], &manifest);
    serde_json::from_str::<Value>(&out).expect("json")["status"].clone()
}

#[test]
fn kubectl_create_token_prints_a_jwt_of_the_account() {
    let mut c = Cluster::start("up", &["--nodes", "0"]);
    // The service account controller makes `default` in every namespace.
    eventually(
        Duration::from_secs(30),
        "the default ServiceAccount exists",
        || c.kubectl(&["get", "serviceaccount", "default"]).ok,
    );
    let uid = c.ok(&[
        "get",
        "serviceaccount",
        "default",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let token = c.ok(&["create", "token", "default", "--duration", "1h"]);
    let token = token.trim();
    let payload = claims(token);
    assert_eq!(payload["sub"], "system:serviceaccount:default:default");
    assert_eq!(payload["iss"], API_AUDIENCE);
    assert_eq!(payload["aud"], serde_json::json!([API_AUDIENCE]));
    assert_eq!(payload["kubernetes.io"]["namespace"], "default");
    assert_eq!(
        payload["kubernetes.io"]["serviceaccount"]["name"],
        "default"
    );
    assert_eq!(
        payload["kubernetes.io"]["serviceaccount"]["uid"],
        uid.as_str()
    );
    let lifetime = payload["exp"].as_i64().zip(payload["iat"].as_i64());
    assert_eq!(lifetime.map(|(exp, iat)| exp - iat), Some(3600));

    let status = review(&c, token);
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:default:default"
    );

    // The signing key is kept in the data dir, owner-only: the token outlives a restart.
    let key = c.dir.path().join("data").join("service-account.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key).expect("key file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(c.stop().success(), "{}", c.server_log());
    c.restart();
    let status = review(&c, token);
    assert_eq!(status["authenticated"], true, "{status}");

    // Shorter than ten minutes is upstream's validation error.
    let short = c.fails(&["create", "token", "default", "--duration", "5m"]);
    assert!(
        short.contains(
            "spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"
        ),
        "{short}"
    );
    // A review of something that is no token.
    let status = review(&c, "garbage");
    assert!(status.get("authenticated").is_none(), "{status}");
    assert_eq!(status["error"], "invalid bearer token");
}
