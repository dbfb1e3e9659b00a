//! One test per column rule of upstream's printers, plus the exact JSON shape kubectl
//! decodes (wire contract §2.5).

use k8s_openapi::jiff::Timestamp;
use pernode_printers::{IncludeObject, PrintError, column_definitions, row, table};
use serde_json::{Value, json};

const NOW: &str = "2025-01-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("valid test timestamp")
}

/// `NOW` minus `secs` seconds, as a Kubernetes timestamp string.
fn ago(secs: i64) -> String {
    let t = Timestamp::from_second(now().as_second() - secs).expect("in range");
    t.to_string()
}

fn cells(resource: &str, obj: &Value) -> Vec<Value> {
    let bytes = serde_json::to_vec(obj).expect("serializable");
    let r = row(resource, &bytes, IncludeObject::None, now()).expect("row renders");
    r["cells"].as_array().expect("cells array").clone()
}

fn named(resource: &str, obj: &Value) -> Value {
    let names: Vec<String> = column_definitions(resource)
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect();
    let cells = cells(resource, obj);
    assert_eq!(
        names.len(),
        cells.len(),
        "one cell per column for {resource}"
    );
    Value::Object(names.into_iter().zip(cells).collect())
}

fn pod(status: Value) -> Value {
    json!({
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(600)},
        "spec": {"containers": [{"name": "a", "image": "busybox"}], "nodeName": "n1"},
        "status": status,
    })
}

fn pod_status(obj: &Value) -> String {
    named("pods", obj)["Status"]
        .as_str()
        .expect("string")
        .to_owned()
}

fn waiting(reason: &str) -> Value {
    json!({"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason}}})
}

#[test]
fn pod_running_ready_counts_and_age() {
    let p = pod(json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}],
    }));
    let c = named("pods", &p);
    assert_eq!(c["Name"], "p");
    assert_eq!(c["Ready"], "1/1");
    assert_eq!(c["Status"], "Running");
    assert_eq!(c["Restarts"], "0");
    assert_eq!(c["Age"], "10m");
}

#[test]
fn pod_status_phase_and_reason() {
    assert_eq!(pod_status(&pod(json!({"phase": "Pending"}))), "Pending");
    assert_eq!(
        pod_status(&pod(json!({"phase": "Failed", "reason": "Evicted"}))),
        "Evicted"
    );
    assert_eq!(pod_status(&pod(json!({}))), "");
}

#[test]
fn pod_status_container_waiting_reasons() {
    for reason in [
        "ErrImagePull",
        "ImagePullBackOff",
        "CrashLoopBackOff",
        "ContainerCreating",
    ] {
        let p = pod(json!({"phase": "Pending", "containerStatuses": [waiting(reason)]}));
        assert_eq!(pod_status(&p), reason);
    }
}

#[test]
fn pod_status_first_container_wins() {
    let p = pod(json!({"phase": "Running", "containerStatuses": [
        waiting("CrashLoopBackOff"),
        waiting("ImagePullBackOff"),
    ]}));
    assert_eq!(pod_status(&p), "CrashLoopBackOff");
}

#[test]
fn pod_status_terminated_reasons() {
    let term = |t: Value| {
        pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": t}}
        ]}))
    };
    assert_eq!(
        pod_status(&term(json!({"reason": "Completed", "exitCode": 0}))),
        "Completed"
    );
    assert_eq!(
        pod_status(&term(json!({"reason": "OOMKilled", "exitCode": 137}))),
        "OOMKilled"
    );
    assert_eq!(pod_status(&term(json!({"exitCode": 3}))), "ExitCode:3");
    assert_eq!(
        pod_status(&term(json!({"exitCode": 0, "signal": 9}))),
        "Signal:9"
    );
}

#[test]
fn pod_status_completed_with_running_sibling() {
    let statuses = json!([
        {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
        {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}},
    ]);
    let ready = pod(json!({"phase": "Running", "containerStatuses": statuses,
        "conditions": [{"type": "Ready", "status": "True"}]}));
    assert_eq!(pod_status(&ready), "Running");
    let not_ready = pod(json!({"phase": "Running", "containerStatuses": statuses}));
    assert_eq!(pod_status(&not_ready), "NotReady");
}

