//! Defaulting, as kube-apiserver applies it before validation.
//!
//! Ports `pkg/apis/core/v1/defaults.go` and `pkg/apis/apps/v1/defaults.go`
//! (the `SetDefaults_*` functions the scheme runs on decode), plus the
//! mutations of the admission plugins a plain pod create goes through
//! (Priority, DefaultTolerationSeconds; ServiceAccount reads other objects
//! and is the API server's). Every function only fills
//! what is missing; it never overwrites a value the client gave.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{
    Container, HTTPGetAction, Namespace, NamespaceStatus, Node, Pod, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, Toleration, Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `SetDefaults_DaemonSet` plus the pod template's defaults.
///
/// `updateStrategy.type` RollingUpdate; for RollingUpdate a missing
/// `rollingUpdate` is created and its missing `maxUnavailable`/`maxSurge`
/// become 1 and 0 (OnDelete leaves `rollingUpdate` alone);
/// `revisionHistoryLimit` 10.
pub fn daemon_set(ds: &mut DaemonSet) {
    let Some(spec) = ds.spec.as_mut() else {
        return;
    };
    let strategy = spec
        .update_strategy
        .get_or_insert_with(DaemonSetUpdateStrategy::default);
    if strategy.type_.as_deref().unwrap_or("").is_empty() {
        strategy.type_ = Some("RollingUpdate".to_string());
    }
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        if ru.max_unavailable.is_none() {
            ru.max_unavailable = Some(IntOrString::Int(1));
        }
        if ru.max_surge.is_none() {
            ru.max_surge = Some(IntOrString::Int(0));
        }
    }
    if spec.revision_history_limit.is_none() {
        spec.revision_history_limit = Some(10);
    }
    pod_template_spec(&mut spec.template);
}

/// Defaults of a pod template (the pod spec's, when there is one).
pub fn pod_template_spec(t: &mut PodTemplateSpec) {
    // Upstream's internal PodTemplateSpec always has a spec; an absent one
    // round-trips as an empty spec that then gets the usual defaults.
    pod_spec(t.spec.get_or_insert_with(PodSpec::default));
}

/// `SetDefaults_PodSpec` and the defaults of everything inside it.
pub fn pod_spec(spec: &mut PodSpec) {
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.restart_policy, "Always");
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(30);
    }
    if spec.security_context.is_none() {
        spec.security_context = Some(PodSecurityContext::default());
    }
    set_if_empty(&mut spec.scheduler_name, "default-scheduler");
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
    // The v1 conversion keeps the deprecated `serviceAccount` alias in step
    // with `serviceAccountName` (the name wins; the alias fills a gap).
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or("")
        .is_empty()
        && !spec.service_account.as_deref().unwrap_or("").is_empty()
    {
        spec.service_account_name = spec.service_account.clone();
    }
    if spec.service_account_name.is_some() {
        spec.service_account = spec.service_account_name.clone();
    }
    let host_network = spec.host_network.unwrap_or(false);
    for c in spec.containers.iter_mut() {
        container(c, host_network);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        container(c, host_network);
    }
    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
}

/// `SetDefaults_Container`, its ports and probes; with host networking a
/// missing `hostPort` becomes the `containerPort` (`defaultHostNetworkPorts`).
fn container(c: &mut Container, host_network: bool) {
    if c.image_pull_policy.as_deref().unwrap_or("").is_empty() {
        let policy = if image_tag(c.image.as_deref().unwrap_or("")).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.image_pull_policy = Some(policy.to_string());
    }
    set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
    set_if_empty(&mut c.termination_message_policy, "File");
    for p in c.ports.iter_mut().flatten() {
        set_if_empty(&mut p.protocol, "TCP");
        if host_network && p.host_port.unwrap_or(0) == 0 {
            p.host_port = Some(p.container_port);
        }
    }
    for p in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        probe(p);
    }
    if let Some(l) = c.lifecycle.as_mut() {
        for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
            if let Some(g) = h.http_get.as_mut() {
                http_get(g);
            }
        }
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(f) = e.value_from.as_mut().and_then(|s| s.field_ref.as_mut()) {
            set_if_empty(&mut f.api_version, "v1");
        }
    }
}

