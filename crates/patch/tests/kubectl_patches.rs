//! The patches the real kubectl sends (bodies from the wire contract, §3.2, §3.7-3.10, §3.13),
//! applied to the objects they are sent for, plus the error cases the API server must map to
//! Status replies.

use pernode_patch::{PatchError, PatchType, apply, strategic_merge};
use serde_json::{Value, json};

fn smp(original: &Value, patch: &str) -> Value {
    match apply(PatchType::StrategicMerge, original, patch.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("strategic merge patch {patch} failed: {e}"),
    }
}

fn merge(original: &Value, patch: &str) -> Value {
    match apply(PatchType::Merge, original, patch.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("merge patch {patch} failed: {e}"),
    }
}

fn json_patch(original: &Value, patch: &str) -> Result<Value, PatchError> {
    apply(PatchType::Json, original, patch.as_bytes())
}

/// Fails if any key starting with `$` is left anywhere in `v`.
fn assert_no_directives(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                assert!(!k.starts_with('$'), "directive key {k} left in {v}");
                assert_no_directives(x);
            }
        }
        Value::Array(a) => a.iter().for_each(assert_no_directives),
        _ => {}
    }
}

fn daemon_set() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "fluentd",
            "namespace": "default",
            "resourceVersion": "7",
            "annotations": {"team": "logs"},
            "labels": {"app": "fluentd"}
        },
        "spec": {
            "selector": {"matchLabels": {"app": "fluentd"}},
            "template": {
                "metadata": {
                    "labels": {"app": "fluentd"},
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}
                },
                "spec": {
                    "containers": [
                        {
                            "name": "fluentd",
                            "image": "fluentd:v1.16",
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "2"}
                            ],
                            "ports": [
                                {"containerPort": 24224, "protocol": "TCP"},
                                {"containerPort": 9880, "protocol": "TCP", "name": "http"}
                            ],
                            "resources": {
                                "limits": {"memory": "200Mi"},
                                "requests": {"cpu": "100m"}
                            },
                            "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}]
                        },
                        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "inf"]}
                    ],
                    "tolerations": [
                        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "volumes": [{"name": "varlog", "hostPath": {"path": "/var/log"}}]
                }
            },
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}
        },
        "status": {"desiredNumberScheduled": 3}
    })
}

fn node() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "daemon": "no"}},
        "spec": {
            "taints": [
                {"key": "dedicated", "value": "infra", "effect": "NoSchedule"},
                {"key": "forbid", "value": "true", "effect": "NoExecute"}
            ]
        },
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": "2025-01-01T00:00:00Z"}
            ],
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "Hostname", "address": "n1"}
            ]
        }
    })
}

fn template_spec(v: &Value) -> &Value {
    &v["spec"]["template"]["spec"]
}

#[test]
fn set_image_with_set_element_order() {
    let ds = daemon_set();
    // `kubectl set image ds/fluentd sidecar=busybox:1.37`
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"fluentd"},{"name":"sidecar"}],"containers":[{"image":"busybox:1.37","name":"sidecar"}]}}}}"#,
    );
    let containers = &template_spec(&patched)["containers"];
    assert_eq!(containers[0], template_spec(&ds)["containers"][0]);
    assert_eq!(
        containers[1],
        json!({"name": "sidecar", "image": "busybox:1.37", "args": ["sleep", "inf"]})
    );
    assert_eq!(containers.as_array().map(Vec::len), Some(2));
    assert_no_directives(&patched);
}

#[test]
fn set_element_order_reorders_and_keeps_server_only_items() {
    let ds = daemon_set();
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"sidecar"},{"name":"fluentd"}]}}}}"#,
    );
    let names: Vec<&Value> = template_spec(&patched)["containers"]
        .as_array()
        .map(|a| a.iter().map(|c| &c["name"]).collect())
        .unwrap_or_default();
    assert_eq!(names, [&json!("sidecar"), &json!("fluentd")]);
}

#[test]
fn set_element_order_out_of_order_patch_is_rejected() {
    let ds = daemon_set();
    let err = apply(
        PatchType::StrategicMerge,
        &ds,
        br#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"fluentd"},{"name":"sidecar"}],"containers":[{"name":"sidecar","image":"x"},{"name":"fluentd","image":"y"}]}}}}"#,
    )
    .expect_err("order mismatch");
    assert!(
        matches!(err, PatchError::StrategicPatchFailed(_)),
        "{err:?}"
    );
    assert_eq!(err.code(), 500);
    assert!(
        err.to_string().starts_with("The order in patch list:"),
        "{err}"
    );
}

