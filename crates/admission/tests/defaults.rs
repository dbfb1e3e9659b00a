//! Defaulting (R131, pod defaults, admission plugin mutations).

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pernode_admission::defaults;
use serde_json::json;

#[test]
fn daemon_set_defaults() {
    let mut d: DaemonSet = serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))
    .expect("ds");
    defaults::daemon_set(&mut d);
    let v = serde_json::to_value(&d).expect("json");
    assert_eq!(
        v["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(v["spec"]["revisionHistoryLimit"], json!(10));
    let ps = &v["spec"]["template"]["spec"];
    assert_eq!(ps["restartPolicy"], "Always");
    assert_eq!(ps["dnsPolicy"], "ClusterFirst");
    assert_eq!(ps["terminationGracePeriodSeconds"], 30);
    assert_eq!(ps["schedulerName"], "default-scheduler");
    assert_eq!(ps["securityContext"], json!({}));
    assert_eq!(ps["enableServiceLinks"], json!(true));
    let c = &ps["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    // Templates are not pods: no priority, service account or tolerations.
    assert!(
        ps.get("priority").is_none()
            && ps.get("tolerations").is_none()
            && ps.get("serviceAccountName").is_none()
    );
}

#[test]
fn max_surge_only_gets_max_unavailable_one() {
    let mut d: DaemonSet = serde_json::from_value(json!({"spec": {"selector": {}, "template": {},
        "updateStrategy": {"rollingUpdate": {"maxSurge": "10%"}}}}))
    .expect("ds");
    defaults::daemon_set(&mut d);
    let ru = d
        .spec
        .and_then(|s| s.update_strategy)
        .and_then(|s| s.rolling_update)
        .expect("ru");
    assert_eq!(ru.max_unavailable, Some(IntOrString::Int(1)));
    assert_eq!(ru.max_surge, Some(IntOrString::String("10%".into())));
}

#[test]
fn image_pull_policy_from_tag() {
    for (image, want) in [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("registry.local:5000/team/app", "Always"),
        ("registry.local:5000/team/app:v2", "IfNotPresent"),
        (
            "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "IfNotPresent",
        ),
        ("", "IfNotPresent"),
    ] {
        let mut p: Pod = serde_json::from_value(
            json!({"spec": {"containers": [{"name": "c", "image": image}]}}),
        )
        .expect("pod");
        defaults::pod(&mut p);
        let got = p
            .spec
            .as_ref()
            .and_then(|s| s.containers[0].image_pull_policy.clone());
        assert_eq!(got.as_deref(), Some(want), "image {image:?}");
    }
}

#[test]
fn pod_defaults() {
    let mut p: Pod = serde_json::from_value(json!({"spec": {"containers": [{"name": "c", "image": "a:1",
        "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "1"}},
        "readinessProbe": {"httpGet": {"port": 80}}}],
        "volumes": [{"name": "v"}, {"name": "h", "hostPath": {"path": "/x"}}, {"name": "s", "secret": {"secretName": "s"}}]}}))
    .expect("pod");
    defaults::pod(&mut p);
    let v = serde_json::to_value(&p).expect("json");
    let s = &v["spec"];
    // Admission plugins (the API server's) name the service account, set the priority and
    // add the default tolerations, not defaulting.
    for admitted in [
        "serviceAccountName",
        "priority",
        "preemptionPolicy",
        "tolerations",
    ] {
        assert!(s.get(admitted).is_none(), "{admitted}");
    }
    assert_eq!(s["containers"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(
        s["containers"][0]["resources"]["requests"],
        json!({"cpu": "1"})
    );
    assert_eq!(
        s["containers"][0]["readinessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(s["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(s["volumes"][1]["hostPath"]["type"], "");
    assert_eq!(s["volumes"][2]["secret"]["defaultMode"], 420);
}

#[test]
fn default_toleration_seconds_respects_existing() {
    let tolerations = |v: serde_json::Value| -> Vec<Toleration> {
        serde_json::from_value(v).expect("tolerations")
    };
    let keys = |added: Vec<Toleration>| -> Vec<(Option<String>, Option<i64>)> {
        added
            .into_iter()
            .map(|t| (t.key, t.toleration_seconds))
            .collect()
    };
    let not_ready = "node.kubernetes.io/not-ready";
    let unreachable = "node.kubernetes.io/unreachable";
    assert_eq!(
        keys(defaults::default_tolerations(&[])),
        vec![
            (Some(not_ready.into()), Some(300)),
            (Some(unreachable.into()), Some(300)),
        ]
    );
    let own = tolerations(json!([{"key": not_ready, "operator": "Exists", "effect": "NoExecute"}]));
    assert_eq!(
        keys(defaults::default_tolerations(&own)),
        vec![(Some(unreachable.into()), Some(300))]
    );
    // An empty-key Exists toleration covers everything.
    let all = tolerations(json!([{"operator": "Exists"}]));
    assert!(defaults::default_tolerations(&all).is_empty());
}

#[test]
fn node_allocatable_from_capacity() {
    let mut n: Node = serde_json::from_value(
        json!({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4"}}}),
    )
    .expect("node");
    defaults::node(&mut n);
    assert_eq!(
        serde_json::to_value(&n).expect("json")["status"]["allocatable"],
        json!({"cpu": "4"})
    );
}