/// `SetDefaults_Probe` and its HTTP action.
fn probe(p: &mut Probe) {
    if p.timeout_seconds.unwrap_or(0) == 0 {
        p.timeout_seconds = Some(1);
    }
    if p.period_seconds.unwrap_or(0) == 0 {
        p.period_seconds = Some(10);
    }
    if p.success_threshold.unwrap_or(0) == 0 {
        p.success_threshold = Some(1);
    }
    if p.failure_threshold.unwrap_or(0) == 0 {
        p.failure_threshold = Some(3);
    }
    if let Some(g) = p.http_get.as_mut() {
        http_get(g);
    }
}

/// `SetDefaults_HTTPGetAction`: path `/`, scheme HTTP.
fn http_get(g: &mut HTTPGetAction) {
    set_if_empty(&mut g.path, "/");
    set_if_empty(&mut g.scheme, "HTTP");
}

/// Volume defaults: a volume without a source is an emptyDir
/// (`SetDefaults_Volume`); file modes 0644; hostPath type "".
fn volume(v: &mut Volume) {
    let has_source = v.aws_elastic_block_store.is_some()
        || v.azure_disk.is_some()
        || v.azure_file.is_some()
        || v.cephfs.is_some()
        || v.cinder.is_some()
        || v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.fc.is_some()
        || v.flex_volume.is_some()
        || v.flocker.is_some()
        || v.gce_persistent_disk.is_some()
        || v.git_repo.is_some()
        || v.glusterfs.is_some()
        || v.host_path.is_some()
        || v.image.is_some()
        || v.iscsi.is_some()
        || v.nfs.is_some()
        || v.persistent_volume_claim.is_some()
        || v.photon_persistent_disk.is_some()
        || v.portworx_volume.is_some()
        || v.projected.is_some()
        || v.quobyte.is_some()
        || v.rbd.is_some()
        || v.scale_io.is_some()
        || v.secret.is_some()
        || v.storageos.is_some()
        || v.vsphere_volume.is_some();
    if !has_source {
        v.empty_dir = Some(Default::default());
    }
    if let Some(h) = v.host_path.as_mut()
        && h.type_.is_none()
    {
        h.type_ = Some(String::new());
    }
    const MODE: i32 = 0o644;
    if let Some(s) = v.secret.as_mut()
        && s.default_mode.is_none()
    {
        s.default_mode = Some(MODE);
    }
    if let Some(s) = v.config_map.as_mut()
        && s.default_mode.is_none()
    {
        s.default_mode = Some(MODE);
    }
    if let Some(s) = v.downward_api.as_mut() {
        if s.default_mode.is_none() {
            s.default_mode = Some(MODE);
        }
        for i in s.items.iter_mut().flatten() {
            if let Some(f) = i.field_ref.as_mut() {
                set_if_empty(&mut f.api_version, "v1");
            }
        }
    }
    if let Some(s) = v.projected.as_mut()
        && s.default_mode.is_none()
    {
        s.default_mode = Some(MODE);
    }
    if let Some(s) = v.iscsi.as_mut() {
        set_if_empty(&mut s.iscsi_interface, "default");
    }
}

