//! kubectl sends the built-in kinds it builds itself as protobuf (`create namespace`): the API
//! server decodes them as kube-apiserver does.

mod support;

use support::Cluster;

#[test]
fn kubectl_creates_and_deletes_in_protobuf() {
    let c = Cluster::start("apiserver", &[]);
    let run = c.kubectl(&["create", "namespace", "x", "-v=8"]);
    assert!(run.ok, "{}\n{}\n{}", run.stdout, run.stderr, c.server_log());
    assert_eq!(run.stdout.trim(), "namespace/x created");
    // It really was protobuf (kubectl logs its request headers at -v=8; the reply is JSON).
    assert!(
        run.stderr
            .contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "{}",
        run.stderr
    );
    let ns: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "ns", "x", "-o", "json"])).expect("json");
    assert_eq!(ns["metadata"]["name"], "x");
    assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "x");
    assert_eq!(ns["spec"]["finalizers"][0], "kubernetes");
    assert_eq!(ns["status"]["phase"], "Active");
    // The same name again is upstream's AlreadyExists, decoded from protobuf too.
    let again = c.fails(&["create", "namespace", "x"]);
    assert!(again.contains("namespaces \"x\" already exists"), "{again}");

    // A server-side dry run of a delete travels in the DeleteOptions body (JSON from `kubectl
    // delete`; typed client-go clients send it as protobuf, see protobuf_bodies.rs).
    let run = c.kubectl(&["delete", "namespace", "x", "--dry-run=server"]);
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("namespace \"x\" deleted (server dry run)"),
        "{}",
        run.stdout
    );
    assert!(
        c.ok(&["get", "ns", "x", "-o", "name"])
            .contains("namespace/x"),
        "the dry run deleted the namespace"
    );
}