#[test]
fn apply_patch_with_nulls() {
    let ds = daemon_set();
    // `kubectl apply` after removing tolerations and the limits from the file.
    let patched = smp(
        &ds,
        r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"new\":true}\n"}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"fluentd"},{"name":"sidecar"}],"containers":[{"image":"fluentd:v1.17","name":"fluentd","resources":{"limits":null}}],"nodeSelector":{"disk":"hdd"},"tolerations":null}}}}"#,
    );
    let spec = template_spec(&patched);
    assert!(spec.get("tolerations").is_none());
    assert_eq!(spec["nodeSelector"], json!({"disk": "hdd"}));
    assert_eq!(spec["containers"][0]["image"], "fluentd:v1.17");
    assert_eq!(
        spec["containers"][0]["resources"],
        json!({"requests": {"cpu": "100m"}})
    );
    // Untouched neighbours survive.
    assert_eq!(
        spec["containers"][0]["env"],
        template_spec(&ds)["containers"][0]["env"]
    );
    assert_eq!(spec["containers"][1], template_spec(&ds)["containers"][1]);
    assert_eq!(
        patched["metadata"]["annotations"],
        json!({"team": "logs", "kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}\n"})
    );
    assert_no_directives(&patched);
}

#[test]
fn rollout_undo_replaces_the_whole_template() {
    let ds = daemon_set();
    // The revision's data, byte for byte as kubectl sends it back.
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"fluentd"}},"spec":{"containers":[{"image":"fluentd:v1.15","imagePullPolicy":"IfNotPresent","name":"fluentd","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}}}"#,
    );
    assert_eq!(
        patched["spec"]["template"],
        json!({
            "metadata": {"labels": {"app": "fluentd"}},
            "spec": {
                "containers": [{
                    "image": "fluentd:v1.15",
                    "imagePullPolicy": "IfNotPresent",
                    "name": "fluentd",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst",
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30
            }
        })
    );
    // The rest of the object is merged as usual.
    assert_eq!(patched["spec"]["selector"], ds["spec"]["selector"]);
    assert_eq!(
        patched["spec"]["updateStrategy"],
        ds["spec"]["updateStrategy"]
    );
    assert_eq!(patched["metadata"], ds["metadata"]);
    assert_eq!(patched["status"], ds["status"]);
}

#[test]
fn label_and_unlabel_merge_patches() {
    let n = node();
    // `kubectl label node n1 daemon=need --overwrite`
    let labeled = merge(&n, r#"{"metadata":{"labels":{"daemon":"need"}}}"#);
    assert_eq!(labeled["metadata"]["labels"]["daemon"], "need");
    assert_eq!(
        labeled["metadata"]["labels"]["kubernetes.io/hostname"],
        "n1"
    );
    assert_eq!(labeled["spec"], n["spec"]);
    // `kubectl label node n1 daemon-`
    let unlabeled = merge(&labeled, r#"{"metadata":{"labels":{"daemon":null}}}"#);
    assert_eq!(
        unlabeled["metadata"]["labels"],
        json!({"kubernetes.io/hostname": "n1"})
    );
    // `kubectl label node n1 daemon-` when absent sends `{}`.
    assert_eq!(merge(&unlabeled, "{}"), unlabeled);
    // A merge patch replaces lists whole.
    let m = merge(
        &n,
        r#"{"spec":{"taints":[{"key":"a","effect":"NoSchedule"}]}}"#,
    );
    assert_eq!(
        m["spec"]["taints"],
        json!([{"key": "a", "effect": "NoSchedule"}])
    );
}

#[test]
fn taint_patches_replace_the_taint_list() {
    let n = node();
    // `kubectl taint nodes n1 extra=1:NoSchedule`: the whole new list.
    let tainted = smp(
        &n,
        r#"{"spec":{"taints":[{"effect":"NoSchedule","key":"dedicated","value":"infra"},{"effect":"NoExecute","key":"forbid","value":"true"},{"effect":"NoSchedule","key":"extra","value":"1"}]}}"#,
    );
    assert_eq!(tainted["spec"]["taints"].as_array().map(Vec::len), Some(3));
    // `kubectl taint nodes n1 forbid-` with another one left.
    let one = smp(
        &tainted,
        r#"{"spec":{"taints":[{"effect":"NoSchedule","key":"dedicated","value":"infra"}]}}"#,
    );
    assert_eq!(
        one["spec"]["taints"],
        json!([{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}])
    );
    // The last taint removed.
    let none = smp(&one, r#"{"spec":{"taints":null}}"#);
    assert!(none["spec"].get("taints").is_none());
    assert_eq!(none["metadata"], n["metadata"]);
}

#[test]
fn cordon_and_uncordon() {
    let n = node();
    let cordoned = smp(&n, r#"{"spec":{"unschedulable":true}}"#);
    assert_eq!(cordoned["spec"]["unschedulable"], true);
    assert_eq!(cordoned["spec"]["taints"], n["spec"]["taints"]);
    let uncordoned = smp(&cordoned, r#"{"spec":{"unschedulable":null}}"#);
    assert_eq!(uncordoned, n);
}

#[test]
fn rollout_restart_sets_the_template_annotation() {
    let mut ds = daemon_set();
    ds["spec"]["template"]["metadata"]["annotations"] = json!({"keep": "me"});
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2025-06-01T12:00:00+02:00"}}}}}"#,
    );
    assert_eq!(
        patched["spec"]["template"]["metadata"]["annotations"],
        json!({"keep": "me", "kubectl.kubernetes.io/restartedAt": "2025-06-01T12:00:00+02:00"})
    );
    assert_eq!(template_spec(&patched), template_spec(&ds));
}

#[test]
fn patch_delete_directive_removes_a_container() {
    let ds = daemon_set();
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete","name":"sidecar"}]}}}}"#,
    );
    assert_eq!(
        template_spec(&patched)["containers"],
        json!([template_spec(&ds)["containers"][0]])
    );
    // Without the merge key the item cannot be found: upstream fails with a plain error (500).
    let err = apply(
        PatchType::StrategicMerge,
        &ds,
        br#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete","image":"x"}]}}}}"#,
    )
    .expect_err("no merge key");
    assert_eq!(err.code(), 500);
    assert_eq!(
        err.to_string(),
        "map: map[$patch:delete image:x] does not contain declared merge key: name"
    );
}

#[test]
fn patch_delete_directive_removes_a_map() {
    let ds = daemon_set();
    let patched = smp(
        &ds,
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"$patch":"delete"}}}}"#,
    );
    assert_eq!(
        patched["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate"})
    );
}

#[test]
fn patch_replace_directive_on_a_map_and_as_a_list_item() {
    let ds = daemon_set();
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"name":"only","image":"x","env":[{"name":"Z","value":"z"}]}]}}}}"#,
    );
    assert_eq!(
        template_spec(&patched)["containers"],
        json!([{"name": "only", "image": "x", "env": [{"name": "Z", "value": "z"}]}])
    );
    let patched = smp(
        &ds,
        r#"{"spec":{"updateStrategy":{"$patch":"replace","type":"OnDelete"}}}"#,
    );
    assert_eq!(
        patched["spec"]["updateStrategy"],
        json!({"type": "OnDelete"})
    );
    // `$patch: merge` is the default behaviour, spelled out.
    let patched = smp(
        &ds,
        r#"{"spec":{"updateStrategy":{"$patch":"merge","type":"OnDelete"}}}"#,
    );
    assert_eq!(
        patched["spec"]["updateStrategy"],
        json!({"type": "OnDelete", "rollingUpdate": {"maxUnavailable": 1}})
    );
    let err = apply(
        PatchType::StrategicMerge,
        &ds,
        br#"{"spec":{"updateStrategy":{"$patch":"bogus"}}}"#,
    )
    .expect_err("unknown directive");
    assert_eq!(
        err.to_string(),
        "unknown patch type: bogus in map: map[$patch:bogus]"
    );
}

