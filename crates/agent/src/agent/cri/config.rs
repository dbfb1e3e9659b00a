//! A pod and its containers as the CRI's configurations, as the kubelet's kuberuntime builds
//! them: the pod sandbox (`generatePodSandboxConfig`: metadata, labels, log directory,
//! namespaces, cgroup parent, sysctls), the container (`generateContainerConfig`: command and
//! args with `$(VAR)` expanded, env, mounts, log path) and its Linux part
//! (`generateLinuxContainerConfig`: resources as cpu shares/quota/period and a memory limit,
//! the security context). Pure functions, so they are tested without a runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::{Container, Pod, SecurityContext};

use crate::agent::env;
use crate::agent::mounts::MountSpec;

/// Labels the kubelet puts on sandboxes and containers (and finds them by).
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

/// cgroup cpu shares: the smallest the kernel takes, the largest, and per CPU.
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
const SHARES_PER_CPU: i64 = 1024;
/// CFS quota period the kubelet uses (100 ms) and the smallest quota (1 ms), microseconds.
pub const QUOTA_PERIOD: i64 = 100_000;
const MIN_QUOTA_PERIOD: i64 = 1_000;

/// Upstream's `MilliCPUToShares`.
pub fn milli_cpu_to_shares(milli_cpu: i64) -> i64 {
    if milli_cpu == 0 {
        return MIN_SHARES;
    }
    (milli_cpu * SHARES_PER_CPU / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// Upstream's `MilliCPUToQuota` (0: no quota).
pub fn milli_cpu_to_quota(milli_cpu: i64, period: i64) -> i64 {
    if milli_cpu == 0 {
        return 0;
    }
    (milli_cpu * period / 1000).max(MIN_QUOTA_PERIOD)
}

fn quantity(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
    name: &str,
) -> Option<pernode_core::quantity::Quantity> {
    let q = map?.get(name)?;
    pernode_core::quantity::parse_quantity(&q.0).ok()
}

/// The container's resources as the CRI's Linux resources (kubelet's
/// `calculateLinuxResources`): shares from the cpu request (the limit when only that is
/// set), quota from the cpu limit, the memory limit in bytes.
pub fn linux_resources(container: &Container) -> cri::LinuxContainerResources {
    let res = container.resources.as_ref();
    let requests = res.and_then(|r| r.requests.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    let milli =
        |q: pernode_core::quantity::Quantity| i64::try_from(q.milli_value()).unwrap_or(i64::MAX);
    let cpu_request = quantity(requests, "cpu").map(milli);
    let cpu_limit = quantity(limits, "cpu").map(milli);
    let mut out = cri::LinuxContainerResources {
        cpu_shares: milli_cpu_to_shares(cpu_request.or(cpu_limit).unwrap_or(0)),
        ..Default::default()
    };
    if let Some(limit) = cpu_limit {
        out.cpu_period = QUOTA_PERIOD;
        out.cpu_quota = milli_cpu_to_quota(limit, QUOTA_PERIOD);
    }
    if let Some(mem) = quantity(limits, "memory") {
        out.memory_limit_in_bytes = i64::try_from(mem.value()).unwrap_or(i64::MAX).max(0);
    }
    out
}

fn namespace_mode(node: bool, otherwise: cri::NamespaceMode) -> i32 {
    if node {
        cri::NamespaceMode::Node as i32
    } else {
        otherwise as i32
    }
}

/// The pod's namespaces (kubelet's `namespacesForPod`): the node's network, PID and IPC
/// namespaces for `hostNetwork`, `hostPID`, `hostIPC`; otherwise the pod's network and IPC,
/// and the container's own PID namespace unless `shareProcessNamespace`.
pub fn namespace_options(pod: &Pod) -> cri::NamespaceOption {
    let spec = pod.spec.clone().unwrap_or_default();
    let pid_otherwise = if spec.share_process_namespace == Some(true) {
        cri::NamespaceMode::Pod
    } else {
        cri::NamespaceMode::Container
    };
    cri::NamespaceOption {
        network: namespace_mode(spec.host_network == Some(true), cri::NamespaceMode::Pod),
        pid: namespace_mode(spec.host_pid == Some(true), pid_otherwise),
        ipc: namespace_mode(spec.host_ipc == Some(true), cri::NamespaceMode::Pod),
        ..Default::default()
    }
}

/// The directory of a pod's container logs (kubelet's `BuildPodLogsDirectory`).
pub fn pod_log_dir(logs_root: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    logs_root.join(format!("{namespace}_{name}_{uid}"))
}

/// A container instance's log file relative to the pod's log directory
/// (`<container>/<restart count>.log`, here the agent's instance number).
pub fn container_log_path(container: &str, instance: u32) -> String {
    format!("{container}/{instance}.log")
}

/// The cgroup the pod's containers go under (cgroupfs driver).
pub fn cgroup_parent(node: &str, uid: &str) -> String {
    format!("/pernode-{node}/pod{uid}")
}

fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let m = &pod.metadata;
    let mut labels: HashMap<String, String> =
        m.labels.clone().unwrap_or_default().into_iter().collect();
    labels.insert(POD_NAME_LABEL.into(), m.name.clone().unwrap_or_default());
    labels.insert(
        POD_NAMESPACE_LABEL.into(),
        m.namespace.clone().unwrap_or_default(),
    );
    labels.insert(POD_UID_LABEL.into(), m.uid.clone().unwrap_or_default());
    labels
}

/// The pod's sandbox configuration.
pub fn sandbox_config(pod: &Pod, node: &str, logs_root: &Path) -> cri::PodSandboxConfig {
    let m = &pod.metadata;
    let spec = pod.spec.clone().unwrap_or_default();
    let (ns, name, uid) = (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
        m.uid.clone().unwrap_or_default(),
    );
    let pod_sc = spec.security_context.clone().unwrap_or_default();
    let privileged = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .any(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true));
    // On the node's network the pod shares the node's UTS namespace and its hostname: the
    // runtime may set none (runc refuses a hostname without a private UTS namespace).
    let hostname = if spec.host_network == Some(true) {
        String::new()
    } else {
        let mut h = spec.hostname.clone().unwrap_or_else(|| name.clone());
        h.truncate(63);
        h
    };
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.clone(),
            uid: uid.clone(),
            namespace: ns.clone(),
            attempt: 0,
        }),
        hostname,
        log_directory: pod_log_dir(logs_root, &ns, &name, &uid)
            .display()
            .to_string(),
        labels: pod_labels(pod),
        annotations: m
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent(node, &uid),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: pod_sc.run_as_user.map(|v| cri::Int64Value { value: v }),
                run_as_group: pod_sc.run_as_group.map(|v| cri::Int64Value { value: v }),
                supplemental_groups: pod_sc
                    .fs_group
                    .into_iter()
                    .chain(pod_sc.supplemental_groups.iter().flatten().copied())
                    .collect(),
                privileged,
                ..Default::default()
            }),
            sysctls: pod_sc
                .sysctls
                .iter()
                .flatten()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The container's security context over the pod's (kubelet's
/// `determineEffectiveSecurityContext`) as the CRI's.
pub fn security_context(pod: &Pod, container: &Container) -> cri::LinuxContainerSecurityContext {
    let pod_sc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let sc: SecurityContext = container.security_context.clone().unwrap_or_default();
    let caps = sc.capabilities.clone().unwrap_or_default();
    cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            add_capabilities: caps.add.unwrap_or_default(),
            drop_capabilities: caps.drop.unwrap_or_default(),
            ..Default::default()
        }),
        privileged: sc.privileged == Some(true),
        namespace_options: Some(namespace_options(pod)),
        run_as_user: sc
            .run_as_user
            .or(pod_sc.run_as_user)
            .map(|v| cri::Int64Value { value: v }),
        run_as_group: sc
            .run_as_group
            .or(pod_sc.run_as_group)
            .map(|v| cri::Int64Value { value: v }),
        readonly_rootfs: sc.read_only_root_filesystem == Some(true),
        supplemental_groups: pod_sc
            .fs_group
            .into_iter()
            .chain(pod_sc.supplemental_groups.iter().flatten().copied())
            .collect(),
        // Upstream sets no_new_privs only when escalation is explicitly refused.
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        ..Default::default()
    }
}

