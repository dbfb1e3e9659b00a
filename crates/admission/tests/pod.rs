//! Pod, pod spec, node, namespace, event, lease and ControllerRevision rules.

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, PodTemplateSpec};
use pernode_admission::{FieldError, defaults, invalid_message, template_changed, validate};
use serde_json::{Value, json};

fn pod(spec: Value) -> Pod {
    let mut p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default"}, "spec": spec
    }))
    .expect("test pod decodes");
    defaults::pod(&mut p);
    p
}

fn msgs(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(|e| e.to_string()).collect()
}

fn assert_has(errs: &[FieldError], want: &str) {
    let m = msgs(errs);
    assert!(m.iter().any(|s| s == want), "want {want:?} in {m:#?}");
}

#[test]
fn valid_pod_passes() {
    let p = pod(
        json!({"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}],
        "livenessProbe": {"httpGet": {"port": 80}}, "resources": {"limits": {"cpu": "500m"}}}]}),
    );
    assert!(
        validate::pod_create(&p).is_empty(),
        "{:#?}",
        msgs(&validate::pod_create(&p))
    );
}

#[test]
fn containers_required() {
    let p = pod(json!({"containers": []}));
    assert_eq!(
        msgs(&validate::pod_create(&p)),
        vec!["spec.containers: Required value"]
    );
}

#[test]
fn container_names_and_images() {
    let p = pod(
        json!({"containers": [{"name": "C", "image": "a"}, {"name": "c2"}, {"name": "c2", "image": "b"}]}),
    );
    let errs = validate::pod_create(&p);
    assert!(msgs(&errs)[0].starts_with(
        r#"spec.containers[0].name: Invalid value: "C": a lowercase RFC 1123 label must consist of"#
    ));
    assert_has(&errs, "spec.containers[1].image: Required value");
    assert_has(&errs, r#"spec.containers[2].name: Duplicate value: "c2""#);
    assert_eq!(
        invalid_message("Pod", "", "p", &errs[1..2]),
        r#"Pod "p" is invalid: spec.containers[1].image: Required value"#
    );
}

#[test]
fn ports() {
    let p = pod(json!({"containers": [{"name": "c", "image": "a", "ports": [
        {"containerPort": 70000}, {"containerPort": 80, "protocol": "HTTP"}, {"containerPort": 81, "name": "Web"},
        {"containerPort": 82, "hostPort": 9000}, {"containerPort": 83, "hostPort": 9000}]}]}));
    let errs = validate::pod_create(&p);
    assert_has(
        &errs,
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    assert_has(
        &errs,
        r#"spec.containers[0].ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP""#,
    );
    assert_has(
        &errs,
        r#"spec.containers[0].ports[2].name: Invalid value: "Web": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
    );
    assert_has(
        &errs,
        r#"spec.containers[0].ports[4].hostPort: Duplicate value: "TCP//9000""#,
    );
}

#[test]
fn host_network_ports_default_and_must_match() {
    let p = pod(
        json!({"hostNetwork": true, "containers": [{"name": "c", "image": "a", "ports": [{"containerPort": 9100}]}]}),
    );
    assert_eq!(
        p.spec
            .as_ref()
            .and_then(|s| s.containers[0].ports.as_ref())
            .and_then(|p| p[0].host_port),
        Some(9100)
    );
    assert!(validate::pod_create(&p).is_empty());
    let p = pod(
        json!({"hostNetwork": true, "containers": [{"name": "c", "image": "a", "ports": [{"containerPort": 9100, "hostPort": 9101}]}]}),
    );
    assert_eq!(
        msgs(&validate::pod_create(&p)),
        vec![
            "spec.containers[0].ports[0].hostPort: Invalid value: 9101: must match `containerPort` when `hostNetwork` is true"
        ]
    );
}

#[test]
fn resources() {
    let p = pod(
        json!({"containers": [{"name": "c", "image": "a", "resources": {
        "requests": {"cpu": "2", "memory": "1x", "gpu": "1"}, "limits": {"cpu": "1"}}}]}),
    );
    let errs = validate::pod_create(&p);
    assert_has(
        &errs,
        r#"spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1"#,
    );
    assert_has(
        &errs,
        r#"spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource for containers"#,
    );
    assert_has(
        &errs,
        r#"spec.containers[0].resources.requests[memory]: Invalid value: "1x": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"#,
    );
    let p = pod(
        json!({"containers": [{"name": "c", "image": "a", "resources": {"requests": {"memory": "-1Mi"}}}]}),
    );
    assert_eq!(
        msgs(&validate::pod_create(&p)),
        vec![
            r#"spec.containers[0].resources.requests[memory]: Invalid value: "-1Mi": must be greater than or equal to 0"#
        ]
    );
    let p = pod(
        json!({"containers": [{"name": "c", "image": "a", "resources": {"limits": {"example.com/dev": "1500m"}}}]}),
    );
    assert_eq!(
        msgs(&validate::pod_create(&p)),
        vec![
            r#"spec.containers[0].resources.limits[example.com/dev]: Invalid value: "1500m": must be an integer"#,
            r#"spec.containers[0].resources.requests[example.com/dev]: Invalid value: "1500m": must be an integer"#,
        ]
    );
}

#[test]
fn probes() {
    let p = pod(json!({"containers": [{"name": "c", "image": "a",
        "livenessProbe": {"successThreshold": 2, "exec": {"command": ["true"]}},
        "readinessProbe": {"httpGet": {"port": 0}, "tcpSocket": {"port": 80}},
        "startupProbe": {"initialDelaySeconds": -1, "tcpSocket": {"port": "http"}}}]}));
    let errs = validate::pod_create(&p);
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            "spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type",
            "spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.containers[0].startupProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0",
        ]
    );
    let p = pod(
        json!({"containers": [{"name": "c", "image": "a", "livenessProbe": {"periodSeconds": 5}}]}),
    );
    assert_eq!(
        msgs(&validate::pod_create(&p)),
        vec!["spec.containers[0].livenessProbe: Required value: must specify a handler type"]
    );
}