#[test]
fn pod_status_init_containers() {
    let with_init = |statuses: Value, extra_conditions: Value| {
        let mut p = pod(
            json!({"phase": "Pending", "initContainerStatuses": statuses,
            "conditions": extra_conditions,
            "containerStatuses": [waiting("PodInitializing")]}),
        );
        p["spec"]["initContainers"] = json!([{"name": "i1"}, {"name": "i2"}]);
        p
    };
    let init_waiting = |reason: &str| json!({"name": "i1", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason}}});
    assert_eq!(
        pod_status(&with_init(
            json!([init_waiting("PodInitializing")]),
            json!([])
        )),
        "Init:0/2"
    );
    assert_eq!(
        pod_status(&with_init(
            json!([init_waiting("CrashLoopBackOff")]),
            json!([])
        )),
        "Init:CrashLoopBackOff"
    );
    let done = json!({"name": "i1", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let running =
        json!({"name": "i2", "ready": false, "restartCount": 0, "state": {"running": {}}});
    assert_eq!(
        pod_status(&with_init(json!([done, running]), json!([]))),
        "Init:1/2"
    );
    let failed = json!({"name": "i1", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}});
    assert_eq!(
        pod_status(&with_init(json!([failed]), json!([]))),
        "Init:Error"
    );
    let failed_bare = json!({"name": "i1", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 3}}});
    assert_eq!(
        pod_status(&with_init(json!([failed_bare]), json!([]))),
        "Init:ExitCode:3"
    );
    let signalled = json!({"name": "i1", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 1, "signal": 15}}});
    assert_eq!(
        pod_status(&with_init(json!([signalled]), json!([]))),
        "Init:Signal:15"
    );
    // Once Initialized is true the regular containers decide, even if an init status lags.
    let initialized = json!([{"type": "Initialized", "status": "True"}]);
    assert_eq!(
        pod_status(&with_init(
            json!([init_waiting("CrashLoopBackOff")]),
            initialized
        )),
        "PodInitializing"
    );
}

#[test]
fn pod_sidecar_counts_as_container() {
    let mut p = pod(json!({"phase": "Running",
        "initContainerStatuses": [{"name": "side", "ready": true, "started": true, "restartCount": 1,
            "state": {"running": {}}}],
        "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}]}));
    p["spec"]["initContainers"] = json!([{"name": "side", "restartPolicy": "Always"}]);
    let c = named("pods", &p);
    assert_eq!(c["Ready"], "2/2");
    assert_eq!(c["Status"], "Running");
    assert_eq!(c["Restarts"], "1");
}

#[test]
fn pod_status_scheduling_gated() {
    let p = pod(json!({"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}));
    assert_eq!(pod_status(&p), "SchedulingGated");
    assert_eq!(named("pods", &p)["Ready"], "0/1");
}

#[test]
fn pod_status_deleting() {
    let deleting = |status: Value| {
        let mut p = pod(status);
        p["metadata"]["deletionTimestamp"] = json!(ago(5));
        p
    };
    assert_eq!(
        pod_status(&deleting(json!({"phase": "Running"}))),
        "Terminating"
    );
    assert_eq!(
        pod_status(&deleting(json!({"phase": "Running", "reason": "NodeLost"}))),
        "Unknown"
    );
    // Terminal pods keep their final status while being deleted.
    let done = deleting(json!({"phase": "Succeeded", "containerStatuses": [
        {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}
    ]}));
    assert_eq!(pod_status(&done), "Completed");
    // Without a deletion, the node lifecycle controller's reason shows as it is.
    assert_eq!(
        pod_status(&pod(json!({"phase": "Running", "reason": "NodeLost"}))),
        "NodeLost"
    );
}

#[test]
fn pod_restarts_with_last_restart_ago() {
    let p = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}}
    ]}));
    assert_eq!(named("pods", &p)["Restarts"], "2 (5m ago)");

    // Without a termination time upstream prints the bare count.
    let p = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}}
    ]}));
    assert_eq!(named("pods", &p)["Restarts"], "2");

    // Several containers: the sum, and the latest restart.
    let p = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(3600)}}},
        {"name": "b", "ready": true, "restartCount": 3, "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(45)}}}
    ]}));
    assert_eq!(named("pods", &p)["Restarts"], "4 (45s ago)");
}

