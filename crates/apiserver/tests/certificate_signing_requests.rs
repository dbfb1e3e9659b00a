//! CertificateSigningRequests through the router, as upstream's strategy, validation and
//! certificates admission plugins treat them: the requester recorded on create, the spec
//! immutable, `approval` and `status` each changing only their part, upstream's 422s, and the
//! `approve`/`sign` permissions on signers.

mod support;

use axum::Router;
use axum::http::{Method, StatusCode};
use base64::Engine;
use pernode_apiserver::ApiServer;
use pernode_auth::user::UserInfo;
use serde_json::{Value, json};
use support::{memory_store, send_json};

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const CLIENT: &str = "kubernetes.io/kube-apiserver-client";

async fn server() -> ApiServer {
    ApiServer::new(memory_store()).await.expect("server")
}

/// A PEM certificate request for `cn` in `orgs`, base64 as `spec.request` holds it.
fn request(cn: &str, orgs: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    if let Some(org) = orgs.first() {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, *org);
    }
    let pem = params
        .serialize_request(&key)
        .expect("request")
        .pem()
        .expect("pem");
    base64::engine::general_purpose::STANDARD.encode(pem)
}

fn csr(name: &str, signer: &str, request: &str) -> Value {
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": request, "signerName": signer,
                 "usages": ["digital signature", "key encipherment", "client auth"]}})
}

async fn call(router: &Router, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    let content_type = if method == Method::PATCH { MERGE } else { JSON };
    send_json(router, method, path, content_type, body).await
}

async fn ok(router: &Router, method: Method, path: &str, body: Value) -> Value {
    let (code, v) = call(router, method.clone(), path, body).await;
    assert!(code.is_success(), "{method} {path}: {code} {v}");
    v
}

/// A request that must fail with `code`; its message.
async fn refused(
    router: &Router,
    method: Method,
    path: &str,
    body: Value,
    code: StatusCode,
) -> String {
    let (got, v) = call(router, method.clone(), path, body).await;
    assert_eq!(got, code, "{method} {path}: {v}");
    v["message"].as_str().unwrap_or_default().to_string()
}

fn approval(csr: &Value, condition: &str) -> Value {
    let mut csr = csr.clone();
    csr["status"]["conditions"] = json!([{"type": condition, "status": "True",
        "reason": "KubectlApprove", "message": "approved by a test"}]);
    csr
}

