//! Service-account tokens through the API: TokenRequests (`serviceaccounts/{name}/token`)
//! issue them, TokenReviews and bearer authentication verify them, as kube-apiserver does.

mod support;

use axum::Router;
use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pernode_apiserver::token_authn::authenticate_bearer;
use pernode_apiserver::{ApiServer, ApiServerOptions, ServiceAccountKey};
use serde_json::{Value, json};
use support::{memory_store, send_json, server_with_accounts};

const JSON: &str = "application/json";
const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";
const DEFAULT_TOKEN: &str = "/api/v1/namespaces/default/serviceaccounts/default/token";
const REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

/// Asks for a token of the `default` account with this spec.
async fn request_token(router: &Router, spec: Value) -> (StatusCode, Value) {
    let body =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec});
    send_json(router, Method::POST, DEFAULT_TOKEN, JSON, body).await
}

async fn token(router: &Router, spec: Value) -> String {
    let (status, body) = request_token(router, spec).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["status"]["token"]
        .as_str()
        .expect("status.token")
        .to_string()
}

/// The TokenReview's status for `token` (and `audiences`, if any).
async fn review(router: &Router, token: &str, audiences: Option<&[&str]>) -> Value {
    let mut spec = json!({"token": token});
    if let Some(audiences) = audiences {
        spec["audiences"] = json!(audiences);
    }
    let body =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec});
    let (status, answer) = send_json(router, Method::POST, REVIEWS, JSON, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["kind"], "TokenReview");
    assert_eq!(answer["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(answer["spec"]["token"], token);
    answer["status"].clone()
}

/// A JWT's header and payload, decoded without verifying.
fn decode(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let part = |p: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("json")
    };
    (part(parts[0]), part(parts[1]))
}

async fn uid_of(router: &Router, path: &str) -> String {
    let (status, obj) = send_json(router, Method::GET, path, JSON, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{obj}");
    obj["metadata"]["uid"].as_str().expect("uid").to_string()
}

async fn create(router: &Router, path: &str, obj: Value) {
    let (status, body) = send_json(router, Method::POST, path, JSON, obj).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn create_pod(router: &Router, name: &str, account: &str) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"serviceAccountName": account, "nodeName": "node-1",
                 "containers": [{"name": "c", "image": "busybox:1.36"}]}});
    create(router, "/api/v1/namespaces/default/pods", pod).await;
}

#[tokio::test]
async fn a_token_request_for_the_default_account_is_a_signed_jwt_naming_it() {
    let server = server_with_accounts().await;
    let router = server.router();
    let sa_uid = uid_of(
        &router,
        "/api/v1/namespaces/default/serviceaccounts/default",
    )
    .await;
    let before = k8s_openapi::jiff::Timestamp::now().as_second();
    let (status, answer) = request_token(&router, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["kind"], "TokenRequest");
    assert_eq!(answer["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(answer["metadata"]["name"], "default");
    assert_eq!(answer["metadata"]["namespace"], "default");
    assert!(answer["metadata"]["creationTimestamp"].is_string());
    // Upstream's defaults: the API server's audience, an hour.
    assert_eq!(answer["spec"]["audiences"], json!([API_AUDIENCE]));
    assert_eq!(answer["spec"]["expirationSeconds"], 3600);
    let expires: k8s_openapi::jiff::Timestamp = answer["status"]["expirationTimestamp"]
        .as_str()
        .expect("expirationTimestamp")
        .parse()
        .expect("RFC 3339");
    let lifetime = expires.as_second() - before;
    assert!((3599..=3602).contains(&lifetime), "{lifetime}");

    let token = answer["status"]["token"].as_str().expect("token");
    let (header, claims) = decode(token);
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].as_str().is_some_and(|k| k.len() == 43));
    assert_eq!(claims["iss"], API_AUDIENCE);
    assert_eq!(claims["aud"], json!([API_AUDIENCE]));
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["exp"], expires.as_second());
    assert_eq!(claims["iat"], claims["nbf"]);
    assert_eq!(
        claims["kubernetes.io"],
        json!({"namespace": "default", "serviceaccount": {"name": "default", "uid": sa_uid}})
    );
    let jti = claims["jti"].as_str().expect("jti");

    let status = review(&router, token, None).await;
    assert_eq!(
        status,
        json!({
            "authenticated": true,
            "user": {
                "username": "system:serviceaccount:default:default",
                "uid": sa_uid,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:default",
                           "system:authenticated"],
                "extra": {"authentication.kubernetes.io/credential-id": [format!("JTI={jti}")]},
            },
            "audiences": [API_AUDIENCE],
        })
    );
    // The listener's authentication sees the same user.
    let user = authenticate_bearer(server.state(), token)
        .expect("a service account token")
        .expect("valid");
    assert_eq!(user.service_account(), Some(("default", "default")));
    assert!(user.groups.iter().any(|g| g == "system:authenticated"));
}