#[test]
fn env_merges_by_name() {
    let ds = daemon_set();
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","env":[{"name":"B","value":"20"},{"name":"A","$patch":"delete"},{"name":"C","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}}]}]}}}}"#,
    );
    assert_eq!(
        template_spec(&patched)["containers"][0]["env"],
        json!([
            {"name": "B", "value": "20"},
            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
        ])
    );
    // envFrom has no merge key: replaced.
    let mut with_env_from = ds.clone();
    with_env_from["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
        json!([{"configMapRef": {"name": "a"}}]);
    let patched = smp(
        &with_env_from,
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","envFrom":[{"secretRef":{"name":"b"}}]}]}}}}"#,
    );
    assert_eq!(
        template_spec(&patched)["containers"][0]["envFrom"],
        json!([{"secretRef": {"name": "b"}}])
    );
}

#[test]
fn new_merge_list_items_come_before_following_server_items_as_upstream() {
    // Upstream's mergeSortedSlice puts patch items not in the live list ahead of the remaining
    // live items (`kubectl patch` adding a container shows it first); with
    // `$setElementOrder` (apply, set image) the order is the client's.
    let ds = daemon_set();
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"new","image":"redis"}]}}}}"#,
    );
    let names: Vec<&Value> = template_spec(&patched)["containers"]
        .as_array()
        .map(|a| a.iter().map(|c| &c["name"]).collect())
        .unwrap_or_default();
    assert_eq!(names, [&json!("new"), &json!("fluentd"), &json!("sidecar")]);

    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"fluentd"},{"name":"sidecar"},{"name":"new"}],"containers":[{"name":"new","image":"redis"}]}}}}"#,
    );
    let names: Vec<&Value> = template_spec(&patched)["containers"]
        .as_array()
        .map(|a| a.iter().map(|c| &c["name"]).collect())
        .unwrap_or_default();
    assert_eq!(names, [&json!("fluentd"), &json!("sidecar"), &json!("new")]);
}

