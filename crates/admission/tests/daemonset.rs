//! DaemonSet validation rules (R132-R140, R145) with upstream's paths and texts.

use k8s_openapi::api::apps::v1::DaemonSet;
use pernode_admission::{FieldError, defaults, invalid_message, validate};
use serde_json::{Value, json};

fn ds(v: Value) -> DaemonSet {
    let mut d: DaemonSet = serde_json::from_value(v).expect("test manifest decodes");
    d.metadata.namespace.get_or_insert_with(|| "default".into());
    defaults::daemon_set(&mut d);
    d
}

fn base() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        }
    })
}

fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let obj = v.pointer_mut(parent).expect("parent exists");
    if let Some(a) = obj.as_array_mut() {
        let i: usize = key.parse().expect("index");
        a[i] = new;
    } else {
        obj[key] = new;
    }
    v
}

fn msgs(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(|e| e.to_string()).collect()
}

fn assert_has(errs: &[FieldError], want: &str) {
    let m = msgs(errs);
    assert!(m.iter().any(|s| s == want), "want {want:?} in {m:#?}");
}

#[test]
fn valid_daemon_set_passes() {
    let errs = validate::daemon_set_create(&ds(base()));
    assert!(errs.is_empty(), "{:#?}", msgs(&errs));
}

#[test]
fn seed_004_selector_not_matching_template() {
    let v = with(
        base(),
        "/spec/template/metadata/labels",
        json!({"app": "two"}),
    );
    let v = with(v, "/spec/selector", json!({"matchLabels": {"app": "one"}}));
    let v = with(v, "/metadata/name", json!("bad-selector"));
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec![
            r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"two"}: `selector` does not match template `labels`"#
        ]
    );
    assert_eq!(errs[0].reason(), "FieldValueInvalid");
    assert_eq!(
        invalid_message("DaemonSet", "apps", "bad-selector", &errs),
        r#"DaemonSet.apps "bad-selector" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"two"}: `selector` does not match template `labels`"#
    );
}

#[test]
fn seed_004_restart_policy_never() {
    let v = with(base(), "/spec/template/spec/restartPolicy", json!("Never"));
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec![
            r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#
        ]
    );
    assert_eq!(errs[0].reason(), "FieldValueNotSupported");
}

#[test]
fn empty_selector_rejected() {
    let v = with(base(), "/spec/selector", json!({}));
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset"
        ]
    );
}