#[test]
fn pod_wide_columns() {
    let p = pod(json!({"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}], "podIP": "10.0.0.7"}));
    let c = named("pods", &p);
    assert_eq!(c["IP"], "10.0.0.7");
    assert_eq!(c["Node"], "n1");
    assert_eq!(c["Nominated Node"], "<none>");
    assert_eq!(c["Readiness Gates"], "<none>");

    let mut p = pod(
        json!({"phase": "Pending", "podIP": "10.0.0.8", "nominatedNodeName": "n2",
        "conditions": [{"type": "example.com/a", "status": "True"}, {"type": "example.com/b", "status": "False"}]}),
    );
    p["spec"]["nodeName"] = json!(null);
    p["spec"]["readinessGates"] =
        json!([{"conditionType": "example.com/a"}, {"conditionType": "example.com/b"}]);
    let c = named("pods", &p);
    assert_eq!(c["IP"], "10.0.0.8");
    assert_eq!(c["Node"], "<none>");
    assert_eq!(c["Nominated Node"], "n2");
    assert_eq!(c["Readiness Gates"], "1/2");

    assert_eq!(named("pods", &pod(json!({})))["IP"], "<none>");
}

#[test]
fn pod_row_conditions_for_finished_pods() {
    let bytes = serde_json::to_vec(&pod(json!({"phase": "Succeeded"}))).expect("json");
    let r = row("pods", &bytes, IncludeObject::None, now()).expect("row");
    assert_eq!(
        r["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );
    let bytes = serde_json::to_vec(&pod(json!({"phase": "Running"}))).expect("json");
    let r = row("pods", &bytes, IncludeObject::None, now()).expect("row");
    assert!(r.get("conditions").is_none());
}

fn node(labels: Value, unschedulable: bool, conditions: Value) -> Value {
    json!({
        "metadata": {"name": "n1", "labels": labels, "creationTimestamp": ago(3 * 86400 + 7200)},
        "spec": {"unschedulable": unschedulable},
        "status": {
            "conditions": conditions,
            "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.0"},
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "192.168.0.10"}],
        },
    })
}

#[test]
fn node_status_ready_notready_unknown_and_cordoned() {
    let ready =
        json!([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]);
    assert_eq!(
        named("nodes", &node(json!({}), false, ready.clone()))["Status"],
        "Ready"
    );
    assert_eq!(
        named("nodes", &node(json!({}), true, ready))["Status"],
        "Ready,SchedulingDisabled"
    );
    let not_ready = json!([{"type": "Ready", "status": "False"}]);
    assert_eq!(
        named("nodes", &node(json!({}), false, not_ready))["Status"],
        "NotReady"
    );
    let lost = json!([{"type": "Ready", "status": "Unknown"}]);
    assert_eq!(
        named("nodes", &node(json!({}), false, lost))["Status"],
        "NotReady"
    );
    assert_eq!(
        named("nodes", &node(json!({}), false, json!([])))["Status"],
        "Unknown"
    );
    assert_eq!(
        named("nodes", &node(json!({}), true, json!([])))["Status"],
        "Unknown,SchedulingDisabled"
    );
}

#[test]
fn node_roles() {
    let roles = |labels: Value| named("nodes", &node(labels, false, json!([])))["Roles"].clone();
    assert_eq!(roles(json!({})), "<none>");
    assert_eq!(roles(json!({"disk": "ssd"})), "<none>");
    assert_eq!(
        roles(
            json!({"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": ""})
        ),
        "control-plane,worker"
    );
    assert_eq!(roles(json!({"kubernetes.io/role": "master"})), "master");
    assert_eq!(
        roles(json!({"kubernetes.io/role": "master", "node-role.kubernetes.io/master": ""})),
        "master"
    );
    // An empty role name or value is no role.
    assert_eq!(
        roles(json!({"node-role.kubernetes.io/": "", "kubernetes.io/role": ""})),
        "<none>"
    );
}

#[test]
fn node_version_age_and_wide_columns() {
    let c = named("nodes", &node(json!({}), false, json!([])));
    assert_eq!(c["Age"], "3d2h");
    assert_eq!(c["Version"], "v1.32.4");
    assert_eq!(c["Internal-IP"], "192.168.0.10");
    assert_eq!(c["External-IP"], "<none>");
    assert_eq!(c["OS-Image"], "Debian GNU/Linux 12 (bookworm)");
    assert_eq!(c["Kernel-Version"], "6.1.0");
    assert_eq!(c["Container-Runtime"], "containerd://1.7.0");

    let bare = json!({"metadata": {"name": "n2"}});
    let c = named("nodes", &bare);
    assert_eq!(c["Age"], "<unknown>");
    assert_eq!(c["Version"], "");
    assert_eq!(c["Internal-IP"], "<none>");
    assert_eq!(c["OS-Image"], "<unknown>");
    assert_eq!(c["Kernel-Version"], "<unknown>");
    assert_eq!(c["Container-Runtime"], "<unknown>");
}

fn daemonset(node_selector: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "fluentd", "namespace": "default", "labels": {"app": "fluentd"},
                     "creationTimestamp": ago(300)},
        "spec": {
            "selector": {"matchLabels": {"name": "fluentd"}},
            "template": {"metadata": {"labels": {"name": "fluentd"}}, "spec": {
                "nodeSelector": node_selector,
                "containers": [{"name": "fluentd", "image": "fluentd:v1.16"},
                               {"name": "sidecar", "image": "busybox:1.36"}],
            }},
        },
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                   "updatedNumberScheduled": 1, "numberAvailable": 2, "numberMisscheduled": 0},
    })
}