#[test]
fn container_ports_merge_by_container_port() {
    let ds = daemon_set();
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","ports":[{"containerPort":9880,"name":"web"},{"containerPort":8080.0,"protocol":"TCP"}]}]}}}}"#,
    );
    assert_eq!(
        template_spec(&patched)["containers"][0]["ports"],
        json!([
            {"containerPort": 24224, "protocol": "TCP"},
            {"containerPort": 9880, "protocol": "TCP", "name": "web"},
            {"containerPort": 8080.0, "protocol": "TCP"}
        ])
    );
    // A merge key written as 24224.0 still finds 24224 (Go decodes both to float64).
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","ports":[{"containerPort":24224.0,"$patch":"delete"}]}]}}}}"#,
    );
    assert_eq!(
        template_spec(&patched)["containers"][0]["ports"],
        json!([{"containerPort": 9880, "protocol": "TCP", "name": "http"}])
    );
}

#[test]
fn volume_mounts_merge_by_mount_path() {
    let ds = daemon_set();
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","volumeMounts":[{"mountPath":"/var/log","readOnly":true},{"mountPath":"/etc/x","name":"cfg"}]}]}}}}"#,
    );
    assert_eq!(
        template_spec(&patched)["containers"][0]["volumeMounts"],
        json!([
            {"name": "varlog", "mountPath": "/var/log", "readOnly": true},
            {"mountPath": "/etc/x", "name": "cfg"}
        ])
    );
}

#[test]
fn volumes_merge_by_name_with_retain_keys() {
    let ds = daemon_set();
    // `kubectl apply` switching a volume from hostPath to emptyDir.
    let patched = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"$setElementOrder/volumes":[{"name":"varlog"}],"volumes":[{"$retainKeys":["emptyDir","name"],"emptyDir":{},"name":"varlog"}]}}}}"#,
    );
    assert_eq!(
        template_spec(&patched)["volumes"],
        json!([{"name": "varlog", "emptyDir": {}}])
    );
    // Without $retainKeys the two sources would be merged side by side.
    let merged = smp(
        &ds,
        r#"{"spec":{"template":{"spec":{"volumes":[{"emptyDir":{},"name":"varlog"}]}}}}"#,
    );
    assert_eq!(
        template_spec(&merged)["volumes"],
        json!([{"name": "varlog", "hostPath": {"path": "/var/log"}, "emptyDir": {}}])
    );
    // A patch key missing from $retainKeys is a 400.
    let err = apply(
        PatchType::StrategicMerge,
        &ds,
        br#"{"spec":{"template":{"spec":{"volumes":[{"$retainKeys":["name"],"emptyDir":{},"name":"varlog"}]}}}}"#,
    )
    .expect_err("bad retainKeys");
    assert_eq!(
        err,
        PatchError::BadStrategicPatch("invalid patch format of retainKeys".into())
    );
    assert_eq!((err.code(), err.reason()), (400, "BadRequest"));
}