#[tokio::test]
async fn a_create_records_the_requester_and_starts_pending() {
    let server = server().await;
    let mut user = UserInfo::new(
        "system:bootstrap:abcdef",
        [
            "system:bootstrappers",
            "system:bootstrappers:pernode:default-node-token",
        ],
    );
    user.uid = "uid-1".into();
    user.extra.insert("scopes".into(), vec!["a".into()]);
    // The bootstrap token's own permissions: pernode's kubeadm-style binding.
    let joiner = server.router_as(user);
    let mut body = csr(
        "node-csr-1",
        KUBELET,
        &request("system:node:joiner", &["system:nodes"]),
    );
    // Whatever the body claims about the requester or the status is replaced.
    body["spec"]["username"] = json!("system:admin");
    body["spec"]["groups"] = json!(["system:masters"]);
    body["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    let created = ok(&joiner, Method::POST, CSRS, body).await;
    assert_eq!(created["spec"]["username"], "system:bootstrap:abcdef");
    assert_eq!(created["spec"]["uid"], "uid-1");
    assert_eq!(
        created["spec"]["groups"],
        json!([
            "system:bootstrappers",
            "system:bootstrappers:pernode:default-node-token",
            "system:authenticated"
        ])
    );
    assert_eq!(created["spec"]["extra"], json!({"scopes": ["a"]}));
    assert_eq!(created["status"], json!({}));
    // The bootstrapper may read it back, and select it by signer.
    let path = format!("{CSRS}/node-csr-1");
    assert_eq!(
        ok(&joiner, Method::GET, &path, Value::Null).await["metadata"]["name"],
        "node-csr-1"
    );
    let admin = server.router();
    let listed = ok(
        &admin,
        Method::GET,
        &format!("{CSRS}?fieldSelector=spec.signerName%3D{KUBELET}"),
        Value::Null,
    )
    .await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    let listed = ok(
        &admin,
        Method::GET,
        &format!("{CSRS}?fieldSelector=spec.signerName%3D{CLIENT}"),
        Value::Null,
    )
    .await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn spec_is_immutable_and_each_subresource_changes_its_part() {
    let server = server().await;
    let admin = server.router();
    let created = ok(
        &admin,
        Method::POST,
        CSRS,
        csr("c1", CLIENT, &request("jane", &["dev"])),
    )
    .await;
    let path = format!("{CSRS}/c1");

    // The request itself: spec and status stay, labels change.
    let mut update = created.clone();
    update["spec"]["signerName"] = json!("example.com/other");
    update["spec"]["usages"] = json!(["server auth"]);
    update["status"] = json!({"certificate": "Zm9v"});
    update["metadata"]["labels"] = json!({"team": "a"});
    let updated = ok(&admin, Method::PUT, &path, update).await;
    assert_eq!(updated["spec"], created["spec"]);
    assert_eq!(updated["status"], json!({}));
    assert_eq!(updated["metadata"]["labels"], json!({"team": "a"}));

    // /approval: only the conditions change, and they get their timestamps.
    let mut approve = approval(&updated, "Approved");
    approve["spec"]["usages"] = json!(["server auth"]);
    approve["status"]["certificate"] = json!("Zm9v");
    let approved = ok(&admin, Method::PUT, &format!("{path}/approval"), approve).await;
    assert_eq!(approved["spec"], created["spec"]);
    assert!(
        approved["status"].get("certificate").is_none(),
        "{approved}"
    );
    let condition = &approved["status"]["conditions"][0];
    assert_eq!(condition["type"], "Approved");
    assert_eq!(condition["reason"], "KubectlApprove");
    assert!(condition["lastUpdateTime"].is_string(), "{condition}");
    assert!(condition["lastTransitionTime"].is_string(), "{condition}");

    // /status: the certificate is set; the approval is kept as stored.
    let ca = pernode_auth::pki::ClusterCa::generate().expect("ca");
    let certificate = base64::engine::general_purpose::STANDARD.encode(&ca.cert_pem);
    let mut status = approved.clone();
    status["status"]["certificate"] = json!(certificate);
    status["status"]["conditions"][0]["reason"] = json!("Forged");
    status["spec"]["usages"] = json!(["server auth"]);
    let issued = ok(&admin, Method::PUT, &format!("{path}/status"), status).await;
    assert_eq!(issued["status"]["certificate"], json!(certificate));
    assert_eq!(
        issued["status"]["conditions"][0]["reason"],
        "KubectlApprove"
    );
    assert_eq!(issued["spec"], created["spec"]);

    // Approval may not be removed (through either), nor Denied added beside it.
    let mut unapprove = issued.clone();
    unapprove["status"]["conditions"] = json!([]);
    let message = refused(
        &admin,
        Method::PUT,
        &format!("{path}/status"),
        unapprove.clone(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        message,
        r#"CertificateSigningRequest.certificates.k8s.io "c1" is invalid: status.conditions: Forbidden: updates may not remove a condition of type "Approved""#
    );
    let message = refused(
        &admin,
        Method::PATCH,
        &format!("{path}/approval"),
        json!({"status": {"conditions": [
            {"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]}}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        message,
        r#"CertificateSigningRequest.certificates.k8s.io "c1" is invalid: status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive"#
    );
    // The certificate is set once.
    let mut reissue = issued.clone();
    reissue["status"]["certificate"] = json!(
        base64::engine::general_purpose::STANDARD.encode(
            pernode_auth::pki::ClusterCa::generate()
                .expect("ca")
                .cert_pem
        )
    );
    let message = refused(
        &admin,
        Method::PUT,
        &format!("{path}/status"),
        reissue,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        message.ends_with(
            "status.certificate: Forbidden: updates may not modify existing certificate content"
        ),
        "{message}"
    );
    // Nothing changed.
    let stored = ok(&admin, Method::GET, &path, Value::Null).await;
    assert_eq!(stored["status"], issued["status"]);
}

#[tokio::test]
async fn invalid_requests_are_upstreams_422s() {
    let server = server().await;
    let admin = server.router();
    let bad_pem = base64::engine::general_purpose::STANDARD.encode("--");
    let message = refused(
        &admin,
        Method::POST,
        CSRS,
        csr("bad", CLIENT, &bad_pem),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        message,
        r#"CertificateSigningRequest.certificates.k8s.io "bad" is invalid: spec.request: Invalid value: []byte{0x2d, 0x2d}: PEM block type must be CERTIFICATE REQUEST"#
    );
    let mut short = csr("short", CLIENT, &request("jane", &[]));
    short["spec"]["expirationSeconds"] = json!(599);
    let message = refused(
        &admin,
        Method::POST,
        CSRS,
        short,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        message,
        r#"CertificateSigningRequest.certificates.k8s.io "short" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)"#
    );
    let no_signer = csr("nosigner", "", &request("jane", &[]));
    let message = refused(
        &admin,
        Method::POST,
        CSRS,
        no_signer,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        message.ends_with("spec.signerName: Required value: signerName must be provided"),
        "{message}"
    );
    // Nothing was stored.
    let listed = ok(&admin, Method::GET, CSRS, Value::Null).await;
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn approving_and_signing_need_the_signers_permissions() {
    let server = server().await;
    let admin = server.router();
    let created = ok(
        &admin,
        Method::POST,
        CSRS,
        csr("c2", CLIENT, &request("jane", &["dev"])),
    )
    .await;
    // Carol may update both subresources, but is allowed no signer.
    ok(
        &admin,
        Method::POST,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"metadata": {"name": "csr-writer"}, "rules": [{"apiGroups": ["certificates.k8s.io"],
            "resources": ["certificatesigningrequests/approval", "certificatesigningrequests/status"],
            "verbs": ["update", "patch"]}]}),
    )
    .await;
    let bind = |name: &str, role: &str| {
        json!({"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]})
    };
    let bindings = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
    ok(
        &admin,
        Method::POST,
        bindings,
        bind("carol-csr", "csr-writer"),
    )
    .await;
    let carol = server.router_as(UserInfo::new("carol", Vec::<String>::new()));
    let path = format!("{CSRS}/c2");
    let message = refused(
        &carol,
        Method::PUT,
        &format!("{path}/approval"),
        approval(&created, "Approved"),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        message,
        r#"certificatesigningrequests.certificates.k8s.io "c2" is forbidden: user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client""#
    );
    let ca = pernode_auth::pki::ClusterCa::generate().expect("ca");
    let mut issue = created.clone();
    issue["status"]["certificate"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&ca.cert_pem));
    let message = refused(
        &carol,
        Method::PUT,
        &format!("{path}/status"),
        issue,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        message,
        r#"certificatesigningrequests.certificates.k8s.io "c2" is forbidden: user not permitted to sign requests with signerName "kubernetes.io/kube-apiserver-client""#
    );
    let stored = ok(&admin, Method::GET, &path, Value::Null).await;
    assert_eq!(stored["status"], json!({}), "nothing changed");

    // Upstream's approver role for the signer: now she may approve, and deny only what is
    // not approved.
    ok(
        &admin,
        Method::POST,
        bindings,
        bind(
            "carol-approves",
            "system:certificates.k8s.io:kube-apiserver-client-approver",
        ),
    )
    .await;
    let approved = ok(
        &carol,
        Method::PUT,
        &format!("{path}/approval"),
        approval(&created, "Approved"),
    )
    .await;
    assert_eq!(approved["status"]["conditions"][0]["type"], "Approved");

    // `<domain>/*` names every signer of the domain.
    let other = ok(
        &admin,
        Method::POST,
        CSRS,
        csr("c3", KUBELET, &request("system:node:n", &["system:nodes"])),
    )
    .await;
    let c3 = format!("{CSRS}/c3/approval");
    refused(
        &carol,
        Method::PUT,
        &c3,
        approval(&other, "Denied"),
        StatusCode::FORBIDDEN,
    )
    .await;
    ok(
        &admin,
        Method::POST,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        json!({"metadata": {"name": "all-kubernetes-signers"}, "rules": [{"apiGroups": ["certificates.k8s.io"],
            "resources": ["signers"], "resourceNames": ["kubernetes.io/*"], "verbs": ["approve"]}]}),
    )
    .await;
    ok(
        &admin,
        Method::POST,
        bindings,
        bind("carol-all", "all-kubernetes-signers"),
    )
    .await;
    let denied = ok(&carol, Method::PUT, &c3, approval(&other, "Denied")).await;
    assert_eq!(denied["status"]["conditions"][0]["type"], "Denied");
}

#[tokio::test]
async fn no_master_certificates_from_the_client_signer() {
    let server = server().await;
    let admin = server.router();
    let message = refused(
        &admin,
        Method::POST,
        CSRS,
        csr("root", CLIENT, &request("mallory", &["system:masters"])),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        message,
        r#"certificatesigningrequests.certificates.k8s.io "root" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"#
    );
}
