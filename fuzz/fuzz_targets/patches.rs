//! JSON patch, merge patch and strategic merge patch (`pernode_patch`) applied to a DaemonSet,
//! a Node, a Pod or a Service (the strategic merge's list strategies follow field paths, and
//! these kinds carry most of them: containers, env, ports, volumes, taints, conditions).
//!
//! Input: one byte choosing the patch type (its value modulo 3) and the kind (its top two
//! bits), then the document, a `0xFF` byte (never
//! in UTF-8) and the patch body. A document that is not a JSON object stands for the kind's
//! base object. Besides never panicking: a patch applies or fails with a typed error, the parsed
//! and the byte entry points agree, and a strategic merge patch leaves no directive key behind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pernode_patch::{PatchType, apply, apply_parsed};
use serde_json::{Value, json};

/// The kinds, by the top two bits of the first byte.
#[derive(Clone, Copy)]
enum Kind {
    DaemonSet,
    Node,
    Pod,
    Service,
}

fn base(kind: Kind) -> Value {
    match kind {
        Kind::DaemonSet => json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "ds", "namespace": "default", "labels": {"app": "x"},
                         "finalizers": ["a"]},
            "spec": {
                "selector": {"matchLabels": {"app": "x"}},
                "template": {
                    "metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox",
                        "env": [{"name": "A", "value": "1"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                        "volumes": [{"name": "v", "emptyDir": {}}],
                        "tolerations": [{"operator": "Exists"}]}
                }
            },
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }),
        Kind::Node => json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
            "spec": {"podCIDR": "10.0.1.0/24", "podCIDRs": ["10.0.1.0/24"],
                     "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                       "capacity": {"cpu": "4", "pods": "110"},
                       "images": [{"names": ["busybox"], "sizeBytes": 1}]}
        }),
        Kind::Pod => json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u"}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox",
                "volumeMounts": [{"name": "v", "mountPath": "/v"}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "podIPs": [{"ip": "10.0.0.1"}]}
        }),
        Kind::Service => json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"selector": {"app": "x"}, "clusterIP": "10.96.0.10",
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}
        }),
    }
}

fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, v)| {
            k == "$patch"
                || k == "$retainKeys"
                || k.starts_with("$setElementOrder/")
                || k.starts_with("$deleteFromPrimitiveList/")
                || has_directive(v)
        }),
        Value::Array(items) => items.iter().any(has_directive),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let patch_type = match choice % 3 {
        0 => PatchType::Json,
        1 => PatchType::Merge,
        _ => PatchType::StrategicMerge,
    };
    let kind = match choice >> 6 {
        0 => Kind::DaemonSet,
        1 => Kind::Node,
        2 => Kind::Pod,
        _ => Kind::Service,
    };
    let (doc, patch) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b""[..], rest),
    };
    let mut original = match serde_json::from_slice::<Value>(doc) {
        Ok(v @ Value::Object(_)) => v,
        _ => base(kind),
    };
    if let Value::Object(map) = &mut original {
        let template = base(kind);
        map.insert("apiVersion".into(), template["apiVersion"].clone());
        map.insert("kind".into(), template["kind"].clone());
    }

    let result = apply(patch_type, &original, patch);
    if let Err(e) = &result {
        let _ = (e.code(), e.reason(), e.status_message());
    }
    if patch_type != PatchType::Json {
        if let Ok(parsed) = serde_json::from_slice::<Value>(patch) {
            let again = apply_parsed(patch_type, &original, parsed);
            assert_eq!(
                again.is_ok(),
                result.is_ok(),
                "apply and apply_parsed disagree"
            );
            if let (Ok(a), Ok(b)) = (&again, &result) {
                assert_eq!(a, b, "apply and apply_parsed disagree");
            }
        }
    }
    if patch_type == PatchType::StrategicMerge && !has_directive(&original) {
        if let Ok(patched) = &result {
            assert!(!has_directive(patched), "a directive was left in {patched}");
        }
    }
});
