//! The certificate controllers against pernode's own API server, in process, each party under
//! its own identity: a bootstrap token's node client request is approved after a
//! SubjectAccessReview and signed; a request whose requester lacks the permission is approved
//! once it is granted; a request for the client signer waits for a person, then is signed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, PostParams};
use pernode_auth::user::UserInfo;
use pernode_controllers::{csr_approving, csr_signing};
use serde_json::json;

fn request(cn: &str, org: &str) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    params
        .serialize_request(&key)
        .expect("request")
        .pem()
        .expect("pem")
}

fn csr(name: &str, signer: &str, pem: &str, expiration: Option<i32>) -> CertificateSigningRequest {
    use base64::Engine;
    let mut spec = json!({
        "request": base64::engine::general_purpose::STANDARD.encode(pem),
        "signerName": signer,
        "usages": ["digital signature", "key encipherment", "client auth"],
    });
    if let Some(seconds) = expiration {
        spec["expirationSeconds"] = json!(seconds);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("csr")
}

fn conditions(csr: &CertificateSigningRequest) -> Vec<(String, String)> {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_, c.reason.unwrap_or_default()))
        .collect()
}

fn certificate(csr: &CertificateSigningRequest) -> Option<String> {
    let bytes = csr.status.as_ref()?.certificate.as_ref()?.0.clone();
    String::from_utf8(bytes).ok()
}

#[tokio::test]
async fn node_requests_are_approved_and_signed_others_wait() {
    let store =
        pernode_store::Store::in_memory(pernode_apiserver::registry::indexer(), Default::default());
    let server = pernode_apiserver::ApiServer::new(store)
        .await
        .expect("server");
    let as_user = |user: UserInfo| kube::Client::new(server.router_as(user), "default");
    let controller = as_user(UserInfo::new(
        "system:serviceaccount:kube-system:certificate-controller",
        [
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
        ],
    ));
    let ca = Arc::new(pernode_auth::pki::ClusterCa::generate().expect("ca"));
    let options = csr_signing::SignerOptions {
        ca: ca.clone(),
        signing_duration: Duration::from_secs(3600),
    };
    let approver = tokio::spawn(csr_approving::run(controller.clone()));
    let signer = tokio::spawn(csr_signing::run(controller, options));

    let joiner = as_user(UserInfo::new(
        "system:bootstrap:abcdef",
        [
            "system:bootstrappers",
            "system:bootstrappers:pernode:default-node-token",
        ],
    ));
    let admin = kube::Client::new(server.router(), "default");
    let pp = PostParams::default();
    let kubelet = pernode_auth::csr::KUBE_APISERVER_CLIENT_KUBELET;
    Api::<CertificateSigningRequest>::all(joiner.clone())
        .create(
            &pp,
            &csr(
                "join",
                kubelet,
                &request("system:node:joiner", "system:nodes"),
                None,
            ),
        )
        .await
        .expect("create as the bootstrap token");
    let csrs: Api<CertificateSigningRequest> = Api::all(admin.clone());
    let signed = eventually("the join request is approved and signed", 20, || async {
        csrs.get("join")
            .await
            .ok()
            .filter(|c| certificate(c).is_some())
    })
    .await;
    assert_eq!(
        conditions(&signed),
        [("Approved".to_string(), "AutoApproved".to_string())]
    );
    let pem = certificate(&signed).expect("certificate");
    let user = pernode_auth::x509::user_of_pem(&pem).expect("user");
    assert_eq!(user.name, "system:node:joiner");
    assert_eq!(user.groups, ["system:nodes"]);

    // The admin's node request is recognized as nodeclient for `system:admin`, who may do
    // anything: approved. A request for the client signer is never approved automatically.
    csrs.create(
        &pp,
        &csr(
            "by-admin",
            kubelet,
            &request("system:node:web-1", "system:nodes"),
            Some(600),
        ),
    )
    .await
    .expect("create");
    let client = pernode_auth::csr::KUBE_APISERVER_CLIENT;
    csrs.create(&pp, &csr("jane", client, &request("jane", "dev"), None))
        .await
        .expect("create");
    let approved = eventually("the admin's node request is approved", 20, || async {
        csrs.get("by-admin")
            .await
            .ok()
            .filter(|c| certificate(c).is_some())
    })
    .await;
    assert_eq!(conditions(&approved)[0].1, "AutoApproved");
    let jane = csrs.get("jane").await.expect("jane");
    assert!(conditions(&jane).is_empty(), "{:?}", conditions(&jane));

    // Once a person approves it, the signer signs it.
    let mut approve = jane.clone();
    approve
        .status
        .get_or_insert_with(Default::default)
        .conditions = Some(vec![
        serde_json::from_value(
            json!({"type": "Approved", "status": "True", "reason": "KubectlApprove"}),
        )
        .expect("condition"),
    ]);
    csrs.replace_subresource("approval", "jane", &pp, &approve)
        .await
        .expect("approve");
    let issued = eventually("jane's request is signed", 20, || async {
        csrs.get("jane")
            .await
            .ok()
            .filter(|c| certificate(c).is_some())
    })
    .await;
    let user = pernode_auth::x509::user_of_pem(&certificate(&issued).expect("pem")).expect("user");
    assert_eq!(
        (user.name.as_str(), user.groups.as_slice()),
        ("jane", &["dev".to_string()][..])
    );

    approver.abort();
    signer.abort();
}

