//! CertificateSigningRequests end to end, with the real kubectl against `pernode up`: a
//! bootstrap token's request for a node client certificate is approved (AutoApproved) and
//! signed by the controllers, and the certificate authenticates as the node; the admin's
//! request for a client certificate waits until `kubectl certificate approve`, then is
//! signed; `kubectl certificate deny` denies; `kubectl get csr` prints upstream's columns;
//! `--cluster-signing-duration` bounds the certificates.

mod support;

use std::time::Duration;

use support::{Cluster, b64, eventually};

/// A request for `cn` in `org` and its private key, both PEM.
fn request(cn: &str, org: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    let csr = params
        .serialize_request(&key)
        .expect("request")
        .pem()
        .expect("pem");
    (csr, key.serialize_pem())
}

fn manifest(name: &str, signer: &str, csr: &str) -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\nspec:\n  request: {}\n  signerName: {signer}\n  usages: [digital signature, key encipherment, client auth]\n",
        b64(csr)
    )
}

/// The issued certificate of `name` (PEM), once there is one.
fn certificate(c: &Cluster, name: &str) -> Option<String> {
    let encoded = c.ok(&["get", "csr", name, "-o", "jsonpath={.status.certificate}"]);
    if encoded.trim().is_empty() {
        return None;
    }
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .expect("base64");
    Some(String::from_utf8(pem).expect("pem"))
}

fn conditions(c: &Cluster, name: &str) -> String {
    c.ok(&[
        "get",
        "csr",
        name,
        "-o",
        "jsonpath={range .status.conditions[*]}{.type}/{.reason};{end}",
    ])
}

/// A kubeconfig `file` presenting `cert` and `key`.
fn kubeconfig_with(c: &Cluster, file: &str, cert: &str, key: &str) -> String {
    let fields = format!(
        "\n    client-certificate-data: {}\n    client-key-data: {}",
        b64(cert),
        b64(key)
    );
    c.kubeconfig_as(file, &fields)
}

#[test]
fn requests_are_approved_signed_and_authenticate() {
    let c = Cluster::start("up", &["--nodes", "0", "--cluster-signing-duration", "2h"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pernode"))
        .args(["token", "create", "--kubeconfig"])
        .arg(c.kubeconfig())
        .output()
        .expect("pernode token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    let (id, _) = token.split_once('.').expect("<id>.<secret>");
    let bootstrap = c.kubeconfig_as("bootstrap", &format!("\n    token: {token}"));

    // The admin asks for jane's client certificate first: it is nobody's to approve
    // automatically.
    let (jane_csr, jane_key) = request("jane", "dev");
    let kubelet = "kubernetes.io/kube-apiserver-client-kubelet";
    let client = "kubernetes.io/kube-apiserver-client";
    c.ok_stdin(&["create", "-f", "-"], &manifest("jane", client, &jane_csr));
    // The joining node, with its bootstrap token.
    let (node_csr, node_key) = request("system:node:joiner", "system:nodes");
    let created = c.ok_stdin(
        &["--kubeconfig", &bootstrap, "create", "-f", "-"],
        &manifest("node-csr-joiner", kubelet, &node_csr),
    );
    assert_eq!(
        created.trim(),
        "certificatesigningrequest.certificates.k8s.io/node-csr-joiner created"
    );
    let mut node_cert = None;
    eventually(
        Duration::from_secs(30),
        "the node's request is approved and signed",
        || {
            node_cert = certificate(&c, "node-csr-joiner");
            node_cert.is_some()
        },
    );
    assert_eq!(conditions(&c, "node-csr-joiner"), "Approved/AutoApproved;");
    let username = c.ok(&[
        "get",
        "csr",
        "node-csr-joiner",
        "-o",
        "jsonpath={.spec.username}",
    ]);
    assert_eq!(username, format!("system:bootstrap:{id}"));
    let node = kubeconfig_with(
        &c,
        "node",
        &node_cert.clone().unwrap_or_default(),
        &node_key,
    );
    let who = c.ok(&[
        "--kubeconfig",
        &node,
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
    ]);
    assert!(who.starts_with("system:node:joiner "), "{who}");
    assert!(who.contains("system:nodes"), "{who}");
    // Short of a day: the signing duration, from now (not backdated at its end).
    let not_after = pernode_auth::csr::first_not_after(node_cert.unwrap_or_default().as_bytes())
        .expect("notAfter");
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let lifetime = not_after - now;
    assert!((7200 - 120..=7200).contains(&lifetime), "{lifetime}");

    // The approver took requests in order: jane's was looked at and left pending.
    assert_eq!(conditions(&c, "jane"), "");
    let table = c.ok(&["get", "csr"]);
    let header = table.lines().next().unwrap_or_default();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let jane_row = row("jane");
    assert_eq!(
        jane_row[2..],
        [client, "system:admin", "<none>", "Pending"].map(String::from)
    );
    assert_eq!(row("node-csr-joiner")[5], "Approved,Issued");

    // A person approves jane's: the signer signs it.
    let approved = c.ok(&["certificate", "approve", "jane"]);
    assert_eq!(
        approved.trim(),
        "certificatesigningrequest.certificates.k8s.io/jane approved"
    );
    let mut jane_cert = None;
    eventually(Duration::from_secs(30), "jane's certificate", || {
        jane_cert = certificate(&c, "jane");
        jane_cert.is_some()
    });
    assert_eq!(conditions(&c, "jane"), "Approved/KubectlApprove;");
    let jane = kubeconfig_with(&c, "jane", &jane_cert.unwrap_or_default(), &jane_key);
    let who = c.ok(&[
        "--kubeconfig",
        &jane,
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(who, "jane");

    // A denied request stays without a certificate; denial is final.
    let (csr, _) = request("mallory", "dev");
    c.ok_stdin(&["create", "-f", "-"], &manifest("mallory", client, &csr));
    let denied = c.ok(&["certificate", "deny", "mallory"]);
    assert_eq!(
        denied.trim(),
        "certificatesigningrequest.certificates.k8s.io/mallory denied"
    );
    assert_eq!(conditions(&c, "mallory"), "Denied/KubectlDeny;");
    let e = c.fails(&["certificate", "approve", "mallory"]);
    assert!(
        e.contains(r#"certificate signing request "mallory" is already Denied"#),
        "{e}"
    );
    // Sent past kubectl's own check, the server refuses it.
    let mut csr: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "csr", "mallory", "-o", "json"])).expect("json");
    csr["status"]["conditions"]
        .as_array_mut()
        .expect("conditions")
        .push(serde_json::json!({"type": "Approved", "status": "True"}));
    let body = c.write("mallory.json", &csr.to_string());
    let e = c.fails(&[
        "replace",
        "--raw",
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/mallory/approval",
        "-f",
        &body,
    ]);
    assert!(
        e.contains("Approved and Denied conditions are mutually exclusive"),
        "{e}"
    );
    // A bootstrap token cannot approve its own request for another signer.
    let (csr, _) = request("sneaky", "dev");
    c.ok_stdin(
        &["--kubeconfig", &bootstrap, "create", "-f", "-"],
        &manifest("sneaky", client, &csr),
    );
    let e = c.fails(&[
        "--kubeconfig",
        &bootstrap,
        "certificate",
        "approve",
        "sneaky",
    ]);
    assert!(e.contains("forbidden"), "{e}");
    assert_eq!(conditions(&c, "sneaky"), "");
}