#[test]
fn selector_expression_rules() {
    let v = with(
        base(),
        "/spec/selector",
        json!({"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "k", "operator": "In"}, {"key": "j", "operator": "Exists", "values": ["v"]}]}),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert_has(
        &errs,
        "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    );
    assert_has(
        &errs,
        "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
    );
}

#[test]
fn bad_label_value_in_selector() {
    let v = with(
        base(),
        "/spec/selector",
        json!({"matchLabels": {"app": "a b"}}),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert!(
        msgs(&errs).iter().any(|m| m.starts_with(
            r#"spec.selector.matchLabels: Invalid value: "a b": a valid label must be"#
        )),
        "{:#?}",
        msgs(&errs)
    );
}

#[test]
fn active_deadline_seconds_forbidden() {
    let v = with(
        base(),
        "/spec/template/spec/activeDeadlineSeconds",
        json!(10),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported"
        ]
    );
}

#[test]
fn ephemeral_containers_forbidden_in_template() {
    let v = with(
        base(),
        "/spec/template/spec/ephemeralContainers",
        json!([{"name": "e", "image": "busybox"}]),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert_has(
        &errs,
        "spec.template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template",
    );
}

#[test]
fn negative_counters() {
    let v = with(base(), "/spec/minReadySeconds", json!(-1));
    let v = with(v, "/spec/revisionHistoryLimit", json!(-2));
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
            "spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0",
        ]
    );
    let v = with(base(), "/spec/revisionHistoryLimit", json!(0));
    assert!(validate::daemon_set_create(&ds(v)).is_empty());
}

#[test]
fn negative_template_generation() {
    let v = with(
        base(),
        "/metadata/annotations",
        json!({"deprecated.daemonset.template.generation": "-1"}),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec!["spec.templateGeneration: Invalid value: -1: must be greater than or equal to 0"]
    );
}

#[test]
fn update_strategy_type_unsupported() {
    let v = with(base(), "/spec/updateStrategy", json!({"type": "Sometimes"}));
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec![
            r#"spec.updateStrategy: Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Sometimes", RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: "RollingUpdate", "OnDelete""#
        ]
    );
}

#[test]
fn on_delete_keeps_no_rolling_update() {
    let v = with(base(), "/spec/updateStrategy", json!({"type": "OnDelete"}));
    let d = ds(v);
    let s = d
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .expect("strategy");
    assert!(s.rolling_update.is_none());
    assert!(validate::daemon_set_create(&d).is_empty());
}

#[test]
fn only_max_surge_is_rejected_after_defaulting() {
    let v = with(
        base(),
        "/spec/updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec![
            r#"spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: may not be set when maxUnavailable is non-zero"#
        ]
    );
    let v = with(
        base(),
        "/spec/updateStrategy",
        json!({"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}),
    );
    assert!(validate::daemon_set_create(&ds(v)).is_empty());
}

#[test]
fn both_zero_rejected() {
    let v = with(
        base(),
        "/spec/updateStrategy",
        json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec![
            "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
        ]
    );
}

#[test]
fn percent_rules() {
    let v = with(
        base(),
        "/spec/updateStrategy",
        json!({"rollingUpdate": {"maxUnavailable": "110%"}}),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec![
            r#"spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"110%"}: must not be greater than 100%"#
        ]
    );
    let v = with(
        base(),
        "/spec/updateStrategy",
        json!({"rollingUpdate": {"maxUnavailable": "ten"}}),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert_has(
        &errs,
        r#"spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"ten"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"#,
    );
    let v = with(
        base(),
        "/spec/updateStrategy",
        json!({"rollingUpdate": {"maxUnavailable": -1}}),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert_has(
        &errs,
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: -1: must be greater than or equal to 0",
    );
}

#[test]
fn rolling_update_required_when_not_defaulted() {
    let mut d = ds(base());
    if let Some(s) = d.spec.as_mut().and_then(|s| s.update_strategy.as_mut()) {
        s.rolling_update = None;
    }
    assert_eq!(
        msgs(&validate::daemon_set_create(&d)),
        vec!["spec.updateStrategy.rollingUpdate: Required value"]
    );
}

#[test]
fn name_and_namespace() {
    let v = with(base(), "/metadata/name", json!("Bad_Name"));
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].to_string().starts_with(r#"metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of"#), "{}", errs[0]);
    let mut d = ds(base());
    d.metadata.namespace = None;
    assert_eq!(
        msgs(&validate::daemon_set_create(&d)),
        vec!["metadata.namespace: Required value"]
    );
    d.metadata.namespace = Some("default".into());
    d.metadata.name = None;
    assert_eq!(
        msgs(&validate::daemon_set_create(&d)),
        vec!["metadata.name: Required value: name or generateName is required"]
    );
}

#[test]
fn annotations_too_long() {
    let big = "x".repeat(256 * 1024);
    let v = with(base(), "/metadata/annotations", json!({"a": big}));
    let errs = validate::daemon_set_create(&ds(v));
    assert_eq!(
        msgs(&errs),
        vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
    );
}

#[test]
fn template_label_errors_use_upstream_path() {
    let v = with(
        base(),
        "/spec/template/metadata/labels",
        json!({"app": "a", "bad key": "v"}),
    );
    let errs = validate::daemon_set_create(&ds(v));
    assert!(
        msgs(&errs).iter().any(|m| m.starts_with(
            r#"spec.template.labels: Invalid value: "bad key": name part must consist of"#
        )),
        "{:#?}",
        msgs(&errs)
    );
}

#[test]
fn selector_is_immutable() {
    let old = {
        let mut d = ds(base());
        d.metadata.resource_version = Some("5".into());
        d
    };
    let mut new = ds(with(
        base(),
        "/spec/selector",
        json!({"matchLabels": {"app": "a", "tier": "x"}}),
    ));
    new.metadata.resource_version = Some("5".into());
    if let Some(l) = new
        .spec
        .as_mut()
        .and_then(|s| s.template.metadata.as_mut())
        .and_then(|m| m.labels.as_mut())
    {
        l.insert("tier".into(), "x".into());
    }
    let errs = validate::daemon_set_update(&new, &old);
    assert_eq!(
        msgs(&errs),
        vec![
            r#"spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"a", "tier":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#
        ]
    );
}

#[test]
fn other_spec_fields_are_mutable() {
    let mut old = ds(base());
    old.metadata.resource_version = Some("5".into());
    let mut new = ds(with(base(), "/spec/minReadySeconds", json!(5)));
    new.metadata.resource_version = Some("5".into());
    if let Some(c) = new
        .spec
        .as_mut()
        .and_then(|s| s.template.spec.as_mut())
        .map(|s| &mut s.containers[0])
    {
        c.image = Some("busybox:2".into());
    }
    assert!(validate::daemon_set_update(&new, &old).is_empty());
}

#[test]
fn update_duplicates_collapse_in_message() {
    let mut old = ds(base());
    old.metadata.resource_version = Some("5".into());
    let mut new = ds(with(
        base(),
        "/spec/template/spec/restartPolicy",
        json!("OnFailure"),
    ));
    new.metadata.resource_version = Some("5".into());
    let errs = validate::daemon_set_update(&new, &old);
    assert_eq!(errs.len(), 2, "upstream validates the spec twice on update");
    assert_eq!(
        invalid_message("DaemonSet", "apps", "x", &errs),
        r#"DaemonSet.apps "x" is invalid: spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always""#
    );
}

#[test]
fn status_update_rules() {
    let mut old = ds(base());
    old.metadata.resource_version = Some("5".into());
    old.status = serde_json::from_value(json!({"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1, "collisionCount": 2})).ok();
    let mut new = old.clone();
    new.status = serde_json::from_value(json!({"currentNumberScheduled": -1, "desiredNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1, "collisionCount": 1, "observedGeneration": -3})).ok();
    let errs = validate::daemon_set_status_update(&new, &old);
    assert_eq!(
        msgs(&errs),
        vec![
            "status.currentNumberScheduled: Invalid value: -1: must be greater than or equal to 0",
            "status.observedGeneration: Invalid value: -3: must be greater than or equal to 0",
            "status.collisionCount: Invalid value: 1: cannot be decremented",
        ]
    );
}

#[test]
fn resource_version_required_on_update() {
    let old = ds(base());
    let new = ds(base());
    assert_eq!(
        msgs(&validate::daemon_set_update(&new, &old)),
        vec![r#"metadata.resourceVersion: Invalid value: "": must be specified for an update"#]
    );
}

#[test]
fn rollout_annotations_that_do_not_parse_are_refused() {
    let v = with(
        base(),
        "/metadata/annotations",
        json!({"pernode.io/partition": "two", "pernode.io/paused": "yes"}),
    );
    let errs = validate::daemon_set_create(&ds(v.clone()));
    assert_has(
        &errs,
        "metadata.annotations[pernode.io/partition]: Invalid value: \"two\": must be a non-negative integer or a percentage (e.g. \"2\" or \"20%\")",
    );
    assert_has(
        &errs,
        "metadata.annotations[pernode.io/paused]: Invalid value: \"yes\": must be \"true\" or \"false\"",
    );
    let good = with(
        base(),
        "/metadata/annotations",
        json!({"pernode.io/partition": "40%", "pernode.io/paused": "true"}),
    );
    assert!(validate::daemon_set_create(&ds(good.clone())).is_empty());
    let on_update = msgs(&validate::daemon_set_update(&ds(v), &ds(good)));
    assert_eq!(
        on_update
            .iter()
            .filter(|m| m.starts_with("metadata.annotations[pernode.io/"))
            .count(),
        2,
        "an update is checked too: {on_update:#?}"
    );
}
