//! The fleet page's placement (`crates/apiserver/src/ui/assets/placement.js`) judged by Node.js
//! on the cases where it must agree with the controller's: a node-critical DaemonSet's pods
//! tolerate the node-critical gate's taint; an ordinary DaemonSet's do not.

use std::process::Command;

use serde_json::{Value, json};

/// Runs `Placement.judge(ds)(node)` in Node.js and returns its verdict.
fn judge(ds: &Value, node: &Value) -> Value {
    let asset = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/apiserver/src/ui/assets/placement.js"
    );
    let script = format!(
        "const vm = require('vm'); const fs = require('fs');\n\
         const judge = vm.runInThisContext(fs.readFileSync({asset:?}, 'utf8') + '; Placement.judge');\n\
         console.log(JSON.stringify(judge({ds})({node})));"
    );
    let out = Command::new("node")
        .args(["-e", &script])
        .output()
        .expect("Node.js runs (install nodejs; `.ci/run` does)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON verdict")
}

#[test]
fn only_node_critical_daemon_sets_tolerate_the_gates_taint() {
    let gated = json!({"metadata": {"name": "n1", "labels": {}}, "spec": {"taints": [
        {"key": "pernode.io/critical-daemons-not-ready", "effect": "NoSchedule"}]}});
    let ds = |annotations: Value| {
        json!({"metadata": {"name": "cni", "annotations": annotations},
               "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}})
    };
    let critical = judge(&ds(json!({"pernode.io/node-critical": "true"})), &gated);
    assert_eq!(critical["shouldRun"], true, "{critical}");
    let ordinary = judge(&ds(json!({})), &gated);
    assert_eq!(ordinary["shouldRun"], false, "{ordinary}");
    assert_eq!(
        ordinary["reason"],
        "taint pernode.io/critical-daemons-not-ready:NoSchedule not tolerated"
    );
}