#[test]
fn volumes_and_mounts() {
    let p = pod(
        json!({"volumes": [{"name": "v"}, {"name": "v"}, {"name": "h", "hostPath": {"path": "/x", "type": "Dir"}},
            {"name": "s", "secret": {}, "configMap": {"name": "c"}}],
        "containers": [{"name": "c", "image": "a", "volumeMounts": [{"name": "w", "mountPath": "/a"}, {"name": "v", "mountPath": "/a"}]}]}),
    );
    let errs = validate::pod_create(&p);
    assert_eq!(
        msgs(&errs),
        vec![
            r#"spec.volumes[1].name: Duplicate value: "v""#,
            r#"spec.volumes[2].hostPath.type: Unsupported value: "Dir": supported values: "", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket""#,
            "spec.volumes[3].configMap: Forbidden: may not specify more than 1 volume type",
            "spec.volumes[3].secret.secretName: Required value",
            r#"spec.containers[0].volumeMounts[0].name: Not found: "w""#,
            r#"spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/a": must be unique"#,
        ]
    );
}

#[test]
fn policies_and_tolerations() {
    let p = pod(
        json!({"restartPolicy": "Sometimes", "dnsPolicy": "Nope", "containers": [{"name": "c", "image": "a"}],
        "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]}),
    );
    let errs = validate::pod_create(&p);
    assert_has(
        &errs,
        r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
    );
    assert_has(
        &errs,
        r#"spec.dnsPolicy: Unsupported value: "Nope": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None""#,
    );
    assert_has(
        &errs,
        r#"spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys""#,
    );
    assert_has(
        &errs,
        r#"spec.tolerations[1].effect: Invalid value: "NoSchedule": effect must be 'NoExecute' when `tolerationSeconds` is set"#,
    );
}

#[test]
fn env_rules() {
    let p = pod(json!({"containers": [{"name": "c", "image": "a", "env": [
        {"name": ""}, {"name": "A=B"}, {"name": "X", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}}]}]}));
    let errs = validate::pod_create(&p);
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.containers[0].env[0].name: Required value",
            r#"spec.containers[0].env[1].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='"#,
            r#"spec.containers[0].env[2].valueFrom: Invalid value: "": may not be specified when `value` is not empty"#,
            r#"spec.containers[0].env[3].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.foo": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs""#,
        ]
    );
}

