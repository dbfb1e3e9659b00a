//! The 10,000-pod Table: the size `kubectl get pods -A` reaches on a big fleet. Its speed is
//! measured by `pernode bench` (list scenario); this checks that every row comes out right.

use k8s_openapi::jiff::Timestamp;
use pernode_printers::{IncludeObject, table};
use serde_json::{Value, json};

/// A pod as the daemonset controller and a kubelet would leave it, managedFields included.
fn stored_pod(i: usize) -> Vec<u8> {
    let p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("fluentd-{i:05x}"), "generateName": "fluentd-", "namespace": "kube-system",
            "uid": format!("00000000-0000-0000-0000-{i:012}"), "resourceVersion": format!("{}", 1000 + i),
            "creationTimestamp": "2025-01-01T11:00:00Z",
            "labels": {"app": "fluentd", "controller-revision-hash": "5d8f7c9b6", "pod-template-generation": "1"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T10:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd",
                                 "uid": "11111111-2222-3333-4444-555555555555", "controller": true,
                                 "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "pernode-controllers", "operation": "Update", "apiVersion": "v1",
                               "time": "2025-01-01T11:00:00Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}],
        },
        "spec": {
            "nodeName": format!("node-{i:05}"),
            "containers": [{"name": "fluentd", "image": "fluentd:v1.16",
                            "resources": {"limits": {"memory": "200Mi"}, "requests": {"cpu": "100m", "memory": "200Mi"}},
                            "volumeMounts": [{"name": "varlog", "mountPath": "/var/log"}],
                            "terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent"}],
            "volumes": [{"name": "varlog", "hostPath": {"path": "/var/log", "type": ""}}],
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [format!("node-{i:05}")]}]}]}}},
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
        },
        "status": {
            "phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}], "hostIP": "192.168.0.1",
            "startTime": "2025-01-01T11:00:01Z", "qosClass": "Burstable",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"},
                           {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "fluentd", "ready": true, "started": true, "restartCount": i % 3,
                                   "image": "fluentd:v1.16", "imageID": "sha256:abc", "containerID": "containerd://x",
                                   "state": {"running": {"startedAt": "2025-01-01T11:00:02Z"}},
                                   "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                 "finishedAt": "2025-01-01T11:30:00Z"}}}],
        },
    });
    serde_json::to_vec(&p).expect("serializable")
}

#[test]
fn ten_thousand_pods_render_every_row() {
    let pods: Vec<Vec<u8>> = (0..10_000).map(stored_pod).collect();
    let slices: Vec<&[u8]> = pods.iter().map(Vec::as_slice).collect();
    let now: Timestamp = "2025-01-01T12:00:00Z".parse().expect("timestamp");

    let out = table("pods", &slices, IncludeObject::Metadata, now, "20000", None).expect("renders");

    let t: Value = serde_json::from_slice(&out).expect("valid JSON");
    let rows = t["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 10_000);
    assert_eq!(rows[1]["cells"][3], "1 (30m ago)");
    assert_eq!(rows[0]["object"]["metadata"]["labels"]["app"], "fluentd");
    assert_eq!(rows[9_999]["cells"][0], "fluentd-0270f");
}