#[test]
fn daemonset_counts_and_node_selector() {
    let c = named("daemonsets", &daemonset(json!({"disk": "ssd"})));
    assert_eq!(c["Name"], "fluentd");
    assert_eq!(c["Desired"], 3);
    assert_eq!(c["Current"], 3);
    assert_eq!(c["Ready"], 2);
    assert_eq!(c["Up-to-date"], 1);
    assert_eq!(c["Available"], 2);
    assert_eq!(c["Node Selector"], "disk=ssd");
    assert_eq!(c["Age"], "5m");

    assert_eq!(
        named("daemonsets", &daemonset(json!(null)))["Node Selector"],
        "<none>"
    );
    assert_eq!(
        named("daemonsets", &daemonset(json!({})))["Node Selector"],
        "<none>"
    );
    assert_eq!(
        named(
            "daemonsets",
            &daemonset(json!({"zone": "a", "disk": "ssd"}))
        )["Node Selector"],
        "disk=ssd,zone=a"
    );
    // A fresh DaemonSet has no status yet: all zeros.
    let mut fresh = daemonset(json!({}));
    fresh.as_object_mut().expect("object").remove("status");
    assert_eq!(named("daemonsets", &fresh)["Desired"], 0);
}

#[test]
fn daemonset_wide_columns() {
    let c = named("daemonsets", &daemonset(json!({})));
    assert_eq!(c["Containers"], "fluentd,sidecar");
    assert_eq!(c["Images"], "fluentd:v1.16,busybox:1.36");
    assert_eq!(c["Selector"], "name=fluentd");
    let mut no_sel = daemonset(json!({}));
    no_sel["spec"]["selector"] = json!(null);
    assert_eq!(named("daemonsets", &no_sel)["Selector"], "<none>");
}

fn revision(owner_refs: Value) -> Value {
    json!({
        "metadata": {"name": "fluentd-5d8f7c9b6", "namespace": "default",
                     "ownerReferences": owner_refs, "creationTimestamp": ago(90)},
        "data": {"spec": {"template": {"$patch": "replace"}}},
        "revision": 2,
    })
}