#[test]
fn finalizers_union_and_delete_from_primitive_list() {
    let obj = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
    let added = smp(&obj, r#"{"metadata":{"finalizers":["b","c"]}}"#);
    assert_eq!(added["metadata"]["finalizers"], json!(["a", "b", "c"]));
    // Upstream places new patch items ahead of the live ones that follow them.
    let added = smp(&obj, r#"{"metadata":{"finalizers":["c"]}}"#);
    assert_eq!(added["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let removed = smp(
        &obj,
        r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}}"#,
    );
    assert_eq!(removed["metadata"]["finalizers"], json!(["b"]));
    // The three-way patch of apply: additions, deletions and the order together.
    let both = smp(
        &obj,
        r#"{"metadata":{"$setElementOrder/finalizers":["b","c"],"$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["c"]}}"#,
    );
    assert_eq!(both["metadata"]["finalizers"], json!(["b", "c"]));
    assert_no_directives(&both);
    // Deleting from an absent list does nothing.
    let none = json!({"metadata": {"name": "x"}});
    assert_eq!(
        smp(
            &none,
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}}"#
        ),
        none
    );
    let err = apply(
        PatchType::StrategicMerge,
        &obj,
        br#"{"metadata":{"$deleteFromPrimitiveListfinalizers":["a"]}}"#,
    )
    .expect_err("bad prefix");
    assert_eq!(err.to_string(), "invalid patch format of primitive list");
    assert_eq!(err.code(), 400);
}

#[test]
fn owner_references_merge_by_uid() {
    let obj = json!({"metadata": {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "a", "uid": "u1", "controller": true}
    ]}});
    let patched = smp(
        &obj,
        r#"{"metadata":{"ownerReferences":[{"uid":"u1","blockOwnerDeletion":true},{"apiVersion":"v1","kind":"Node","name":"n","uid":"u2"}]}}"#,
    );
    let refs = &patched["metadata"]["ownerReferences"];
    assert_eq!(refs[0]["blockOwnerDeletion"], true);
    assert_eq!(refs[0]["controller"], true);
    assert_eq!(refs[1]["uid"], "u2");
}

#[test]
fn status_conditions_merge_by_type() {
    let n = node();
    // A kubelet-style status patch.
    let patched = smp(
        &n,
        r#"{"status":{"$setElementOrder/conditions":[{"type":"MemoryPressure"},{"type":"Ready"}],"conditions":[{"lastHeartbeatTime":"2025-01-01T00:01:00Z","status":"False","type":"Ready","reason":"KubeletNotReady"}]}}"#,
    );
    assert_eq!(
        patched["status"]["conditions"],
        json!([
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
            {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "lastHeartbeatTime": "2025-01-01T00:01:00Z"}
        ])
    );
    // Node addresses merge by type too.
    let patched = smp(
        &n,
        r#"{"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.2"}]}}"#,
    );
    assert_eq!(
        patched["status"]["addresses"],
        json!([
            {"type": "InternalIP", "address": "10.0.0.2"},
            {"type": "Hostname", "address": "n1"}
        ])
    );
}

#[test]
fn added_values_never_keep_directives() {
    let obj = json!({"metadata": {"name": "x"}, "spec": {}});
    let patched = smp(
        &obj,
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"name":"a","image":"i","env":[{"name":"Z","$patch":"delete"}],"resources":{"limits":null}}],"volumes":[{"$retainKeys":["name","emptyDir"],"name":"v","emptyDir":{}}]}}}}"#,
    );
    assert_eq!(
        patched["spec"]["template"],
        json!({"spec": {
            "containers": [{"name": "a", "image": "i", "env": [], "resources": {}}],
            "volumes": [{"name": "v", "emptyDir": {}}]
        }})
    );
    assert_no_directives(&patched);
}