/// Defaults of a pod created directly: the pod spec's, requests copied from
/// limits where missing (`SetDefaults_Pod`). What admission adds (service
/// account, priority, [`default_tolerations`]) is the API server's.
pub fn pod(p: &mut Pod) {
    let spec = p.spec.get_or_insert_with(PodSpec::default);
    pod_spec(spec);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        if let Some(r) = c.resources.as_mut()
            && let Some(limits) = r.limits.as_ref()
            && !limits.is_empty()
        {
            let requests = r.requests.get_or_insert_with(BTreeMap::new);
            for (k, v) in limits {
                requests.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

/// What the DefaultTolerationSeconds admission plugin adds to a pod with `tolerations`: a
/// 300 s NoExecute toleration of `node.kubernetes.io/not-ready` (resp. `unreachable`) unless
/// one already covers it. (An admission plugin's, not defaulting: the API server adds these
/// after recording the creator's fields, as upstream's.)
pub fn default_tolerations(tolerations: &[Toleration]) -> Vec<Toleration> {
    const NOT_READY: &str = "node.kubernetes.io/not-ready";
    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
    // Upstream counts a toleration as covering the taint when its key is the
    // taint's or empty and its effect is NoExecute or empty.
    let covers = |key: &str| {
        tolerations.iter().any(|t| {
            let k = t.key.as_deref().unwrap_or("");
            let e = t.effect.as_deref().unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    };
    [NOT_READY, UNREACHABLE]
        .into_iter()
        .filter(|key| !covers(key))
        .map(|key| Toleration {
            key: Some(key.to_string()),
            operator: Some("Exists".to_string()),
            effect: Some("NoExecute".to_string()),
            toleration_seconds: Some(300),
            value: None,
        })
        .collect()
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub fn node(n: &mut Node) {
    if let Some(st) = n.status.as_mut()
        && st.allocatable.is_none()
        && st.capacity.is_some()
    {
        st.allocatable = st.capacity.clone();
    }
}

/// Namespace defaults: label `kubernetes.io/metadata.name` = name
/// (`SetDefaults_Namespace`) and phase Active (`SetDefaults_NamespaceStatus`).
/// The `kubernetes` finalizer is the namespace strategy's, on create only (the
/// API server's `namespace_lifecycle`).
pub fn namespace(ns: &mut Namespace) {
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("kubernetes.io/metadata.name".to_string(), name);
    }
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    set_if_empty(&mut status.phase, "Active");
}

/// The tag of an image reference as upstream's `parsers.ParseImageName`
/// reports it: the explicit tag, `latest` when there is neither tag nor
/// digest, `None` with a digest only or when the reference does not parse.
pub fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    // The tag is after the last ':' of the last path component (a ':'
    // earlier belongs to a registry host's port).
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo_last, tag) = match last.rsplit_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (last, None),
    };
    // Reference grammar: repository components are lowercase; a tag is
    // [\w][\w.-]{0,127}. Anything else fails to parse upstream.
    let path_ok = name
        .split('/')
        .skip(usize::from(
            name.contains('/') && is_host(name.split('/').next().unwrap_or("")),
        ))
        .all(|c| {
            let c = if std::ptr::eq(c, last) { repo_last } else { c };
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        });
    if !path_ok {
        return None;
    }
    match tag {
        Some(t) => {
            let valid = !t.is_empty()
                && t.len() <= 128
                && !t.starts_with(['.', '-'])
                && t.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch));
            valid.then(|| t.to_string())
        }
        None if digest.is_some() => None,
        None => Some("latest".to_string()),
    }
}

/// Whether the first component of a reference is a registry host (it has a
/// dot or a port, or is `localhost`), as the reference grammar decides.
fn is_host(c: &str) -> bool {
    c.contains('.') || c.contains(':') || c == "localhost"
}

fn set_if_empty(f: &mut Option<String>, v: &str) {
    if f.as_deref().unwrap_or("").is_empty() {
        *f = Some(v.to_string());
    }
}

/// `SetDefaults_Service` and `SetDefaults_ServicePort`: type ClusterIP, session affinity
/// None, protocol TCP, target port = port, traffic policies Cluster, load balancers
/// allocating node ports.
pub fn service(svc: &mut k8s_openapi::api::core::v1::Service) {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let Some(spec) = svc.spec.as_mut() else {
        return;
    };
    set_if_empty(&mut spec.type_, "ClusterIP");
    set_if_empty(&mut spec.session_affinity, "None");
    let ty = spec.type_.clone().unwrap_or_default();
    for port in spec.ports.iter_mut().flatten() {
        set_if_empty(&mut port.protocol, "TCP");
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    if ty != "ExternalName" {
        set_if_empty(&mut spec.internal_traffic_policy, "Cluster");
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        set_if_empty(&mut spec.external_traffic_policy, "Cluster");
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        spec.allocate_load_balancer_node_ports = Some(true);
    }
    if spec.session_affinity.as_deref() == Some("ClientIP") {
        let config = spec
            .session_affinity_config
            .get_or_insert_with(Default::default);
        let client_ip = config.client_ip.get_or_insert_with(Default::default);
        client_ip.timeout_seconds.get_or_insert(10800);
    }
}