#[test]
fn controller_revision_controller_column() {
    let ds_ref = json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd",
                         "uid": "u1", "controller": true, "blockOwnerDeletion": true}]);
    let c = named("controllerrevisions", &revision(ds_ref));
    assert_eq!(c["Name"], "fluentd-5d8f7c9b6");
    assert_eq!(c["Controller"], "daemonset.apps/fluentd");
    assert_eq!(c["Revision"], 2);
    assert_eq!(c["Age"], "90s");

    assert_eq!(
        named("controllerrevisions", &revision(json!(null)))["Controller"],
        "<none>"
    );
    // Only the controller reference counts.
    let not_controller =
        json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "x", "uid": "u"}]);
    assert_eq!(
        named("controllerrevisions", &revision(not_controller))["Controller"],
        "<none>"
    );
    // Core-group owners have no group suffix.
    let core =
        json!([{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controller": true}]);
    assert_eq!(
        named("controllerrevisions", &revision(core))["Controller"],
        "pod/p"
    );
}

#[test]
fn controller_revision_bad_owner_api_version_is_an_error() {
    let bad = json!([{"apiVersion": "a/b/c", "kind": "DaemonSet", "name": "x", "uid": "u", "controller": true}]);
    let bytes = serde_json::to_vec(&revision(bad)).expect("json");
    let err = row("controllerrevisions", &bytes, IncludeObject::None, now()).expect_err("invalid");
    assert!(matches!(err, PrintError::Invalid { .. }), "{err}");
}

fn event(extra: Value) -> Value {
    let mut e = json!({
        "metadata": {"name": "fluentd.17a", "namespace": "default"},
        "involvedObject": {"kind": "DaemonSet", "name": "fluentd", "namespace": "default",
                           "apiVersion": "apps/v1"},
        "reason": "SuccessfulCreate",
        "message": "Created pod: fluentd-abcde\n",
        "source": {"component": "daemonset-controller"},
        "type": "Normal",
    });
    for (k, v) in extra.as_object().expect("object") {
        e[k] = v.clone();
    }
    e
}

#[test]
fn event_columns_in_upstream_order() {
    let e = event(json!({"firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 4}));
    let cells = cells("events", &e);
    assert_eq!(
        cells,
        vec![
            json!("30s"),
            json!("Normal"),
            json!("SuccessfulCreate"),
            json!("daemonset/fluentd"),
            json!(""),
            json!("daemonset-controller"),
            json!("Created pod: fluentd-abcde"),
            json!("10m"),
            json!(4),
            json!("fluentd.17a"),
        ]
    );
}

#[test]
fn event_object_column() {
    let c = named("events", &event(json!({})));
    assert_eq!(c["Object"], "daemonset/fluentd");
    let c = named(
        "events",
        &event(json!({"involvedObject": {"kind": "Node", "name": "n1", "fieldPath": "spec"}})),
    );
    assert_eq!(c["Object"], "node/n1");
    assert_eq!(c["Subobject"], "spec");
    let c = named(
        "events",
        &event(json!({"involvedObject": {"kind": "Namespace"}})),
    );
    assert_eq!(c["Object"], "namespace");
}

#[test]
fn event_times_count_and_source_fallbacks() {
    // No timestamps at all.
    let c = named("events", &event(json!({})));
    assert_eq!(c["Last Seen"], "<unknown>");
    assert_eq!(c["First Seen"], "<unknown>");
    assert_eq!(c["Count"], 1);
    // Only firstTimestamp: last seen falls back to it.
    let c = named("events", &event(json!({"firstTimestamp": ago(120)})));
    assert_eq!(c["Last Seen"], "2m");
    assert_eq!(c["First Seen"], "2m");
    // events.k8s.io style: eventTime, series and reporting fields.
    let c = named(
        "events",
        &event(json!({
            "source": null,
            "eventTime": "2025-01-01T11:50:00.000000Z",
            "series": {"count": 7, "lastObservedTime": "2025-01-01T11:59:00.000000Z"},
            "reportingComponent": "kubelet", "reportingInstance": "n1",
        })),
    );
    assert_eq!(c["First Seen"], "10m");
    assert_eq!(c["Last Seen"], "60s");
    assert_eq!(c["Count"], 7);
    assert_eq!(c["Source"], "kubelet, n1");
    let c = named(
        "events",
        &event(json!({"source": {"component": "kubelet", "host": "n2"}})),
    );
    assert_eq!(c["Source"], "kubelet, n2");
}

#[test]
fn events_k8s_io_events_print_as_core_ones() {
    // The same event in its events.k8s.io/v1 form: upstream prints both from the internal
    // Event, so the cells are the same.
    let core = event(
        json!({"firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 4,
        "reportingComponent": "ctl", "reportingInstance": "i"}),
    );
    let v1 = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "fluentd.17a", "namespace": "default"},
        "regarding": {"kind": "DaemonSet", "name": "fluentd", "namespace": "default",
                      "apiVersion": "apps/v1"},
        "reason": "SuccessfulCreate",
        "note": "Created pod: fluentd-abcde\n",
        "deprecatedSource": {"component": "daemonset-controller"},
        "deprecatedFirstTimestamp": ago(600), "deprecatedLastTimestamp": ago(30),
        "deprecatedCount": 4, "reportingController": "ctl", "reportingInstance": "i",
        "type": "Normal",
    });
    assert_eq!(cells("events", &v1), cells("events", &core));
}

#[test]
fn namespace_and_lease_columns() {
    let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(7200)},
                    "status": {"phase": "Active"}});
    assert_eq!(
        cells("namespaces", &ns),
        vec![json!("kube-system"), json!("Active"), json!("120m")]
    );

    let ns = json!({"metadata": {"name": "gone", "deletionTimestamp": ago(1)},
                    "status": {"phase": "Terminating"}});
    assert_eq!(named("namespaces", &ns)["Status"], "Terminating");

    let lease = json!({"metadata": {"name": "n1", "namespace": "kube-node-lease", "creationTimestamp": ago(30)},
                       "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}});
    assert_eq!(
        cells("leases", &lease),
        vec![json!("n1"), json!("n1"), json!("30s")]
    );
    let lease = json!({"metadata": {"name": "free"}, "spec": {}});
    assert_eq!(named("leases", &lease)["Holder"], "");
}

fn render(resource: &str, objs: &[Value], include: IncludeObject) -> Value {
    let bytes: Vec<Vec<u8>> = objs
        .iter()
        .map(|o| serde_json::to_vec(o).expect("json"))
        .collect();
    let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let out = table(resource, &slices, include, now(), "1032", None).expect("table renders");
    serde_json::from_slice(&out).expect("table is valid JSON")
}

#[test]
fn row_object_metadata_is_partial_object_metadata() {
    let ds = daemonset(json!({"disk": "ssd"}));
    let t = render(
        "daemonsets",
        std::slice::from_ref(&ds),
        IncludeObject::Metadata,
    );
    let obj = &t["rows"][0]["object"];
    assert_eq!(
        obj,
        &json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": ds["metadata"]})
    );
    assert_eq!(obj["metadata"]["labels"]["app"], "fluentd");
    assert_eq!(obj["metadata"]["namespace"], "default");
    assert_eq!(IncludeObject::from_query(None), IncludeObject::Metadata);
    assert_eq!(
        IncludeObject::from_query(Some("Metadata")),
        IncludeObject::Metadata
    );
}

#[test]
fn row_object_full_object_with_type_meta() {
    // Stored with kind/apiVersion: copied as is.
    let ds = daemonset(json!({}));
    let t = render(
        "daemonsets",
        std::slice::from_ref(&ds),
        IncludeObject::from_query(Some("Object")),
    );
    assert_eq!(t["rows"][0]["object"], ds);

    // Stored without them: they are added.
    let p = pod(json!({"phase": "Running"}));
    let t = render("pods", std::slice::from_ref(&p), IncludeObject::Object);
    let mut expected = p.clone();
    expected["kind"] = json!("Pod");
    expected["apiVersion"] = json!("v1");
    assert_eq!(t["rows"][0]["object"], expected);

    // Only one missing, and an empty object.
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "metadata": {"name": "l"}});
    let t = render(
        "leases",
        std::slice::from_ref(&lease),
        IncludeObject::Object,
    );
    assert_eq!(t["rows"][0]["object"]["kind"], "Lease");
    assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "l");
    let out = table(
        "namespaces",
        &[b" { } "],
        IncludeObject::Object,
        now(),
        "",
        None,
    )
    .expect("renders");
    let t: Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "Namespace", "apiVersion": "v1"})
    );
}