#[tokio::test]
async fn a_pod_bound_token_is_invalid_once_the_pod_is_deleted() {
    let server = server_with_accounts().await;
    let router = server.router();
    create(
        &router,
        "/api/v1/nodes",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}}),
    )
    .await;
    create_pod(&router, "web", "default").await;
    let pod_uid = uid_of(&router, "/api/v1/namespaces/default/pods/web").await;
    let node_uid = uid_of(&router, "/api/v1/nodes/node-1").await;
    let bound = json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web",
                                          "uid": pod_uid}});
    let token = token(&router, bound).await;
    let (_, claims) = decode(&token);
    assert_eq!(
        claims["kubernetes.io"]["pod"],
        json!({"name": "web", "uid": pod_uid})
    );
    assert_eq!(
        claims["kubernetes.io"]["node"],
        json!({"name": "node-1", "uid": node_uid})
    );
    let status = review(&router, &token, None).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["extra"],
        json!({
            "authentication.kubernetes.io/credential-id": [format!("JTI={}", claims["jti"].as_str().unwrap_or(""))],
            "authentication.kubernetes.io/node-name": ["node-1"],
            "authentication.kubernetes.io/node-uid": [node_uid],
            "authentication.kubernetes.io/pod-name": ["web"],
            "authentication.kubernetes.io/pod-uid": [pod_uid],
        })
    );

    let (status, body) = send_json(
        &router,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/web?gracePeriodSeconds=0",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let status = review(&router, &token, None).await;
    assert_eq!(
        status,
        json!({"user": {}, "error": "[invalid bearer token, service account token has been invalidated]"})
    );
    assert_eq!(
        authenticate_bearer(server.state(), &token),
        Some(Err("service account token has been invalidated".to_string()))
    );

    // The pod made again under its name is another pod.
    create_pod(&router, "web", "default").await;
    let new_uid = uid_of(&router, "/api/v1/namespaces/default/pods/web").await;
    let status = review(&router, &token, None).await;
    assert_eq!(
        status["error"],
        format!(
            "[invalid bearer token, pod UID ({new_uid}) does not match service account pod ref claim ({pod_uid})]"
        )
    );
}