/// The container instance's configuration. `image` is the reference the runtime resolved.
pub fn container_config(
    pod: &Pod,
    container: &Container,
    instance: u32,
    image: &str,
    env_vars: &[(String, String)],
    mounts: &[MountSpec],
) -> cri::ContainerConfig {
    let vars: HashMap<String, String> = env_vars.iter().cloned().collect();
    let expand = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter().flatten().map(|a| env::expand(a, &vars)).collect()
    };
    let mut labels = HashMap::new();
    let m = &pod.metadata;
    labels.insert(
        POD_NAME_LABEL.to_string(),
        m.name.clone().unwrap_or_default(),
    );
    labels.insert(
        POD_NAMESPACE_LABEL.to_string(),
        m.namespace.clone().unwrap_or_default(),
    );
    labels.insert(POD_UID_LABEL.to_string(), m.uid.clone().unwrap_or_default());
    labels.insert(CONTAINER_NAME_LABEL.to_string(), container.name.clone());
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: container.name.clone(),
            attempt: instance,
        }),
        image: Some(cri::ImageSpec {
            image: image.to_string(),
            user_specified_image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand(&container.command),
        args: expand(&container.args),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: env_vars
            .iter()
            .map(|(k, v)| cri::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        mounts: mounts
            .iter()
            .map(|m| cri::Mount {
                container_path: m.target.display().to_string(),
                host_path: m.source.display().to_string(),
                readonly: m.read_only,
                ..Default::default()
            })
            .collect(),
        labels,
        log_path: container_log_path(&container.name, instance),
        stdin: container.stdin == Some(true),
        stdin_once: container.stdin_once == Some(true),
        tty: container.tty == Some(true),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(linux_resources(container)),
            security_context: Some(security_context(pod, container)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).expect("pod")
    }

    #[test]
    fn cpu_conversions_match_the_kubelet() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1_000_000), 262_144);
        assert_eq!(milli_cpu_to_quota(0, QUOTA_PERIOD), 0);
        assert_eq!(milli_cpu_to_quota(5, QUOTA_PERIOD), 1000);
        assert_eq!(milli_cpu_to_quota(250, QUOTA_PERIOD), 25_000);
    }

    #[test]
    fn resources_and_security_become_the_cris() {
        let p = pod(r#"
metadata: {name: p, namespace: ns, uid: u1, labels: {app: a}}
spec:
  hostNetwork: true
  hostPID: true
  securityContext: {runAsUser: 1000, fsGroup: 2000}
  containers:
  - name: c
    image: img:1
    command: [sh, -c, "echo $(WHO)"]
    args: ["$(WHO)", "$(MISSING)"]
    resources:
      requests: {cpu: 250m}
      limits: {cpu: 500m, memory: 64Mi}
    securityContext:
      privileged: true
      allowPrivilegeEscalation: false
      capabilities: {add: [NET_ADMIN], drop: [ALL]}
"#);
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let env = vec![("WHO".to_string(), "me".to_string())];
        let mounts = vec![MountSpec {
            source: "/var/lib/v".into(),
            target: "/etc/cfg".into(),
            read_only: true,
        }];
        let cfg = container_config(&p, c, 3, "sha256:abc", &env, &mounts);
        assert_eq!(cfg.command, ["sh", "-c", "echo me"]);
        assert_eq!(cfg.args, ["me", "$(MISSING)"]);
        assert_eq!(cfg.log_path, "c/3.log");
        assert_eq!(cfg.metadata.as_ref().map(|m| m.attempt), Some(3));
        assert_eq!(cfg.mounts[0].container_path, "/etc/cfg");
        assert!(cfg.mounts[0].readonly);
        let linux = cfg.linux.expect("linux");
        let r = linux.resources.expect("resources");
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period),
            (256, 50_000, 100_000)
        );
        assert_eq!(r.memory_limit_in_bytes, 64 << 20);
        let sc = linux.security_context.expect("security context");
        assert!(sc.privileged && sc.no_new_privs);
        assert_eq!(sc.run_as_user.map(|v| v.value), Some(1000));
        assert_eq!(sc.supplemental_groups, [2000]);
        let caps = sc.capabilities.expect("caps");
        assert_eq!(
            (caps.add_capabilities, caps.drop_capabilities),
            (vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()])
        );
        let ns = sc.namespace_options.expect("namespaces");
        assert_eq!(ns.network, cri::NamespaceMode::Node as i32);
        assert_eq!(ns.pid, cri::NamespaceMode::Node as i32);
        assert_eq!(ns.ipc, cri::NamespaceMode::Pod as i32);

        let sb = sandbox_config(&p, "n1", Path::new("/var/log/pods"));
        assert_eq!(sb.log_directory, "/var/log/pods/ns_p_u1");
        assert_eq!(sb.hostname, "", "the node's hostname on the node's network");
        assert_eq!(sb.labels[POD_UID_LABEL], "u1");
        assert_eq!(sb.labels["app"], "a");
        let linux = sb.linux.expect("linux");
        assert_eq!(linux.cgroup_parent, "/pernode-n1/podu1");
        assert!(linux.security_context.expect("sc").privileged);

        // Only a cpu limit: shares from the limit; nothing set: the minimum shares.
        let only_limit = pod(
            "metadata: {name: q}\nspec:\n  containers:\n  - {name: c, resources: {limits: {cpu: '1'}}}\n  - {name: d}\n",
        );
        let cs = &only_limit.spec.as_ref().expect("spec").containers;
        assert_eq!(linux_resources(&cs[0]).cpu_shares, 1024);
        let none = linux_resources(&cs[1]);
        assert_eq!(
            (none.cpu_shares, none.cpu_quota, none.memory_limit_in_bytes),
            (2, 0, 0)
        );
        let default_ns = namespace_options(&only_limit);
        assert_eq!(default_ns.network, cri::NamespaceMode::Pod as i32);
        assert_eq!(default_ns.pid, cri::NamespaceMode::Container as i32);
    }
}