#[test]
fn row_object_none_is_omitted() {
    let t = render(
        "pods",
        &[pod(json!({}))],
        IncludeObject::from_query(Some("None")),
    );
    let row = t["rows"][0].as_object().expect("row object");
    assert!(!row.contains_key("object"));
    assert_eq!(row.keys().collect::<Vec<_>>(), vec!["cells"]);
}

/// Every resource, with the shapes kubectl decodes (§2.5).
#[test]
fn table_json_shape_is_what_kubectl_decodes() {
    let samples: Vec<(&str, Value)> = vec![
        ("pods", pod(json!({"phase": "Running"}))),
        ("nodes", node(json!({}), false, json!([]))),
        (
            "namespaces",
            json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}}),
        ),
        ("events", event(json!({"count": 2}))),
        ("daemonsets", daemonset(json!({}))),
        ("controllerrevisions", revision(json!(null))),
        (
            "leases",
            json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "h"}}),
        ),
    ];
    for (resource, obj) in samples {
        let bytes = serde_json::to_vec(&obj).expect("json");
        let out = table(
            resource,
            &[&bytes],
            IncludeObject::Metadata,
            now(),
            "1032",
            Some("tok"),
        )
        .expect("table renders");
        let t: Value = serde_json::from_slice(&out).expect("valid JSON");
        let top: Vec<&String> = t.as_object().expect("object").keys().collect();
        assert_eq!(top.len(), 5, "{resource}: {top:?}");
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "1032", "continue": "tok"})
        );

        let cols = t["columnDefinitions"].as_array().expect("columns");
        assert_eq!(cols, &column_definitions(resource));
        for c in cols {
            let keys: Vec<&String> = c.as_object().expect("column object").keys().collect();
            assert_eq!(keys.len(), 5, "{resource}: {c}");
            assert!(
                c["name"].is_string() && c["format"].is_string() && c["description"].is_string()
            );
            assert!(matches!(c["type"].as_str(), Some("string" | "integer")));
            assert!(matches!(c["priority"].as_i64(), Some(0 | 1)));
        }
        let name_cols: Vec<&Value> = cols.iter().filter(|c| c["format"] == "name").collect();
        assert_eq!(name_cols.len(), 1, "{resource}: exactly one name column");
        if resource != "events" {
            assert_eq!(cols[0]["name"], "Name");
            assert_eq!(cols[0]["format"], "name");
            assert_eq!(cols[0]["priority"], 0);
        }

        let rows = t["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 1);
        let cells = rows[0]["cells"].as_array().expect("cells");
        assert_eq!(
            cells.len(),
            cols.len(),
            "{resource}: a cell for every column, wide ones too"
        );
        for (cell, col) in cells.iter().zip(cols) {
            // Upstream's two quirks: declared string, sent as integers.
            let quirk = matches!(
                (resource, col["name"].as_str()),
                ("events", Some("Count")) | ("controllerrevisions", Some("Revision"))
            );
            match (col["type"].as_str(), quirk) {
                (Some("integer"), _) | (_, true) => {
                    assert!(cell.is_i64(), "{resource} {col}: {cell}")
                }
                _ => assert!(cell.is_string(), "{resource} {col}: {cell}"),
            }
        }
        let object = &rows[0]["object"];
        assert_eq!(object["kind"], "PartialObjectMetadata");
        assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(object["metadata"], obj["metadata"]);
    }
}

