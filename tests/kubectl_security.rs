//! Secure by default, through the real kubectl against `pernode up`: HTTPS only, the admin's
//! certificate in the kubeconfig, anonymous and wrongly signed requests refused with 401, and
//! the credentials every namespace and pod gets (`kube-root-ca.crt`, `kube-api-access-*`).

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use base64::Engine;
use support::{Cluster, anonymous_get, b64, eventually, kubeconfig_field as field};

#[test]
fn https_only_and_credentials_are_checked() {
    let c = Cluster::start("up", &["--nodes", "0"]);
    let kubeconfig = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let server = field(&kubeconfig, "server:");
    assert!(server.starts_with("https://127.0.0.1:"), "{server}");
    assert!(!kubeconfig.contains("insecure-skip-tls-verify"));
    c.ok(&["get", "namespaces"]);

    // Plain HTTP gets Go's (so kube-apiserver's) 400 and nothing else.
    let addr = server.trim_start_matches("https://");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    tcp.write_all(b"GET /api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    );
    let http_url = server.replace("https://", "http://");
    let e = c.fails(&["--server", &http_url, "get", "pods"]);
    // What kubectl prints for kube-apiserver's answer too.
    assert!(
        e.contains("Error from server (BadRequest)")
            && e.contains("the server rejected our request for an unknown reason"),
        "{e}"
    );

    // No credentials: 401 on resources. (kubectl itself would prompt for a password on a
    // 401 with no credentials configured, so this asks without it.)
    let (code, body) = anonymous_get(&kubeconfig, "/api/v1/namespaces/default/pods");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains(r#""reason":"Unauthorized""#), "{body}");
    // A token nobody issued: 401, printed as kubectl prints it.
    let garbage = c.kubeconfig_as("garbage", "\n    token: not-a-token");
    let e = c.fails(&["--kubeconfig", &garbage, "get", "pods"]);
    assert!(
        e.contains("error: You must be logged in to the server (Unauthorized)"),
        "{e}"
    );

    // A certificate from another CA, with the admin's name and group: 401.
    let other = pernode_auth::pki::ClusterCa::generate().expect("ca");
    let forged = other
        .issue_client("system:admin", &["system:masters"], 1)
        .expect("cert");
    let user = format!(
        "\n    client-certificate-data: {}\n    client-key-data: {}",
        b64(&forged.cert_pem),
        b64(&forged.key_pem)
    );
    let forged = c.kubeconfig_as("forged", &user);
    let e = c.fails(&["--kubeconfig", &forged, "get", "pods"]);
    assert!(e.contains("Unauthorized"), "{e}");

    // A server certificate the client does not trust: kubectl refuses it.
    let stranger = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    certificate-authority-data: {}\n    server: {server}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n",
        b64(&other.cert_pem)
    );
    let stranger = c.write("stranger", &stranger);
    let e = c.fails(&["--kubeconfig", &stranger, "get", "pods"]);
    assert!(e.contains("certificate"), "{e}");

    // The CA's key is in the data dir, owner-only, and nowhere in the kubeconfig.
    let key = c.dir.path().join("data/pki/ca.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key).expect("ca.key").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let ca_key = std::fs::read_to_string(&key).expect("read");
    assert!(!kubeconfig.contains(&b64(&ca_key)));
}

#[test]
fn namespaces_get_the_root_ca_and_pods_their_api_credentials() {
    let c = Cluster::start("up", &["--nodes", "1"]);
    let kubeconfig = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let ca = base64::engine::general_purpose::STANDARD
        .decode(field(&kubeconfig, "certificate-authority-data:"))
        .expect("base64");
    let ca = String::from_utf8(ca).expect("pem");
    let published = |ns: &str| {
        c.kubectl(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            ns,
            "-o",
            r"jsonpath={.data.ca\.crt}",
        ])
        .stdout
    };
    c.ok(&["create", "namespace", "team"]);
    eventually(Duration::from_secs(20), "kube-root-ca.crt in team", || {
        published("team") == ca
    });
    assert_eq!(published("default"), ca);
    // Deleted or changed: put back.
    c.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "team"]);
    eventually(
        Duration::from_secs(20),
        "kube-root-ca.crt recreated",
        || published("team") == ca,
    );
    c.ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ]);
    eventually(Duration::from_secs(20), "kube-root-ca.crt restored", || {
        published("team") == ca
    });

    c.ok(&[
        "run", "agent", "-n", "team", "--image", "busybox", "--", "sleep", "3600",
    ]);
    let volume = c.ok(&["get", "pod", "agent", "-n", "team", "-o", "jsonpath={.spec.volumes[0].name} {.spec.containers[0].volumeMounts[0].mountPath} {.spec.volumes[0].projected.sources[1].configMap.name}"]);
    let parts: Vec<&str> = volume.split(' ').collect();
    assert!(parts[0].starts_with("kube-api-access-"), "{volume}");
    assert_eq!(parts[1], "/var/run/secrets/kubernetes.io/serviceaccount");
    assert_eq!(parts[2], "kube-root-ca.crt");

    let manifest = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"quiet","namespace":"team"},"spec":{"automountServiceAccountToken":false,"containers":[{"name":"c","image":"busybox"}]}}"#;
    c.ok_stdin(&["create", "-f", "-"], manifest);
    let volumes = c.ok(&[
        "get",
        "pod",
        "quiet",
        "-n",
        "team",
        "-o",
        "jsonpath={.spec.volumes}",
    ]);
    assert_eq!(volumes, "");
}