#[tokio::test]
async fn a_request_waits_for_the_permission_that_approves_it() {
    let store =
        pernode_store::Store::in_memory(pernode_apiserver::registry::indexer(), Default::default());
    let server = pernode_apiserver::ApiServer::new(store)
        .await
        .expect("server");
    let controller = kube::Client::new(
        server.router_as(UserInfo::new(
            "system:serviceaccount:kube-system:certificate-controller",
            [
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
            ],
        )),
        "default",
    );
    let approver = tokio::spawn(csr_approving::run(controller));
    // A token of another group: it may create requests, not have them approved.
    let other = kube::Client::new(
        server.router_as(UserInfo::new(
            "system:bootstrap:ghijkl",
            ["system:bootstrappers", "system:bootstrappers:other"],
        )),
        "default",
    );
    let admin = kube::Client::new(server.router(), "default");
    let bindings: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(admin.clone());
    let pp = PostParams::default();
    let bind = |name: &str, role: &str| -> k8s_openapi::api::rbac::v1::ClusterRoleBinding {
        serde_json::from_value(json!({"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                          "name": "system:bootstrappers:other"}]}))
        .expect("binding")
    };
    bindings
        .create(&pp, &bind("other-creates", "system:node-bootstrapper"))
        .await
        .expect("binding");
    let kubelet = pernode_auth::csr::KUBE_APISERVER_CLIENT_KUBELET;
    Api::<CertificateSigningRequest>::all(other)
        .create(
            &pp,
            &csr(
                "late",
                kubelet,
                &request("system:node:late", "system:nodes"),
                None,
            ),
        )
        .await
        .expect("create");
    // A request of the default token group, made after it: the approver's one worker takes
    // requests in order, so once this one is approved, `late` has been tried and refused.
    let joiner = kube::Client::new(
        server.router_as(UserInfo::new(
            "system:bootstrap:abcdef",
            [
                "system:bootstrappers",
                "system:bootstrappers:pernode:default-node-token",
            ],
        )),
        "default",
    );
    Api::<CertificateSigningRequest>::all(joiner)
        .create(
            &pp,
            &csr(
                "marker",
                kubelet,
                &request("system:node:m", "system:nodes"),
                None,
            ),
        )
        .await
        .expect("create");
    let csrs: Api<CertificateSigningRequest> = Api::all(admin);
    eventually("the later request is approved", 20, || async {
        csrs.get("marker")
            .await
            .ok()
            .filter(|c| !conditions(c).is_empty())
    })
    .await;
    assert!(conditions(&csrs.get("late").await.expect("late")).is_empty());
    bindings
        .create(
            &pp,
            &bind(
                "other-approved",
                "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            ),
        )
        .await
        .expect("binding");
    let approved = eventually("the retry approves it", 20, || async {
        csrs.get("late")
            .await
            .ok()
            .filter(|c| !conditions(c).is_empty())
    })
    .await;
    assert_eq!(conditions(&approved)[0].0, "Approved");
    approver.abort();
}