#[test]
fn table_metadata_and_empty_rows() {
    let out = table("daemonsets", &[], IncludeObject::Metadata, now(), "", None).expect("renders");
    let t: Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(t["metadata"], json!({}));
    assert_eq!(t["rows"], json!([]));
    let out = table(
        "daemonsets",
        &[],
        IncludeObject::Metadata,
        now(),
        "",
        Some("c"),
    )
    .expect("renders");
    let t: Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(t["metadata"], json!({"continue": "c"}));
}

#[test]
fn column_names_and_priorities_match_upstream() {
    let cols = |r: &str| -> Vec<(String, i64)> {
        column_definitions(r)
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().expect("name").to_owned(),
                    c["priority"].as_i64().expect("int"),
                )
            })
            .collect()
    };
    let expect = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
        v.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    };
    assert_eq!(
        cols("daemonsets"),
        expect(&[
            ("Name", 0),
            ("Desired", 0),
            ("Current", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Node Selector", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ])
    );
    assert_eq!(
        cols("pods"),
        expect(&[
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1)
        ])
    );
    assert_eq!(
        cols("nodes"),
        expect(&[
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
            ("Internal-IP", 1),
            ("External-IP", 1),
            ("OS-Image", 1),
            ("Kernel-Version", 1),
            ("Container-Runtime", 1)
        ])
    );
    assert_eq!(
        cols("namespaces"),
        expect(&[("Name", 0), ("Status", 0), ("Age", 0)])
    );
    assert_eq!(
        cols("events"),
        expect(&[
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1)
        ])
    );
    assert_eq!(
        cols("controllerrevisions"),
        expect(&[("Name", 0), ("Controller", 0), ("Revision", 0), ("Age", 0)])
    );
    assert_eq!(
        cols("leases"),
        expect(&[("Name", 0), ("Holder", 0), ("Age", 0)])
    );
    // No printer: upstream's default Table.
    assert_eq!(
        cols("deployments"),
        expect(&[("Name", 0), ("Created At", 0)])
    );
}