#[test]
fn pod_image_whitespace_on_create() {
    let p = pod(json!({"containers": [{"name": "c", "image": " busybox"}]}));
    assert_eq!(
        msgs(&validate::pod_create(&p)),
        vec![
            r#"spec.containers[0].image: Invalid value: " busybox": must not have leading or trailing whitespace"#
        ]
    );
}

#[test]
fn pod_update_rules() {
    let mut old = pod(
        json!({"containers": [{"name": "c", "image": "a"}], "tolerations": [{"key": "k", "operator": "Exists"}]}),
    );
    old.metadata.resource_version = Some("1".into());
    // Image, added tolerations and activeDeadlineSeconds may change.
    let mut ok = old.clone();
    if let Some(s) = ok.spec.as_mut() {
        s.containers[0].image = Some("b".into());
        s.active_deadline_seconds = Some(30);
        s.tolerations.get_or_insert_with(Vec::new).push(
            serde_json::from_value(json!({"key": "x", "operator": "Exists"})).expect("toleration"),
        );
    }
    assert!(
        validate::pod_update(&ok, &old).is_empty(),
        "{:#?}",
        msgs(&validate::pod_update(&ok, &old))
    );
    // Anything else may not.
    let mut bad = old.clone();
    if let Some(s) = bad.spec.as_mut() {
        s.containers[0].ports =
            serde_json::from_value(json!([{"containerPort": 80, "protocol": "TCP"}])).ok();
    }
    assert_eq!(
        msgs(&validate::pod_update(&bad, &old)),
        vec![
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
        ]
    );
    let mut removed = old.clone();
    if let Some(s) = removed.spec.as_mut() {
        s.tolerations = Some(vec![]);
    }
    assert_has(
        &validate::pod_update(&removed, &old),
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
    );
    let mut more = old.clone();
    if let Some(s) = more.spec.as_mut() {
        let c = s.containers[0].clone();
        s.containers.push(k8s_openapi::api::core::v1::Container {
            name: "d".into(),
            ..c
        });
    }
    assert_has(
        &validate::pod_update(&more, &old),
        "spec.containers: Forbidden: pod updates may not add or remove containers",
    );
}

#[test]
fn template_semantic_equality() {
    let a: PodTemplateSpec = serde_json::from_value(json!({"metadata": {"labels": {}}, "spec": {"containers": [{"name": "c", "image": "a", "env": []}]}})).expect("tpl");
    let b: PodTemplateSpec = serde_json::from_value(
        json!({"spec": {"containers": [{"name": "c", "image": "a"}], "volumes": []}}),
    )
    .expect("tpl");
    assert!(!template_changed(&a, &b));
    let c: PodTemplateSpec = serde_json::from_value(
        json!({"spec": {"containers": [{"name": "c", "image": "a", "securityContext": {}}]}}),
    )
    .expect("tpl");
    assert!(template_changed(&b, &c), "nil vs empty struct differs");
    let d: PodTemplateSpec =
        serde_json::from_value(json!({"spec": {"containers": [{"name": "c", "image": "b"}]}}))
            .expect("tpl");
    assert!(template_changed(&b, &d));
}