#[tokio::test]
async fn the_body_client_go_sends_with_an_empty_status_is_taken() {
    let server = server_with_accounts().await;
    let router = server.router();
    // What `kubectl create token default --duration 1h` sends: Go's zero values included.
    let body = json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {"audiences": null, "expirationSeconds": 3600, "boundObjectRef": null},
        "status": {"token": "", "expirationTimestamp": null}});
    let (status, answer) = send_json(&router, Method::POST, DEFAULT_TOKEN, JSON, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(
        answer["status"]["token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(answer["spec"]["audiences"], json!([API_AUDIENCE]));
}

#[tokio::test]
async fn bound_object_references_are_checked_as_upstream() {
    let server = server_with_accounts().await;
    let router = server.router();
    create(
        &router,
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other"}}),
    )
    .await;
    create_pod(&router, "web", "other").await;
    let cases = [
        (
            json!({"apiVersion": "v1", "kind": "Pod", "name": "web"}),
            StatusCode::BAD_REQUEST,
            r#"cannot bind token for serviceaccount "default" to pod running with different serviceaccount name."#,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Pod", "name": "absent"}),
            StatusCode::NOT_FOUND,
            r#"pods "absent" not found"#,
        ),
        (
            json!({"apiVersion": "v1", "kind": "Node", "name": "absent"}),
            StatusCode::NOT_FOUND,
            r#"nodes "absent" not found"#,
        ),
        (
            json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}),
            StatusCode::BAD_REQUEST,
            "cannot bind token to object of type /v1, Kind=ConfigMap",
        ),
    ];
    for (reference, code, message) in cases {
        let (status, body) = request_token(&router, json!({"boundObjectRef": reference})).await;
        assert_eq!(status, code, "{body}");
        assert_eq!(body["message"], message);
    }
    // A secret named with a stale uid: the object was deleted and made again.
    create(
        &router,
        "/api/v1/namespaces/default/secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
    )
    .await;
    let stale = json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "s",
                                          "uid": "stale"}});
    let (status, body) = request_token(&router, stale).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on Secret \"s\": the UID in the bound object reference (stale) does not match the UID in record. The object might have been deleted and then recreated"
    );
    // Bound to a node, the token lives with the node and names it.
    create(
        &router,
        "/api/v1/nodes",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-2"}}),
    )
    .await;
    let node_bound =
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Node", "name": "node-2"}});
    let node_token = token(&router, node_bound).await;
    let status = review(&router, &node_token, None).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/node-name"],
        json!(["node-2"])
    );
    let (status, _) = send_json(
        &router,
        Method::DELETE,
        "/api/v1/nodes/node-2",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        review(&router, &node_token, None).await["error"],
        "[invalid bearer token, service account token has been invalidated]"
    );
    // Bound to the secret, the token lives with it.
    let secret_bound =
        json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Secret", "name": "s"}});
    let token = token(&router, secret_bound).await;
    assert_eq!(review(&router, &token, None).await["authenticated"], true);
    let (status, _) = send_json(
        &router,
        Method::DELETE,
        "/api/v1/namespaces/default/secrets/s",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        review(&router, &token, None).await["error"],
        "[invalid bearer token, service account token has been invalidated]"
    );
}

#[tokio::test]
async fn a_kubelets_pod_token_is_extended_to_a_year_and_stale_after_its_hour() {
    let server = server_with_accounts().await;
    let router = server.router();
    create_pod(&router, "web", "default").await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "name": "web"});
    // What a kubelet asks for a pod's projected token: 3607 s for the API server.
    let (status, answer) = request_token(
        &router,
        json!({"expirationSeconds": 3607, "boundObjectRef": pod}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["spec"]["expirationSeconds"], 3607);
    let (_, claims) = decode(answer["status"]["token"].as_str().expect("token"));
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["exp"].as_i64(), Some(iat + 365 * 24 * 3600));
    assert_eq!(
        claims["kubernetes.io"]["warnafter"].as_i64(),
        Some(iat + 3607)
    );
    // The status still tells the hour asked for.
    let expires: k8s_openapi::jiff::Timestamp = answer["status"]["expirationTimestamp"]
        .as_str()
        .expect("expirationTimestamp")
        .parse()
        .expect("RFC 3339");
    assert_eq!(expires.as_second(), iat + 3607);
    // For another audience, or unbound, the token is what was asked.
    for spec in [
        json!({"expirationSeconds": 3607, "boundObjectRef": pod, "audiences": ["vault"]}),
        json!({"expirationSeconds": 3607}),
    ] {
        let (_, claims) = decode(&token(&router, spec).await);
        assert_eq!(
            claims["exp"].as_i64(),
            claims["iat"].as_i64().map(|t| t + 3607)
        );
        assert!(claims["kubernetes.io"].get("warnafter").is_none());
    }
}

