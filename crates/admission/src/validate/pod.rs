//! Pod, pod spec and pod template validation (core's `ValidatePodCreate`,
//! `ValidatePodUpdate`, `ValidatePodSpec`, `ValidatePodTemplateSpec`).
//!
//! The rules covered: volumes (names, one source each, hostPath, secret,
//! configMap, PVC), containers and init containers (names, images, ports,
//! env, volume mounts, pull policy, resources, probes, lifecycle hooks),
//! host ports, restartPolicy, dnsPolicy, nodeSelector, tolerations, node affinity,
//! service account and node names, activeDeadlineSeconds, hostname and
//! subdomain, preemptionPolicy, ephemeral containers on create/template.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use k8s_openapi::api::core::v1::{
    Container, EnvVar, HTTPGetAction, LifecycleHandler, NodeAffinity, NodeSelectorRequirement,
    NodeSelectorTerm, Pod, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Toleration,
    Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pernode_core::names;

use super::meta::{annotations, labels, name_is_dns_subdomain, object_meta, object_meta_update};
use crate::FieldError;
use crate::quantity as qty;

/// `ValidatePodTemplateSpec` at `path` (e.g. `spec.template`). Note that
/// upstream reports template label errors at `<path>.labels`, not
/// `<path>.metadata.labels`.
pub fn pod_template_spec(t: &PodTemplateSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = t.metadata.clone().unwrap_or_default();
    errs.extend(labels(meta.labels.as_ref(), &format!("{path}.labels")));
    errs.extend(annotations(
        meta.annotations.as_ref(),
        &format!("{path}.annotations"),
    ));
    let empty = PodSpec::default();
    let spec = t.spec.as_ref().unwrap_or(&empty);
    errs.extend(pod_spec(spec, &format!("{path}.spec")));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            &format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodCreate` (after defaulting).
pub fn pod_create(pod: &Pod) -> Vec<FieldError> {
    let mut errs = object_meta(&pod.metadata, true, name_is_dns_subdomain);
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    errs.extend(pod_spec(spec, "spec"));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    // `validateContainersOnlyForPod`: only pods (not templates) reject
    // padded image names, for compatibility with old templates.
    for (field, list) in [
        ("containers", Some(&spec.containers)),
        ("initContainers", spec.init_containers.as_ref()),
    ] {
        for (i, c) in list.into_iter().flatten().enumerate() {
            let image = c.image.as_deref().unwrap_or("");
            if image.trim().len() != image.len() {
                errs.push(FieldError::invalid(
                    &format!("spec.{field}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// The fields a pod update may change, in upstream's words.
const POD_UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`: metadata rules, the full spec validation of the new
/// pod, and that only images, activeDeadlineSeconds (set, or lowered),
/// tolerations (additions, and tolerationSeconds), the
/// terminationGracePeriodSeconds fix-up and scheduling gates (removals)
/// change. Other spec changes give `spec: Forbidden: pod updates may not
/// change fields other than ...` (upstream appends a Go struct diff, which
/// is left out here).
pub fn pod_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    let empty = PodSpec::default();
    let ns = new.spec.as_ref().unwrap_or(&empty);
    let os = old.spec.as_ref().unwrap_or(&empty);
    // Spec validation of the new pod, as validatePodMetadataAndSpec; the
    // object meta was already checked as an update above.
    errs.extend(pod_spec(ns, "spec"));

    for (field, n, o) in [
        ("containers", &ns.containers[..], &os.containers[..]),
        (
            "initContainers",
            ns.init_containers.as_deref().unwrap_or(&[]),
            os.init_containers.as_deref().unwrap_or(&[]),
        ),
    ] {
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                &format!("spec.{field}"),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or("");
            if image.is_empty() {
                errs.push(FieldError::required(
                    &format!("spec.{field}[{i}].image"),
                    "",
                ));
            }
            if image.trim().len() != image.len() {
                errs.push(FieldError::invalid(
                    &format!("spec.{field}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    match (ns.active_deadline_seconds, os.active_deadline_seconds) {
        (Some(n), old_ads) => {
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    &format!("must be between 0 and {}, inclusive", i32::MAX),
                ));
                return errs;
            }
            if let Some(o) = old_ads
                && o < n
            {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            serde_json::Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }

    errs.extend(only_added_tolerations(
        ns.tolerations.as_deref().unwrap_or(&[]),
        os.tolerations.as_deref().unwrap_or(&[]),
    ));

    let old_gates: Vec<String> = os
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.clone())
        .collect();
    for g in ns.scheduling_gates.iter().flatten() {
        if !old_gates.contains(&g.name) {
            errs.push(FieldError::forbidden(
                "spec.schedulingGates",
                &format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            ));
        }
    }

    // Munge the allowed changes back to the old values; whatever still
    // differs is a forbidden change.
    let mut munged = ns.clone();
    for (c, o) in munged.containers.iter_mut().zip(os.containers.iter()) {
        c.image = o.image.clone();
    }
    if let (Some(nc), Some(oc)) = (munged.init_containers.as_mut(), os.init_containers.as_ref()) {
        for (c, o) in nc.iter_mut().zip(oc.iter()) {
            c.image = o.image.clone();
        }
    }
    munged.active_deadline_seconds = os.active_deadline_seconds;
    munged.tolerations = os.tolerations.clone();
    munged.scheduling_gates = os.scheduling_gates.clone();
    if let (Some(o), Some(1)) = (
        os.termination_grace_period_seconds,
        ns.termination_grace_period_seconds,
    ) && o < 0
    {
        munged.termination_grace_period_seconds = Some(o);
    }
    // A gated pod may still get its node selector and affinity tightened.
    if !old_gates.is_empty() {
        munged.node_selector = os.node_selector.clone();
        munged.affinity = os.affinity.clone();
    }
    if !crate::semantic_eq(&munged, os) {
        errs.push(FieldError::forbidden(
            "spec",
            &format!("pod updates may not change fields other than {POD_UPDATABLE}"),
        ));
    }
    errs
}

/// `validateOnlyAddedTolerations`.
fn only_added_tolerations(new: &[Toleration], old: &[Toleration]) -> Vec<FieldError> {
    for o in old {
        let found = new.iter().any(|n| {
            let mut oc = o.clone();
            oc.toleration_seconds = n.toleration_seconds;
            &oc == n
        });
        if !found {
            return vec![FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    tolerations(new, "spec.tolerations")
}

/// `ValidatePodSpec` at `path` (after defaulting).
pub fn pod_spec(spec: &PodSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let volumes = validate_volumes(
        spec.volumes.as_deref().unwrap_or(&[]),
        &format!("{path}.volumes"),
        &mut errs,
    );

    let cpath = format!("{path}.containers");
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&cpath, ""));
    }
    let mut names_seen: HashSet<&str> = HashSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let p = format!("{cpath}[{i}]");
        errs.extend(container_common(c, &volumes, &p));
        if !names_seen.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&format!("{p}.name"), c.name.as_str()));
        }
        if c.image.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(&format!("{p}.image"), ""));
        }
        if let Some(l) = c.lifecycle.as_ref() {
            for (n, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
                if let Some(h) = h {
                    errs.extend(lifecycle_handler(h, &format!("{p}.lifecycle.{n}")));
                }
            }
        }
        errs.extend(probe_rules(
            c.liveness_probe.as_ref(),
            &format!("{p}.livenessProbe"),
            ProbeKind::Liveness,
        ));
        errs.extend(probe_rules(
            c.readiness_probe.as_ref(),
            &format!("{p}.readinessProbe"),
            ProbeKind::Readiness,
        ));
        errs.extend(probe_rules(
            c.startup_probe.as_ref(),
            &format!("{p}.startupProbe"),
            ProbeKind::Startup,
        ));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &format!("{p}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    let mut host_ports: HashSet<String> = HashSet::new();
    errs.extend(unique_host_ports(&spec.containers, &cpath, &mut host_ports));

    let ipath = format!("{path}.initContainers");
    let inits = spec.init_containers.as_deref().unwrap_or(&[]);
    for (i, c) in inits.iter().enumerate() {
        let p = format!("{ipath}[{i}]");
        errs.extend(container_common(c, &volumes, &p));
        // Init container names share one namespace with the app containers.
        if !names_seen.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(&format!("{p}.name"), c.name.as_str()));
        }
        if c.image.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(&format!("{p}.image"), ""));
        }
        match c.restart_policy.as_deref() {
            None => {
                // Plain init containers run to completion: no probes or hooks.
                if c.lifecycle.is_some() {
                    errs.push(FieldError::forbidden(
                        &format!("{p}.lifecycle"),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
                for (n, pr) in [
                    ("livenessProbe", &c.liveness_probe),
                    ("readinessProbe", &c.readiness_probe),
                    ("startupProbe", &c.startup_probe),
                ] {
                    if pr.is_some() {
                        errs.push(FieldError::forbidden(
                            &format!("{p}.{n}"),
                            "may not be set for init containers without restartPolicy=Always",
                        ));
                    }
                }
            }
            Some("Always") => {
                errs.extend(probe_rules(
                    c.liveness_probe.as_ref(),
                    &format!("{p}.livenessProbe"),
                    ProbeKind::Liveness,
                ));
                errs.extend(probe_rules(
                    c.startup_probe.as_ref(),
                    &format!("{p}.startupProbe"),
                    ProbeKind::Startup,
                ));
                if c.readiness_probe.is_some() {
                    errs.push(FieldError::forbidden(
                        &format!("{p}.readinessProbe"),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
            Some(other) => errs.push(FieldError::not_supported(
                &format!("{p}.restartPolicy"),
                other,
                &["Always"],
            )),
        }
    }
    errs.extend(unique_host_ports(inits, &ipath, &mut host_ports));

    // validatePodHostNetworkDeps
    if spec.host_network.unwrap_or(false) {
        for (i, c) in spec.containers.iter().enumerate() {
            for (j, port) in c.ports.iter().flatten().enumerate() {
                let hp = port.host_port.unwrap_or(0);
                if hp != port.container_port {
                    errs.push(FieldError::invalid(
                        &format!("{cpath}[{i}].ports[{j}].hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }

    let rp_path = format!("{path}.restartPolicy");
    match spec.restart_policy.as_deref().unwrap_or("") {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(&rp_path, "")),
        other => errs.push(FieldError::not_supported(
            &rp_path,
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns_path = format!("{path}.dnsPolicy");
    match spec.dns_policy.as_deref().unwrap_or("") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(&dns_path, "")),
        other => errs.push(FieldError::not_supported(
            &dns_path,
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.extend(labels(
        spec.node_selector.as_ref(),
        &format!("{path}.nodeSelector"),
    ));

    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        for msg in name_is_dns_subdomain(sa, false) {
            errs.push(FieldError::invalid(
                &format!("{path}.serviceAccountName"),
                sa,
                &msg,
            ));
        }
    }
    if let Some(n) = spec.node_name.as_deref().filter(|s| !s.is_empty()) {
        for msg in name_is_dns_subdomain(n, false) {
            errs.push(FieldError::invalid(&format!("{path}.nodeName"), n, &msg));
        }
    }
    if let Some(v) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&v)
    {
        errs.push(FieldError::invalid(
            &format!("{path}.activeDeadlineSeconds"),
            v,
            &format!("must be between 1 and {}, inclusive", i32::MAX),
        ));
    }
    for (field, v) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = v.as_deref().filter(|s| !s.is_empty()) {
            for msg in names::is_dns1123_label(v) {
                errs.push(FieldError::invalid(&format!("{path}.{field}"), v, &msg));
            }
        }
    }
    if let Some(t) = spec.tolerations.as_deref().filter(|t| !t.is_empty()) {
        errs.extend(tolerations(t, &format!("{path}.tolerations")));
    }
    if let Some(na) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
    {
        errs.extend(node_affinity(na, &format!("{path}.affinity.nodeAffinity")));
    }
    if let Some(pc) = spec
        .priority_class_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        for msg in name_is_dns_subdomain(pc, false) {
            errs.push(FieldError::invalid(
                &format!("{path}.priorityClassName"),
                pc,
                &msg,
            ));
        }
    }
    if let Some(pp) = spec.preemption_policy.as_deref() {
        let pp_path = format!("{path}.preemptionPolicy");
        match pp {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(FieldError::required(&pp_path, "")),
            other => errs.push(FieldError::not_supported(
                &pp_path,
                other,
                &["Never", "PreemptLowerPriority"],
            )),
        }
    }
    if let Some(t) = spec.termination_grace_period_seconds
        && t < 0
    {
        // Upstream tolerates negative values on old objects only through
        // update munging; on create and in templates it is an error.
        errs.push(FieldError::invalid(
            &format!("{path}.terminationGracePeriodSeconds"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    errs
}

/// `validateNodeAffinity`: the required node selector (label values checked, as for new
/// pods) and the preferred terms (weight 1-100, values not checked).
fn node_affinity(na: &NodeAffinity, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(req) = na
        .required_during_scheduling_ignored_during_execution
        .as_ref()
    {
        let terms_path =
            format!("{path}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
        if req.node_selector_terms.is_empty() {
            errs.push(FieldError::required(
                &terms_path,
                "must have at least one node selector term",
            ));
        }
        for (i, term) in req.node_selector_terms.iter().enumerate() {
            errs.extend(node_selector_term(
                term,
                true,
                &format!("{terms_path}[{i}]"),
            ));
        }
    }
    let pref_path = format!("{path}.preferredDuringSchedulingIgnoredDuringExecution");
    for (i, term) in na
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .flatten()
        .enumerate()
    {
        if !(1..=100).contains(&term.weight) {
            errs.push(FieldError::invalid(
                &format!("{pref_path}[{i}].weight"),
                term.weight,
                "must be in the range 1-100",
            ));
        }
        errs.extend(node_selector_term(
            &term.preference,
            false,
            &format!("{pref_path}[{i}].preference"),
        ));
    }
    errs
}

/// `ValidateNodeSelectorTerm`.
fn node_selector_term(term: &NodeSelectorTerm, check_values: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (j, r) in term.match_expressions.iter().flatten().enumerate() {
        errs.extend(node_selector_requirement(
            r,
            check_values,
            &format!("{path}.matchExpressions[{j}]"),
        ));
    }
    for (j, r) in term.match_fields.iter().flatten().enumerate() {
        errs.extend(node_field_selector_requirement(
            r,
            &format!("{path}.matchFields[{j}]"),
        ));
    }
    errs
}

/// `ValidateNodeSelectorRequirement`.
fn node_selector_requirement(
    r: &NodeSelectorRequirement,
    check_values: bool,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = r.values.as_deref().unwrap_or(&[]);
    let values_path = format!("{path}.values");
    match r.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            &values_path,
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            &values_path,
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
            &values_path,
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => errs.push(FieldError::invalid(
            &format!("{path}.operator"),
            other,
            "not a valid selector operator",
        )),
    }
    for msg in names::is_qualified_name(&r.key) {
        errs.push(FieldError::invalid(
            &format!("{path}.key"),
            r.key.as_str(),
            &msg,
        ));
    }
    if check_values {
        for (i, v) in values.iter().enumerate() {
            for msg in names::is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    &format!("{values_path}[{i}]"),
                    v.as_str(),
                    &msg,
                ));
            }
        }
    }
    errs
}

/// `ValidateNodeFieldSelectorRequirement`: only `metadata.name`, with exactly one value for
/// In and NotIn.
fn node_field_selector_requirement(r: &NodeSelectorRequirement, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &format!("{path}.values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            &format!("{path}.operator"),
            other,
            "not a valid selector operator",
        )),
    }
    if r.key != "metadata.name" {
        errs.push(FieldError::invalid(
            &format!("{path}.key"),
            r.key.as_str(),
            "not a valid field selector key",
        ));
    } else {
        for (i, v) in values.iter().enumerate() {
            for msg in name_is_dns_subdomain(v, false) {
                errs.push(FieldError::invalid(
                    &format!("{path}.values[{i}]"),
                    v.as_str(),
                    &msg,
                ));
            }
        }
    }
    errs
}

/// `ValidateTolerations`.
pub(crate) fn tolerations(tols: &[Toleration], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tols.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let key = t.key.as_deref().unwrap_or("");
        let op = t.operator.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        if !key.is_empty() {
            for msg in names::is_qualified_name(key) {
                errs.push(FieldError::invalid(&format!("{p}.key"), key, &msg));
            }
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &format!("{p}.operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &format!("{p}.effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &format!("{p}.operator"),
                        value,
                        &msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    let v = serde_json::to_value(t).unwrap_or_default();
                    let go = format!(
                        "core.Toleration{{Key:{}, Operator:{}, Value:{}, Effect:{}, TolerationSeconds:{}}}",
                        crate::go_quote(key),
                        crate::go_quote(op),
                        crate::go_quote(value),
                        crate::go_quote(effect),
                        match t.toleration_seconds {
                            Some(_) => "(*int64)(0xc000000000)".to_string(),
                            None => "(*int64)(nil)".to_string(),
                        }
                    );
                    errs.push(FieldError::invalid_go(
                        &format!("{p}.operator"),
                        v,
                        go,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &format!("{p}.operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(FieldError::not_supported(
                &format!("{p}.effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

/// `ValidateVolumes`: returns the names of the valid volumes (what mounts
/// may refer to) and appends the errors.
fn validate_volumes<'a>(
    vols: &'a [Volume],
    path: &str,
    errs: &mut Vec<FieldError>,
) -> BTreeSet<&'a str> {
    let mut ok = BTreeSet::new();
    for (i, v) in vols.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut el = volume_source(v, &p);
        let name_path = format!("{p}.name");
        if v.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            for msg in names::is_dns1123_label(&v.name) {
                el.push(FieldError::invalid(&name_path, v.name.as_str(), &msg));
            }
        }
        if ok.contains(v.name.as_str()) {
            el.push(FieldError::duplicate(&name_path, v.name.as_str()));
        }
        if el.is_empty() {
            ok.insert(v.name.as_str());
        } else {
            errs.extend(el);
        }
    }
    ok
}

/// `validateVolumeSource` for the sources a node agent can serve; the rest
/// are only counted (exactly one source per volume).
fn volume_source(v: &Volume, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let present: Vec<&str> = [
        ("hostPath", v.host_path.is_some()),
        ("emptyDir", v.empty_dir.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("secret", v.secret.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("rbd", v.rbd.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("fc", v.fc.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("configMap", v.config_map.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("storageos", v.storageos.is_some()),
        ("projected", v.projected.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, set)| set.then_some(n))
    .collect();
    if present.is_empty() {
        errs.push(FieldError::required(p, "must specify a volume type"));
        return errs;
    }
    for extra in &present[1..] {
        errs.push(FieldError::forbidden(
            &format!("{p}.{extra}"),
            "may not specify more than 1 volume type",
        ));
    }
    if let Some(h) = v.host_path.as_ref() {
        let hp = format!("{p}.hostPath");
        if h.path.is_empty() {
            errs.push(FieldError::required(&format!("{hp}.path"), ""));
        } else if h.path.split(['/', '\\']).any(|part| part == "..") {
            errs.push(FieldError::invalid(
                &format!("{hp}.path"),
                h.path.as_str(),
                "must not contain '..'",
            ));
        }
        let t = h.type_.as_deref().unwrap_or("");
        const TYPES: [&str; 8] = [
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ];
        if !TYPES.contains(&t) {
            errs.push(FieldError::not_supported(&format!("{hp}.type"), t, &TYPES));
        }
    }
    let mode_err = "must be a number between 0 and 0777 (octal), both inclusive";
    if let Some(s) = v.secret.as_ref() {
        let sp = format!("{p}.secret");
        if s.secret_name.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(&format!("{sp}.secretName"), ""));
        }
        if let Some(m) = s.default_mode
            && !(0..=0o777).contains(&m)
        {
            errs.push(FieldError::invalid(
                &format!("{sp}.defaultMode"),
                m,
                mode_err,
            ));
        }
    }
    if let Some(c) = v.config_map.as_ref() {
        let cp = format!("{p}.configMap");
        if c.name.is_empty() {
            errs.push(FieldError::required(&format!("{cp}.name"), ""));
        }
        if let Some(m) = c.default_mode
            && !(0..=0o777).contains(&m)
        {
            errs.push(FieldError::invalid(
                &format!("{cp}.defaultMode"),
                m,
                mode_err,
            ));
        }
    }
    if let Some(c) = v.persistent_volume_claim.as_ref()
        && c.claim_name.is_empty()
    {
        errs.push(FieldError::required(
            &format!("{p}.persistentVolumeClaim.claimName"),
            "",
        ));
    }
    errs
}

/// `validateContainerCommon`: name, termination message policy, ports,
/// env, volume mounts, pull policy, resources.
fn container_common(c: &Container, volumes: &BTreeSet<&str>, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name_path = format!("{p}.name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        for msg in names::is_dns1123_label(&c.name) {
            errs.push(FieldError::invalid(&name_path, c.name.as_str(), &msg));
        }
    }
    let tmp = format!("{p}.terminationMessagePolicy");
    match c.termination_message_policy.as_deref().unwrap_or("") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            &tmp,
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
        other => errs.push(FieldError::not_supported(
            &tmp,
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(container_ports(c, &format!("{p}.ports")));
    errs.extend(env(c.env.as_deref().unwrap_or(&[]), &format!("{p}.env")));
    let mut mount_points: HashSet<&str> = HashSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mp = format!("{p}.volumeMounts[{i}]");
        if m.name.is_empty() {
            errs.push(FieldError::required(&format!("{mp}.name"), ""));
        }
        if !volumes.contains(m.name.as_str()) {
            errs.push(FieldError::not_found(
                &format!("{mp}.name"),
                m.name.as_str(),
            ));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&format!("{mp}.mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                &format!("{mp}.mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        if let Some(mprop) = m.mount_propagation.as_deref() {
            const MODES: [&str; 3] = ["Bidirectional", "HostToContainer", "None"];
            if !MODES.contains(&mprop) {
                errs.push(FieldError::not_supported(
                    &format!("{mp}.mountPropagation"),
                    mprop,
                    &MODES,
                ));
            }
        }
    }
    let pp = format!("{p}.imagePullPolicy");
    match c.image_pull_policy.as_deref().unwrap_or("") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(&pp, "")),
        other => errs.push(FieldError::not_supported(
            &pp,
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = c.resources.as_ref() {
        errs.extend(resources(r, &format!("{p}.resources")));
    }
    errs
}

/// `validateContainerPorts`.
fn container_ports(c: &Container, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names_seen: HashSet<&str> = HashSet::new();
    for (i, port) in c.ports.iter().flatten().enumerate() {
        let p = format!("{path}[{i}]");
        if let Some(n) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = names::is_valid_port_name(n);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(&format!("{p}.name"), n, &msg));
                }
            } else if !names_seen.insert(n) {
                errs.push(FieldError::duplicate(&format!("{p}.name"), n));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&format!("{p}.containerPort"), ""));
        } else {
            for msg in names::is_valid_port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    &format!("{p}.containerPort"),
                    port.container_port,
                    &msg,
                ));
            }
        }
        if let Some(hp) = port.host_port.filter(|h| *h != 0) {
            for msg in names::is_valid_port_num(i64::from(hp)) {
                errs.push(FieldError::invalid(&format!("{p}.hostPort"), hp, &msg));
            }
        }
        let proto = port.protocol.as_deref().unwrap_or("");
        match proto {
            "TCP" | "UDP" | "SCTP" => {}
            "" => errs.push(FieldError::required(&format!("{p}.protocol"), "")),
            other => errs.push(FieldError::not_supported(
                &format!("{p}.protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
    }
    errs
}

/// `AccumulateUniqueHostPorts`: a protocol/hostIP/hostPort triple is used
/// once across all containers of a pod.
fn unique_host_ports(cs: &[Container], path: &str, seen: &mut HashSet<String>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (ci, c) in cs.iter().enumerate() {
        for (pi, port) in c.ports.iter().flatten().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{}",
                port.protocol.as_deref().unwrap_or(""),
                port.host_ip.as_deref().unwrap_or(""),
                hp
            );
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &format!("{path}[{ci}].ports[{pi}].hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

/// `ValidatePortNumOrName`.
fn port_num_or_name(port: &IntOrString, path: &str) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => names::is_valid_port_num(i64::from(*n))
            .into_iter()
            .map(|m| FieldError::invalid(path, *n, &m))
            .collect(),
        IntOrString::String(s) => names::is_valid_port_name(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, s.as_str(), &m))
            .collect(),
    }
}

/// `ValidateEnv` with relaxed names (RelaxedEnvironmentVariableValidation,
/// on by default since 1.32) and `validateEnvVarValueFrom`.
fn env(vars: &[EnvVar], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if ev.name.is_empty() {
            errs.push(FieldError::required(&format!("{p}.name"), ""));
        } else {
            for msg in names::is_relaxed_env_var_name(&ev.name) {
                errs.push(FieldError::invalid(
                    &format!("{p}.name"),
                    ev.name.as_str(),
                    &msg,
                ));
            }
        }
        let Some(src) = ev.value_from.as_ref() else {
            continue;
        };
        let vp = format!("{p}.valueFrom");
        let mut n = 0;
        if let Some(f) = src.field_ref.as_ref() {
            n += 1;
            errs.extend(env_field_path(
                &f.field_path,
                &format!("{vp}.fieldRef.fieldPath"),
            ));
        }
        if let Some(r) = src.resource_field_ref.as_ref() {
            n += 1;
            if r.resource.is_empty() {
                errs.push(FieldError::required(
                    &format!("{vp}.resourceFieldRef.resource"),
                    "",
                ));
            }
        }
        if let Some(r) = src.config_map_key_ref.as_ref() {
            n += 1;
            if r.name.is_empty() {
                errs.push(FieldError::required(
                    &format!("{vp}.configMapKeyRef.name"),
                    "",
                ));
            }
            if r.key.is_empty() {
                errs.push(FieldError::required(
                    &format!("{vp}.configMapKeyRef.key"),
                    "",
                ));
            }
        }
        if let Some(r) = src.secret_key_ref.as_ref() {
            n += 1;
            if r.name.is_empty() {
                errs.push(FieldError::required(&format!("{vp}.secretKeyRef.name"), ""));
            }
            if r.key.is_empty() {
                errs.push(FieldError::required(&format!("{vp}.secretKeyRef.key"), ""));
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        } else if !ev.value.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        }
    }
    errs
}

/// The downward API field paths an env var may reference.
fn env_field_path(fp: &str, path: &str) -> Vec<FieldError> {
    const SUPPORTED: [&str; 11] = [
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    ];
    if fp.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    // `metadata.labels['key']` and `metadata.annotations['key']` select one entry.
    for prefix in ["metadata.labels[", "metadata.annotations["] {
        if let Some(rest) = fp.strip_prefix(prefix) {
            if rest.starts_with('\'') && rest.ends_with("']") && rest.len() >= 4 {
                return vec![];
            }
            return vec![FieldError::invalid(path, fp, "error converting fieldPath")];
        }
    }
    // Whole label/annotation maps are only for volumes, not env vars.
    let env_ok = &SUPPORTED[2..];
    if env_ok.contains(&fp) {
        vec![]
    } else {
        vec![FieldError::not_supported(path, fp, env_ok)]
    }
}

/// Which probe a probe is; liveness and startup need successThreshold 1,
/// readiness may not set terminationGracePeriodSeconds.
#[derive(Clone, Copy, PartialEq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

/// `validateProbe` plus the liveness/readiness/startup specifics.
fn probe_rules(p: Option<&Probe>, path: &str, kind: ProbeKind) -> Vec<FieldError> {
    let Some(p) = p else {
        return vec![];
    };
    let mut errs = handler(
        &[
            ("exec", p.exec.is_some()),
            ("httpGet", p.http_get.is_some()),
            ("tcpSocket", p.tcp_socket.is_some()),
            ("grpc", p.grpc.is_some()),
        ],
        path,
    );
    if let Some(e) = p.exec.as_ref()
        && e.command.as_ref().is_none_or(|c| c.is_empty())
    {
        errs.push(FieldError::required(&format!("{path}.exec.command"), ""));
    }
    if let Some(g) = p.http_get.as_ref() {
        errs.extend(http_get(g, &format!("{path}.httpGet")));
    }
    if let Some(t) = p.tcp_socket.as_ref() {
        errs.extend(port_num_or_name(&t.port, &format!("{path}.tcpSocket.port")));
    }
    if let Some(g) = p.grpc.as_ref() {
        for msg in names::is_valid_port_num(i64::from(g.port)) {
            errs.push(FieldError::invalid(
                &format!("{path}.grpc.port"),
                g.port,
                &msg,
            ));
        }
    }
    for (n, v) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        errs.extend(super::nonnegative(
            i64::from(v.unwrap_or(0)),
            &format!("{path}.{n}"),
        ));
    }
    if let Some(t) = p.termination_grace_period_seconds
        && t <= 0
    {
        errs.push(FieldError::invalid(
            &format!("{path}.terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            let st = p.success_threshold.unwrap_or(0);
            if st != 1 {
                errs.push(FieldError::invalid(
                    &format!("{path}.successThreshold"),
                    st,
                    "must be 1",
                ));
            }
        }
        ProbeKind::Readiness => {
            if let Some(t) = p.termination_grace_period_seconds {
                errs.push(FieldError::invalid(
                    &format!("{path}.terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
    errs
}

/// `validateHandler`'s count: exactly one handler type.
fn handler(present: &[(&str, bool)], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut n = 0;
    for (name, set) in present {
        if *set {
            if n > 0 {
                errs.push(FieldError::forbidden(
                    &format!("{path}.{name}"),
                    "may not specify more than 1 handler type",
                ));
            } else {
                n += 1;
            }
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// A postStart/preStop hook.
fn lifecycle_handler(h: &LifecycleHandler, path: &str) -> Vec<FieldError> {
    let mut errs = handler(
        &[
            ("exec", h.exec.is_some()),
            ("httpGet", h.http_get.is_some()),
            ("tcpSocket", h.tcp_socket.is_some()),
            ("sleep", h.sleep.is_some()),
        ],
        path,
    );
    if let Some(e) = h.exec.as_ref()
        && e.command.as_ref().is_none_or(|c| c.is_empty())
    {
        errs.push(FieldError::required(&format!("{path}.exec.command"), ""));
    }
    if let Some(g) = h.http_get.as_ref() {
        errs.extend(http_get(g, &format!("{path}.httpGet")));
    }
    if let Some(t) = h.tcp_socket.as_ref() {
        errs.extend(port_num_or_name(&t.port, &format!("{path}.tcpSocket.port")));
    }
    if let Some(s) = h.sleep.as_ref()
        && s.seconds < 0
    {
        errs.push(FieldError::invalid(
            &format!("{path}.sleep.seconds"),
            s.seconds,
            "must be non-negative and less than terminationGracePeriodSeconds",
        ));
    }
    errs
}

/// `validateHTTPGetAction`.
fn http_get(g: &HTTPGetAction, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if g.path.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(&format!("{path}.path"), ""));
    }
    errs.extend(port_num_or_name(&g.port, &format!("{path}.port")));
    let scheme = g.scheme.as_deref().unwrap_or("");
    if scheme != "HTTP" && scheme != "HTTPS" {
        errs.push(FieldError::not_supported(
            &format!("{path}.scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for h in g.http_headers.iter().flatten() {
        // `IsHTTPHeaderName`: an RFC 7230 token.
        let ok = !h.name.is_empty()
            && h.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
        if !ok {
            errs.push(FieldError::invalid(
                &format!("{path}.httpHeaders"),
                h.name.as_str(),
                "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
            ));
        }
    }
    errs
}

/// `ValidateResourceRequirements` for a container: resource names,
/// quantities (syntax, non-negative, integers where required) and
/// requests not above limits.
fn resources(r: &ResourceRequirements, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lim_path = format!("{path}.limits");
    let req_path = format!("{path}.requests");
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let mut parsed_limits = BTreeMap::new();
    for (name, q) in limits {
        let p = format!("{lim_path}[{name}]");
        errs.extend(resource_name(name, &p));
        if let Some(v) = quantity_value(name, q, &p, &mut errs) {
            parsed_limits.insert(name.as_str(), v);
        }
    }
    for (name, q) in requests {
        let p = format!("{req_path}[{name}]");
        errs.extend(resource_name(name, &p));
        let Some(v) = quantity_value(name, q, &p, &mut errs) else {
            continue;
        };
        match (limits.get(name), parsed_limits.get(name.as_str())) {
            (Some(lq), Some(l)) => {
                let ord = qty::cmp(&v, l);
                if ord != std::cmp::Ordering::Equal && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        qty::canonical(&v, &q.0),
                        &format!(
                            "must be equal to {name} limit of {}",
                            qty::canonical(l, &lq.0)
                        ),
                    ));
                } else if ord == std::cmp::Ordering::Greater {
                    errs.push(FieldError::invalid(
                        &req_path,
                        qty::canonical(&v, &q.0),
                        &format!(
                            "must be less than or equal to {name} limit of {}",
                            qty::canonical(l, &lq.0)
                        ),
                    ));
                }
            }
            (None, _) if !overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            _ => {}
        }
    }
    errs
}

/// Parse one quantity and apply `ValidateResourceQuantityValue`; a
/// quantity that does not parse is reported with the text upstream's
/// decoder gives (upstream fails the whole request with 400 there).
fn quantity_value(
    name: &str,
    q: &Quantity,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<pernode_core::quantity::Quantity> {
    let v = match qty::parse(&q.0) {
        Ok(v) => v,
        Err(_) => {
            errs.push(FieldError::invalid(
                path,
                q.0.as_str(),
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ));
            return None;
        }
    };
    if qty::is_negative(&v) {
        errs.push(FieldError::invalid(
            path,
            qty::canonical(&v, &q.0),
            "must be greater than or equal to 0",
        ));
    }
    if is_integer_resource(name) && !qty::is_integer(&v) {
        errs.push(FieldError::invalid(
            path,
            qty::canonical(&v, &q.0),
            "must be an integer",
        ));
    }
    Some(v)
}

/// Native resources are unprefixed or in the `kubernetes.io/` domain.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsOvercommitAllowed`: native resources other than hugepages.
fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !name.starts_with("hugepages-")
}

/// `IsIntegerResourceName`: extended resources (and the legacy GPU name).
fn is_integer_resource(name: &str) -> bool {
    !is_native(name) && !name.starts_with("requests.")
}

/// `validateContainerResourceName`.
fn resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let mut errs: Vec<FieldError> = names::is_qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, &m))
        .collect();
    if !name.contains('/') {
        let standard = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !standard {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && name.starts_with("requests.") {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}