/// A map added whole keeps its keys and their values, less nulls and children that delete
/// themselves, at every depth; lists inside it still merge by their strategy.
#[test]
fn added_maps_drop_their_nulls_and_deleted_children() {
    let obj = json!({"metadata": {"name": "x"}, "status": {"phase": "Pending"}});
    let patched = smp(
        &obj,
        r#"{"status":{"phase":"Running","hostIP":null,"containerStatuses":[{"name":"a","ready":true,"state":{"running":{"startedAt":"t"},"waiting":null},"lastState":{"$patch":"delete"}}],"podIPs":[{"ip":"10.0.0.1"},{"ip":"10.0.0.1"}],"extra":{"keep":{"deep":[1,1,2]},"drop":null,"gone":{"$patch":"delete"}}}}"#,
    );
    assert_eq!(
        patched["status"],
        json!({
            "phase": "Running",
            "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {"startedAt": "t"}}}],
            "podIPs": [{"ip": "10.0.0.1"}],
            "extra": {"keep": {"deep": [1, 1, 2]}}
        })
    );
    assert_no_directives(&patched);
}

#[test]
fn lists_of_lists_are_unprocessable() {
    let obj = json!({"metadata": {"finalizers": ["a"]}});
    let err = strategic_merge(&obj, json!({"metadata": {"finalizers": [["b"]]}}))
        .expect_err("list of lists");
    assert_eq!(err.code(), 422);
    assert_eq!(err.reason(), "Invalid");
    assert_eq!(
        err.status_message(),
        "the server rejected our request due to an error in our request"
    );
}

#[test]
fn json_patch_operations() {
    let ds = daemon_set();
    let patched = json_patch(
        &ds,
        r#"[
            {"op":"test","path":"/spec/template/spec/containers/0/name","value":"fluentd"},
            {"op":"replace","path":"/spec/template/spec/containers/0/image","value":"fluentd:v2"},
            {"op":"add","path":"/metadata/labels/tier","value":"node"},
            {"op":"remove","path":"/spec/template/spec/tolerations"},
            {"op":"add","path":"/spec/template/spec/containers/-","value":{"name":"third","image":"x"}}
        ]"#,
    )
    .expect("json patch applies");
    assert_eq!(
        template_spec(&patched)["containers"][0]["image"],
        "fluentd:v2"
    );
    assert_eq!(patched["metadata"]["labels"]["tier"], "node");
    assert!(template_spec(&patched).get("tolerations").is_none());
    assert_eq!(template_spec(&patched)["containers"][2]["name"], "third");

    // SSA's follow-up replaces managedFields and resourceVersion.
    let patched = json_patch(
        &ds,
        r#"[{"op":"replace","path":"/metadata/resourceVersion","value":"8"}]"#,
    )
    .expect("replace applies");
    assert_eq!(patched["metadata"]["resourceVersion"], "8");
}

