//! `kubectl pernode`: the plugin installed with `pernode install-plugin`, run by the real
//! kubectl with the plugin's folder first on the PATH; and what the rollout-control tests read
//! of their DaemonSet `x` (its annotations, conditions and pods' images) and the simulated
//! nodes they add.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Cluster, Run};

/// `pernode install-plugin <tmp>/bin`; returns the folder.
pub fn install_plugin(c: &Cluster) -> PathBuf {
    let bin = c.path("bin");
    let out = Command::new(env!("CARGO_BIN_EXE_pernode"))
        .arg("install-plugin")
        .arg(&bin)
        .output()
        .expect("run pernode install-plugin");
    assert!(out.status.success(), "{out:?}");
    bin
}

/// kubectl with the plugin's folder first on the PATH.
pub fn kubectl_pernode(c: &Cluster, bin: &Path, args: &[&str]) -> Run {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = c
        .command()
        .env("PATH", path)
        .arg("pernode")
        .args(args)
        .output()
        .expect("run kubectl pernode");
    Run::from(out)
}

/// A simulated node as `pernode up` makes them.
pub fn simulated_node(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/hostname: {name}}}\n  annotations: {{pernode.io/simulated: \"true\"}}\n"
    )
}

/// The value of annotation `key` on DaemonSet `x`.
pub fn annotation(c: &Cluster, key: &str) -> String {
    let escaped = key.replace('.', "\\.");
    c.ok(&[
        "get",
        "ds",
        "x",
        "-o",
        &format!("jsonpath={{.metadata.annotations.{escaped}}}"),
    ])
}

/// Node → image of the live (not terminating) pods of `x`; `None` if a node has two.
pub fn images(c: &Cluster) -> Option<BTreeMap<String, String>> {
    let out = c.ok(&["get", "pods", "-l", "app=x", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("pod list");
    let mut by_node = BTreeMap::new();
    for p in list["items"].as_array().into_iter().flatten() {
        if !p["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let node = p["spec"]["nodeName"].as_str().unwrap_or("").to_string();
        let image = p["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if by_node.insert(node, image).is_some() {
            return None;
        }
    }
    Some(by_node)
}

/// `reason: message` of the DaemonSet's condition `type_`.
pub fn condition(c: &Cluster, type_: &str) -> String {
    c.ok(&[
        "get",
        "ds",
        "x",
        "-o",
        &format!(
            "jsonpath={{.status.conditions[?(@.type==\"{type_}\")].reason}}: {{.status.conditions[?(@.type==\"{type_}\")].message}}"
        ),
    ])
}