#[tokio::test]
async fn expirations_under_ten_minutes_are_upstreams_422() {
    let server = server_with_accounts().await;
    let router = server.router();
    let (status, body) = request_token(&router, json!({"expirationSeconds": 599})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["message"],
        r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"#
    );
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(
        body["details"],
        json!({"name": "", "group": "authentication.k8s.io", "kind": "TokenRequest",
               "causes": [{"reason": "FieldValueInvalid",
                           "message": "Invalid value: 599: may not specify a duration less than 10 minutes",
                           "field": "spec.expirationSeconds"}]})
    );
    // Ten minutes exactly is fine, and is what the token says.
    let token = token(&router, json!({"expirationSeconds": 600})).await;
    let (_, claims) = decode(&token);
    assert_eq!(
        claims["exp"].as_i64(),
        claims["iat"].as_i64().map(|t| t + 600)
    );
}

#[tokio::test]
async fn a_request_for_a_missing_account_or_another_name_is_refused() {
    let server = server_with_accounts().await;
    let router = server.router();
    let (status, body) = send_json(
        &router,
        Method::POST,
        "/api/v1/namespaces/default/serviceaccounts/nobody/token",
        JSON,
        json!({"spec": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["message"], r#"serviceaccounts "nobody" not found"#);
    let (status, body) = send_json(
        &router,
        Method::POST,
        DEFAULT_TOKEN,
        JSON,
        json!({"metadata": {"name": "admin"}, "spec": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["message"],
        r#"TokenRequest.authentication.k8s.io "default" is invalid: metadata.name: Invalid value: "admin": must match the service account name if specified"#
    );
    let (status, body) = send_json(
        &router,
        Method::POST,
        DEFAULT_TOKEN,
        JSON,
        json!({"metadata": {"namespace": "kube-system"}, "spec": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["message"],
        r#"TokenRequest.authentication.k8s.io "default" is invalid: metadata.namespace: Invalid value: "kube-system": must match the service account namespace if specified"#
    );
    // Only create is served on the subresource.
    let (status, _) = send_json(&router, Method::GET, DEFAULT_TOKEN, JSON, Value::Null).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_token_for_another_audience_is_not_the_api_servers() {
    let server = server_with_accounts().await;
    let router = server.router();
    let token = token(&router, json!({"audiences": ["vault"]})).await;
    let (_, claims) = decode(&token);
    assert_eq!(claims["aud"], json!(["vault"]));
    let status = review(&router, &token, None).await;
    assert_eq!(
        status["error"],
        format!(
            r#"[invalid bearer token, token audiences ["vault"] is invalid for the target audiences ["{API_AUDIENCE}"]]"#
        )
    );
    assert!(status.get("authenticated").is_none(), "{status}");
    assert_eq!(
        authenticate_bearer(server.state(), &token),
        Some(Err(format!(
            r#"token audiences ["vault"] is invalid for the target audiences ["{API_AUDIENCE}"]"#
        )))
    );
    // A review for that audience accepts it, for that audience.
    let status = review(&router, &token, Some(&["vault", "other"])).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["audiences"], json!(["vault"]));
}

#[tokio::test]
async fn a_review_of_garbage_is_unauthenticated_with_an_error() {
    let server = server_with_accounts().await;
    let router = server.router();
    let status = review(&router, "garbage", None).await;
    // authenticated is false, which Go's omitempty leaves out.
    assert_eq!(status, json!({"user": {}, "error": "invalid bearer token"}));
    assert_eq!(authenticate_bearer(server.state(), "garbage"), None);
    let (status, body) = send_json(
        &router,
        Method::POST,
        REVIEWS,
        JSON,
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["message"],
        "token is required for TokenReview in authentication"
    );
    // Nothing is stored, so nothing is read.
    let (status, _) = send_json(&router, Method::GET, REVIEWS, JSON, Value::Null).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_deleted_account_invalidates_its_tokens() {
    let server = server_with_accounts().await;
    let router = server.router();
    create(
        &router,
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ci"}}),
    )
    .await;
    let (status, answer) = send_json(
        &router,
        Method::POST,
        "/api/v1/namespaces/default/serviceaccounts/ci/token",
        JSON,
        json!({"spec": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let token = answer["status"]["token"].as_str().expect("token");
    assert_eq!(review(&router, token, None).await["authenticated"], true);
    let (status, _) = send_json(
        &router,
        Method::DELETE,
        "/api/v1/namespaces/default/serviceaccounts/ci",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        review(&router, token, None).await["error"],
        r#"[invalid bearer token, serviceaccounts "ci" not found]"#
    );
}

#[tokio::test]
async fn the_signing_key_kept_in_a_directory_outlives_the_server() {
    let dir = tempfile::tempdir().expect("dir");
    let options = || ApiServerOptions {
        service_account_key: ServiceAccountKey::Dir(dir.path().to_path_buf()),
        ..ApiServerOptions::default()
    };
    let store = memory_store();
    pernode_apiserver::seed_default_service_accounts(&store)
        .await
        .expect("accounts");
    let first = ApiServer::with_options(store.clone(), options())
        .await
        .expect("server");
    let token = token(&first.router(), json!({})).await;
    drop(first);
    // A server over the same store with the same key directory accepts the token...
    let second = ApiServer::with_options(store.clone(), options())
        .await
        .expect("server");
    assert_eq!(
        review(&second.router(), &token, None).await["authenticated"],
        true
    );
    // ...one with a key of its own does not.
    let stranger = ApiServer::new(store).await.expect("server");
    assert_eq!(
        review(&stranger.router(), &token, None).await["error"],
        "[invalid bearer token, invalid signature, no keys found]"
    );
}

#[tokio::test]
async fn discovery_lists_the_token_subresource_and_token_reviews() {
    let server = server_with_accounts().await;
    let router = server.router();
    let (_, core) = send_json(&router, Method::GET, "/api/v1", JSON, Value::Null).await;
    let token = core["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "serviceaccounts/token"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        token,
        json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true,
               "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest",
               "verbs": ["create"]})
    );
    let (status, authn) = send_json(
        &router,
        Method::GET,
        "/apis/authentication.k8s.io/v1",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // SelfSubjectReviews (`kubectl auth whoami`) sort first, as upstream lists them.
    assert_eq!(authn["resources"][0]["name"], "selfsubjectreviews");
    assert_eq!(authn["resources"][1]["name"], "tokenreviews");
    assert_eq!(authn["resources"][1]["verbs"], json!(["create"]));
}

#[tokio::test]
async fn a_token_request_in_protobuf_is_read_as_client_go_sends_it() {
    use k8s_pb::api::authentication::v1 as authn;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use prost::Message;

    let server = server_with_accounts().await;
    let router = server.router();
    let request = authn::TokenRequest {
        spec: Some(authn::TokenRequestSpec {
            audiences: vec!["vault".into()],
            expiration_seconds: Some(7200),
            bound_object_ref: None,
        }),
        ..Default::default()
    };
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("authentication.k8s.io/v1".into()),
            kind: Some("TokenRequest".into()),
        }),
        raw: Some(request.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    let (status, answer) = support::send(
        &router,
        Method::POST,
        DEFAULT_TOKEN,
        "application/vnd.kubernetes.protobuf",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["spec"]["audiences"], json!(["vault"]));
    assert_eq!(answer["spec"]["expirationSeconds"], 7200);
    let (_, claims) = decode(answer["status"]["token"].as_str().expect("token"));
    assert_eq!(claims["aud"], json!(["vault"]));
}