#[test]
fn a_node_writes_only_its_own_objects() {
    let c = Cluster::start("up", &["--nodes", "2"]);
    let node1 = c.kubeconfig_with_certificate("node-1", "system:node:node-1", "system:nodes");
    let as_node = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", node1.as_str()];
        all.extend_from_slice(args);
        c.kubectl(&all)
    };
    // Its own Node: read and labelled.
    let run = as_node(&["label", "node", "node-1", "disk=ssd"]);
    assert!(run.ok, "{}", run.stderr);
    // Another node: kubectl reads it first, and the Node authorizer refuses that read.
    let run = as_node(&["label", "node", "node-2", "disk=ssd"]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains(r#"Error from server (Forbidden): nodes "node-2" is forbidden: User "system:node:node-1" cannot get resource "nodes" in API group "" at the cluster scope: node 'node-1' cannot read 'node-2', only its own Node object"#),
        "{}",
        run.stderr
    );
    // A raw patch reaches NodeRestriction, which refuses it.
    let run = as_node(&[
        "patch",
        "node",
        "node-2",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"labels":{"disk":"ssd"}}}"#,
    ]);
    assert!(!run.ok);
    assert!(run.stderr.contains("forbidden"), "{}", run.stderr);
    assert_eq!(
        c.ok(&[
            "get",
            "node",
            "node-2",
            "-o",
            "jsonpath={.metadata.labels.disk}"
        ]),
        ""
    );
    // Secrets: none of its pods reference this one.
    c.ok(&[
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=password=x",
    ]);
    let run = as_node(&["get", "secret", "db"]);
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("no relationship found between node 'node-1' and this object"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_pods_token_lists_nodes_only_when_rbac_grants_it() {
    let c = Cluster::start("up", &["--nodes", "1"]);
    c.ok(&["create", "serviceaccount", "agent"]);
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"agent"},"spec":{"serviceAccountName":"agent","containers":[{"name":"c","image":"busybox"}]}}"#;
    c.ok_stdin(&["create", "-f", "-"], pod);
    let token = c.ok(&[
        "create",
        "token",
        "agent",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "agent",
    ]);
    let as_pod = c.kubeconfig_as("pod", &format!("\n    token: {}", token.trim()));
    let e = c.fails(&["--kubeconfig", &as_pod, "get", "nodes"]);
    assert!(
        e.contains(r#"nodes is forbidden: User "system:serviceaccount:default:agent" cannot list resource "nodes" in API group "" at the cluster scope"#),
        "{e}"
    );
    c.ok(&[
        "create",
        "clusterrole",
        "node-reader",
        "--verb=get,list,watch",
        "--resource=nodes",
    ]);
    c.ok(&[
        "create",
        "clusterrolebinding",
        "agent-reads-nodes",
        "--clusterrole=node-reader",
        "--serviceaccount=default:agent",
    ]);
    let nodes = c.ok(&["--kubeconfig", &as_pod, "get", "nodes", "-o", "name"]);
    assert_eq!(nodes.trim(), "node/node-1");
    // The pod goes, and its token with it.
    c.ok(&["delete", "pod", "agent", "--grace-period=0", "--force"]);
    eventually(
        Duration::from_secs(20),
        "the deleted pod's token refused",
        || {
            let run = c.kubectl(&["--kubeconfig", &as_pod, "get", "nodes"]);
            !run.ok && run.stderr.contains("Unauthorized")
        },
    );
}

#[test]
fn a_bootstrap_token_authenticates_until_its_secret_goes() {
    let c = Cluster::start("up", &["--nodes", "0"]);
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
    let joining = c.kubeconfig_as("joining", &format!("\n    token: {token}"));
    let who = c.ok(&["--kubeconfig", &joining, "auth", "whoami"]);
    assert!(who.contains(&format!("system:bootstrap:{id}")), "{who}");
    assert!(
        who.contains("system:bootstrappers:pernode:default-node-token"),
        "{who}"
    );
    let e = c.fails(&[
        "--kubeconfig",
        &joining,
        "get",
        "secrets",
        "-n",
        "kube-system",
    ]);
    assert!(
        e.contains(&format!(
            r#"User "system:bootstrap:{id}" cannot list resource "secrets""#
        )),
        "{e}"
    );
    // A wrong secret for the same id, then the Secret deleted: 401.
    let wrong = c.kubeconfig_as("wrong", &format!("\n    token: {id}.0000000000000000"));
    let e = c.fails(&["--kubeconfig", &wrong, "get", "pods"]);
    assert!(e.contains("Unauthorized"), "{e}");
    c.ok(&[
        "delete",
        "secret",
        &format!("bootstrap-token-{id}"),
        "-n",
        "kube-system",
    ]);
    let e = c.fails(&["--kubeconfig", &joining, "get", "pods"]);
    assert!(e.contains("Unauthorized"), "{e}");
}
