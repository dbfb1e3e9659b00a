//! Server-side apply and managedFields with the real kubectl against `pernode up`: the
//! conflict `kubectl set image` leaves for the next `kubectl apply --server-side`, in upstream's
//! words; `--force-conflicts`; a field dropped from the applied file removed; and the managers
//! `--show-managed-fields` shows for kubectl's client-side apply, `set`, `rollout` and the
//! controllers, as on Kubernetes.

mod support;

use std::time::Duration;

use support::{Cluster, eventually};

fn ds_yaml(name: &str, image: &str, extra_container: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: c
        image: {image}
{extra_container}"#
    )
}

/// The managers of an object's managedFields as `manager/operation[/subresource]`.
fn managers(c: &Cluster, what: &str) -> Vec<String> {
    let out = c.ok(&["get", what, "-o", "json", "--show-managed-fields"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("object JSON");
    v["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut s = format!(
                "{}/{}",
                e["manager"].as_str().unwrap_or(""),
                e["operation"].as_str().unwrap_or("")
            );
            if let Some(sub) = e["subresource"].as_str() {
                s = format!("{s}/{sub}");
            }
            s
        })
        .collect()
}

fn json_of(c: &Cluster, what: &str) -> serde_json::Value {
    serde_json::from_str(&c.ok(&["get", what, "-o", "json"])).expect("object JSON")
}

#[test]
fn apply_conflicts_force_and_pruning() {
    let c = Cluster::start("up", &["--nodes", "1"]);
    let file = c.write(
        "ssa.yaml",
        &ds_yaml("ssa", "nginx:1.27", "        args: [\"-v\"]\n"),
    );
    c.ok(&["apply", "--server-side", "-f", &file]);
    assert!(managers(&c, "ds/ssa").contains(&"kubectl/Apply".to_string()));

    // `kubectl set image` takes the image; applying the file again conflicts with it.
    c.ok(&["set", "image", "ds/ssa", "c=nginx:1.28"]);
    let err = c.fails(&["apply", "--server-side", "-f", &file]);
    assert!(
        err.contains(
            r#"Apply failed with 1 conflict: conflict with "kubectl-set" using apps/v1: .spec.template.spec.containers[name="c"].image"#
        ),
        "{err}"
    );
    let image = |c: &Cluster| {
        json_of(c, "ds/ssa")["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        image(&c),
        "nginx:1.28",
        "a refused apply changed the object"
    );

    // Forced, the applier takes the field back and kubectl-set owns nothing any more.
    c.ok(&["apply", "--server-side", "--force-conflicts", "-f", &file]);
    assert_eq!(image(&c), "nginx:1.27");
    let owners = managers(&c, "ds/ssa");
    assert!(
        !owners.iter().any(|m| m.starts_with("kubectl-set/")),
        "{owners:?}: {}",
        c.ok(&["get", "ds/ssa", "-o", "yaml", "--show-managed-fields"])
    );

    // A field dropped from the file goes, since nobody else owns it.
    let file = c.write("ssa.yaml", &ds_yaml("ssa", "nginx:1.27", ""));
    c.ok(&["apply", "--server-side", "-f", &file]);
    let container = &json_of(&c, "ds/ssa")["spec"]["template"]["spec"]["containers"][0];
    assert!(container.get("args").is_none(), "{container}");
}

#[test]
fn show_managed_fields_names_kubectl_and_the_controllers() {
    let c = Cluster::start("up", &["--nodes", "1"]);
    let file = c.write("csa.yaml", &ds_yaml("csa", "nginx:1.27", ""));
    c.ok(&["apply", "-f", &file]);
    c.ok(&["set", "image", "ds/csa", "c=nginx:1.28"]);
    c.ok(&["rollout", "restart", "ds/csa"]);
    let mut seen = Vec::new();
    eventually(
        Duration::from_secs(30),
        "the DaemonSet's managers include its status writer",
        || {
            seen = managers(&c, "ds/csa");
            seen.contains(&"kube-controller-manager/Update/status".to_string())
        },
    );
    for want in [
        "kubectl-client-side-apply/Update",
        "kubectl-set/Update",
        "kubectl-rollout/Update",
    ] {
        assert!(seen.contains(&want.to_string()), "{want} in {seen:?}");
    }
    // kubectl moving the object from client-side to server-side apply takes the fields its
    // client-side apply set, without a conflict with its own earlier entry.
    let moved = c.write("moved.yaml", &ds_yaml("moved", "nginx:1.27", ""));
    c.ok(&["apply", "-f", &moved]);
    let moved = c.write("moved.yaml", &ds_yaml("moved", "nginx:1.29", ""));
    c.ok(&["apply", "--server-side", "-f", &moved]);
    assert!(
        managers(&c, "ds/moved").contains(&"kubectl/Apply".to_string()),
        "{:?}",
        managers(&c, "ds/moved")
    );
    assert_eq!(
        json_of(&c, "ds/moved")["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.29"
    );
    // `kubectl get` hides them unless asked.
    let plain = c.ok(&["get", "ds/csa", "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");

    // The controller's pods are its writes.
    eventually(
        Duration::from_secs(30),
        "a daemon pod written by kube-controller-manager",
        || {
            let run = c.kubectl(&[
                "get",
                "pods",
                "-l",
                "app=csa",
                "-o",
                "json",
                "--show-managed-fields",
            ]);
            let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_default();
            let pod_managers: Vec<String> = list["items"][0]["metadata"]["managedFields"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["manager"].as_str().unwrap_or("").to_string())
                .collect();
            pod_managers.contains(&"kube-controller-manager".to_string())
        },
    );
}

/// A child process killed when the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn controllers_and_simulator_over_tcp_name_themselves_as_upstream() {
    let c = Cluster::start("apiserver", &[]);
    let kubeconfig = c.kubeconfig().display().to_string();
    let spawn = |args: &[&str]| {
        Child(
            std::process::Command::new(env!("CARGO_BIN_EXE_pernode"))
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start pernode"),
        )
    };
    let _controllers = spawn(&["controllers", "--kubeconfig", &kubeconfig]);
    let _sim = spawn(&["sim", "--kubeconfig", &kubeconfig, "--nodes", "1"]);
    let file = c.write("tcp.yaml", &ds_yaml("tcp", "nginx:1.27", ""));
    c.ok(&["apply", "-f", &file]);
    eventually(
        Duration::from_secs(60),
        "a daemon pod written by kube-controller-manager and a node by the kubelet",
        || {
            let pods = c.kubectl(&[
                "get",
                "pods",
                "-l",
                "app=tcp",
                "-o",
                "json",
                "--show-managed-fields",
            ]);
            let nodes = c.kubectl(&["get", "nodes", "-o", "json", "--show-managed-fields"]);
            let pods: serde_json::Value = serde_json::from_str(&pods.stdout).unwrap_or_default();
            let nodes: serde_json::Value = serde_json::from_str(&nodes.stdout).unwrap_or_default();
            let has = |list: &serde_json::Value, manager: &str| {
                list["items"][0]["metadata"]["managedFields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| e["manager"] == manager)
            };
            has(&pods, "kube-controller-manager") && has(&nodes, "kubelet")
        },
    );
}