#[test]
fn escaping_and_errors() {
    let p = json!({"metadata": {"name": "p"}, "status": {"phase": "Pending", "reason": "a\"b\\c\n\u{1}é"}});
    assert_eq!(pod_status(&p), "a\"b\\c\n\u{1}é");

    let err = table(
        "pods",
        &[b"{\"metadata\":{\"name\":\"a\"}}", b"{"],
        IncludeObject::None,
        now(),
        "",
        None,
    )
    .expect_err("bad JSON");
    assert!(matches!(err, PrintError::Decode { index: 1, .. }), "{err}");
    let err = table("pods", &[b"[]"], IncludeObject::None, now(), "", None).expect_err("array");
    assert!(matches!(err, PrintError::Invalid { index: 0, .. }), "{err}");
    let err = row(
        "pods",
        br#"{"status":{"containerStatuses":"x"}}"#,
        IncludeObject::None,
        now(),
    )
    .expect_err("wrong shape");
    assert!(matches!(err, PrintError::Decode { .. }), "{err}");
}

#[test]
fn roles_print_name_and_creation_time() {
    for resource in ["roles", "clusterroles"] {
        let c = named(
            resource,
            &json!({"metadata": {"name": "view", "creationTimestamp": "2024-03-04T05:06:07Z"},
                    "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        );
        assert_eq!(
            c,
            json!({"Name": "view", "Created At": "2024-03-04T05:06:07Z"})
        );
    }
}

#[test]
fn bindings_print_role_age_and_subjects() {
    for resource in ["rolebindings", "clusterrolebindings"] {
        let c = named(
            resource,
            &json!({"metadata": {"name": "b", "creationTimestamp": ago(120)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [
                {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "kube-system"},
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:unauthenticated"}
            ]}),
        );
        assert_eq!(
            c,
            json!({"Name": "b", "Role": "ClusterRole/view", "Age": "2m", "Users": "alice",
                   "Groups": "system:authenticated, system:unauthenticated",
                   "ServiceAccounts": "kube-system/sa"})
        );
    }
    let no_subjects = named(
        "clusterrolebindings",
        &json!({"metadata": {"name": "system:node", "creationTimestamp": ago(5)},
                "roleRef": {"kind": "ClusterRole", "name": "system:node"}}),
    );
    assert_eq!(no_subjects["Users"], "");
    assert_eq!(no_subjects["ServiceAccounts"], "");
}