#[test]
fn node_rules() {
    let n: Node = serde_json::from_value(json!({"metadata": {"name": "n1", "namespace": "x"},
        "spec": {"taints": [{"key": "k", "effect": "Sometimes"}, {"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}]}})).expect("node");
    let errs = validate::node(&n);
    assert_has(
        &errs,
        "metadata.namespace: Forbidden: not allowed on this type",
    );
    assert_has(
        &errs,
        r#"spec.taints[0].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute""#,
    );
    assert!(
        msgs(&errs)
            .iter()
            .any(|m| m.starts_with("spec.taints[2]: Duplicate value:"))
    );
}

#[test]
fn namespace_rules_and_defaults() {
    let mut ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "team-a"}})).expect("ns");
    defaults::namespace(&mut ns);
    assert_eq!(
        ns.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/metadata.name"))
            .map(String::as_str),
        Some("team-a")
    );
    assert_eq!(
        ns.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Active")
    );
    // The `kubernetes` finalizer is the strategy's on create, not a default: a default would
    // put it back on every write after the namespace controller removed it.
    assert_eq!(ns.spec.as_ref().and_then(|s| s.finalizers.clone()), None);
    assert!(validate::namespace(&ns).is_empty());
    ns.metadata.name = Some("a.b".into());
    assert_eq!(
        msgs(&validate::namespace(&ns)),
        vec![r#"metadata.name: Invalid value: "a.b": must not contain dots"#]
    );
}

#[test]
fn event_and_lease_rules() {
    let e: Event =
        serde_json::from_value(json!({"metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}}))
        .expect("event");
    assert_eq!(
        msgs(&validate::event(&e)),
        vec![r#"involvedObject.namespace: Invalid value: "other": does not match event.namespace"#]
    );
    let l: Lease = serde_json::from_value(
        json!({"metadata": {"name": "l", "namespace": "kube-node-lease"},
        "spec": {"leaseDurationSeconds": 0}}),
    )
    .expect("lease");
    assert_eq!(
        msgs(&validate::lease(&l)),
        vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
    );
}

#[test]
fn controller_revision_rules() {
    let cr: ControllerRevision = serde_json::from_value(json!({"metadata": {"name": "r", "namespace": "default", "resourceVersion": "1"}, "revision": -1})).expect("cr");
    assert_eq!(
        msgs(&validate::controller_revision_create(&cr)),
        vec![
            "data: Required value: data is mandatory",
            "revision: Invalid value: -1: must be greater than or equal to 0"
        ]
    );
    let mut old = cr.clone();
    old.revision = 1;
    old.data = Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(
        json!({"a": 1}),
    ));
    let mut new = old.clone();
    new.data = Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(
        json!({"a": 2}),
    ));
    assert_eq!(
        msgs(&validate::controller_revision_update(&new, &old)),
        vec![r#"data: Invalid value: {"a":2}: field is immutable"#]
    );
}

#[test]
fn node_affinity_requirements() {
    let p = pod(json!({
        "containers": [{"name": "c", "image": "busybox"}],
        "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{
                "matchExpressions": [
                    {"key": "zone", "operator": "In"},
                    {"key": "ssd", "operator": "Exists", "values": ["x"]},
                    {"key": "gen", "operator": "Gt", "values": ["1", "2"]},
                    {"key": "z", "operator": "Near", "values": ["a"]},
                    {"key": "ok", "operator": "In", "values": ["not valid!"]}],
                "matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["a", "b"]},
                    {"key": "metadata.uid", "operator": "Exists"}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 0, "preference": {"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["not valid!"]}]}}]}}
    }));
    let errs = validate::pod_create(&p);
    let base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]";
    for want in [
        format!("{base}.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
        format!("{base}.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
        format!("{base}.matchExpressions[2].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"),
        format!(r#"{base}.matchExpressions[3].operator: Invalid value: "Near": not a valid selector operator"#),
        format!("{base}.matchFields[0].values: Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector"),
        format!(r#"{base}.matchFields[1].operator: Invalid value: "Exists": not a valid selector operator"#),
        format!(r#"{base}.matchFields[1].key: Invalid value: "metadata.uid": not a valid field selector key"#),
        "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100".to_string(),
    ] {
        assert_has(&errs, &want);
    }
    let m = msgs(&errs);
    assert!(
        m.iter().any(|s| s.starts_with(&format!(
            r#"{base}.matchExpressions[4].values[0]: Invalid value: "not valid!": a valid label must be"#
        ))),
        "{m:#?}"
    );
    // Preferred terms do not check label values; 8 listed + 1 label value error.
    assert_eq!(m.len(), 9, "{m:#?}");

    let ok = pod(json!({
        "containers": [{"name": "c", "image": "busybox"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]}}}
    }));
    assert!(validate::pod_create(&ok).is_empty());
    let empty = pod(json!({
        "containers": [{"name": "c", "image": "busybox"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": []}}}
    }));
    assert_has(
        &validate::pod_create(&empty),
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term",
    );
}