#[test]
fn json_patch_failures_are_422() {
    let ds = daemon_set();
    let err = json_patch(
        &ds,
        r#"[{"op":"test","path":"/metadata/name","value":"other"},{"op":"remove","path":"/spec"}]"#,
    )
    .expect_err("test fails");
    assert!(matches!(err, PatchError::JsonPatchFailed(_)), "{err:?}");
    assert_eq!((err.code(), err.reason()), (422, "Invalid"));
    assert_eq!(
        err.status_message(),
        "the server rejected our request due to an error in our request"
    );
    let err = json_patch(&ds, r#"[{"op":"remove","path":"/spec/nope"}]"#).expect_err("missing");
    assert_eq!(err.code(), 422);
    let err = json_patch(&ds, r#"[{"op":"replace","path":"/a/b/c","value":1}]"#)
        .expect_err("missing parent");
    assert_eq!(err.code(), 422);
}

#[test]
fn json_patch_with_too_many_operations_is_413() {
    let ops: Vec<Value> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "/kind", "value": "DaemonSet"}))
        .collect();
    let body = serde_json::to_vec(&ops).expect("serialize");
    let err = apply(PatchType::Json, &daemon_set(), &body).expect_err("too many");
    assert_eq!(err.code(), 413);
    assert_eq!(
        err.status_message(),
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

#[test]
fn malformed_patches_are_400() {
    let ds = daemon_set();
    let cases: &[(PatchType, &str)] = &[
        (PatchType::StrategicMerge, "{"),
        (PatchType::StrategicMerge, "[]"),
        (PatchType::StrategicMerge, r#""spec""#),
        (PatchType::Merge, "{"),
        (PatchType::Merge, "null"),
        (PatchType::Merge, "[1]"),
        (PatchType::Json, "{}"),
        (PatchType::Json, "not json"),
        (PatchType::Json, r#"[{"op":"frobnicate","path":"/a"}]"#),
        (PatchType::Json, r#"[{"op":"add","value":1}]"#),
    ];
    for (ty, body) in cases {
        let err = apply(*ty, &ds, body.as_bytes()).expect_err(body);
        assert!(
            matches!(err, PatchError::Malformed(_)),
            "{ty:?} {body}: {err:?}"
        );
        assert_eq!((err.code(), err.reason()), (400, "BadRequest"), "{body}");
    }
    let err = apply(PatchType::StrategicMerge, &ds, b"[]").expect_err("array");
    assert_eq!(
        err.to_string(),
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    let err = apply(PatchType::Merge, &ds, b"{").expect_err("syntax");
    assert_eq!(err.to_string(), "Invalid JSON Patch");
    // Malformed directives are 400 too.
    let err = apply(
        PatchType::StrategicMerge,
        &ds,
        br#"{"spec":{"$setElementOrder/x":{"a":1}}}"#,
    )
    .expect_err("bad order list");
    assert_eq!(
        err.to_string(),
        "invalid patch format of setElementOrder list"
    );
    assert_eq!(err.code(), 400);
}

#[test]
fn no_op_patches_return_an_equal_object() {
    let ds = daemon_set();
    for (ty, body) in [
        (PatchType::StrategicMerge, "{}"),
        (PatchType::StrategicMerge, "null"),
        (
            PatchType::StrategicMerge,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"fluentd"},{"name":"sidecar"}],"containers":[{"name":"fluentd","image":"fluentd:v1.16"}]}}}}"#,
        ),
        (
            PatchType::StrategicMerge,
            r#"{"metadata":{"labels":{"app":"fluentd","gone":null}}}"#,
        ),
        (
            PatchType::StrategicMerge,
            r#"{"spec":{"template":{"spec":{"containers":[]}}}}"#,
        ),
        (PatchType::Merge, "{}"),
        (PatchType::Merge, r#"{"metadata":{"labels":{"nope":null}}}"#),
        (PatchType::Json, "[]"),
        (
            PatchType::Json,
            r#"[{"op":"test","path":"/metadata/name","value":"fluentd"}]"#,
        ),
    ] {
        let patched = apply(ty, &ds, body.as_bytes()).expect(body);
        assert_eq!(patched, ds, "{ty:?} {body}");
    }
}

#[test]
fn patch_types_from_content_types() {
    assert_eq!(
        PatchType::from_content_type("application/strategic-merge-patch+json"),
        Some(PatchType::StrategicMerge)
    );
    assert_eq!(
        PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
        Some(PatchType::Merge)
    );
    assert_eq!(
        PatchType::from_content_type(" Application/JSON-Patch+JSON "),
        Some(PatchType::Json)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+yaml"),
        None
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
    for ty in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
        assert_eq!(PatchType::from_content_type(ty.content_type()), Some(ty));
    }
}

#[test]
fn a_parsed_patch_applies_as_its_bytes_do() {
    let original = json!({"status": {"phase": "Pending", "conditions": [
        {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}});
    let body =
        r#"{"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}"#;
    let parsed: Value = serde_json::from_str(body).expect("patch JSON");
    for patch_type in [PatchType::StrategicMerge, PatchType::Merge] {
        assert_eq!(
            pernode_patch::apply_parsed(patch_type, &original, parsed.clone()),
            apply(patch_type, &original, body.as_bytes()),
            "{patch_type:?}"
        );
    }
    assert_eq!(
        pernode_patch::apply_parsed(PatchType::Merge, &original, json!([1])),
        Err(PatchError::Malformed("Invalid JSON Patch".to_string()))
    );
    assert!(matches!(
        pernode_patch::apply_parsed(PatchType::Json, &original, json!([])),
        Err(PatchError::Malformed(_))
    ));
}
