//! Resource limits through cgroup v2, where the agent may write: one cgroup per container
//! under a parent the agent owns, with `memory.max` and `cpu.max` from the container's limits.
//! Where no writable cgroup v2 hierarchy with the memory and cpu controllers exists, limits
//! are not enforced (the agent says so once at startup).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

/// The `cpu.max` period, as the kubelet uses (100 ms).
const CPU_PERIOD_US: i128 = 100_000;
/// The kernel's smallest quota (1 ms).
const MIN_QUOTA_US: i128 = 1_000;

/// A parent cgroup under which containers get their own.
#[derive(Clone, Debug)]
pub struct Cgroups {
    parent: PathBuf,
}

/// `memory.max` for the container's memory limit, in bytes.
pub fn memory_max(container: &Container) -> Option<String> {
    let q = limit(container, "memory")?;
    Some(q.value().max(0).to_string())
}

/// `cpu.max` (`quota period`, microseconds) for the container's cpu limit.
pub fn cpu_max(container: &Container) -> Option<String> {
    let q = limit(container, "cpu")?;
    let quota = (q.milli_value() * CPU_PERIOD_US / 1000).max(MIN_QUOTA_US);
    Some(format!("{quota} {CPU_PERIOD_US}"))
}

fn limit(container: &Container, name: &str) -> Option<pernode_core::quantity::Quantity> {
    let q = container.resources.as_ref()?.limits.as_ref()?.get(name)?;
    pernode_core::quantity::parse_quantity(&q.0).ok()
}

impl Cgroups {
    /// Uses `parent` (created if missing) and enables the memory and cpu controllers for its
    /// children. Fails when the hierarchy is not cgroup v2 or not writable.
    pub fn new(parent: &Path) -> std::io::Result<Cgroups> {
        std::fs::create_dir_all(parent)?;
        let controllers = std::fs::read_to_string(parent.join("cgroup.controllers"))?;
        for needed in ["memory", "cpu"] {
            if !controllers.split_whitespace().any(|c| c == needed) {
                return Err(std::io::Error::other(format!(
                    "the {needed} controller is not available in {}",
                    parent.display()
                )));
            }
        }
        std::fs::write(parent.join("cgroup.subtree_control"), "+memory +cpu")?;
        Ok(Cgroups {
            parent: parent.to_path_buf(),
        })
    }

    /// The default parent: `pernode-<node>` at the root of the mounted cgroup v2 hierarchy
    /// (the root may hold processes and delegate controllers, unlike the agent's own cgroup).
    pub fn detect(node: &str) -> std::io::Result<Cgroups> {
        let mounts = std::fs::read_to_string("/proc/self/mounts")?;
        let root = mounts
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (_, mount, fstype) = (f.next()?, f.next()?, f.next()?);
                (fstype == "cgroup2").then(|| PathBuf::from(mount))
            })
            .next()
            .ok_or_else(|| std::io::Error::other("no cgroup v2 hierarchy is mounted"))?;
        Cgroups::new(&root.join(format!("pernode-{node}")))
    }

    /// The cgroup of one container.
    pub fn path(&self, pod_uid: &str, container: &str) -> PathBuf {
        self.parent.join(format!("pod{pod_uid}")).join(container)
    }

    /// Creates the container's cgroup with its limits and moves `pid` into it.
    pub fn place(&self, pod_uid: &str, container: &Container, pid: u32) -> std::io::Result<()> {
        let pod_dir = self.parent.join(format!("pod{pod_uid}"));
        std::fs::create_dir_all(&pod_dir)?;
        // Children of the pod cgroup need the controllers too (best effort: a fake or partial
        // hierarchy may refuse, and then only the limits we can write apply).
        let _ = std::fs::write(pod_dir.join("cgroup.subtree_control"), "+memory +cpu");
        let dir = self.path(pod_uid, &container.name);
        std::fs::create_dir_all(&dir)?;
        if let Some(m) = memory_max(container) {
            std::fs::write(dir.join("memory.max"), m)?;
        }
        if let Some(c) = cpu_max(container) {
            std::fs::write(dir.join("cpu.max"), c)?;
        }
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
    }

    /// Removes the pod's cgroups (they must be empty; leftovers are harmless).
    pub fn remove_pod(&self, pod_uid: &str) {
        let pod_dir = self.parent.join(format!("pod{pod_uid}"));
        if let Ok(entries) = std::fs::read_dir(&pod_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let _ = std::fs::remove_dir(&pod_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn container(cpu: &str, memory: &str) -> Container {
        Container {
            name: "app".into(),
            resources: Some(ResourceRequirements {
                limits: Some(
                    [
                        ("cpu".to_string(), Quantity(cpu.into())),
                        ("memory".to_string(), Quantity(memory.into())),
                    ]
                    .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn limits_become_cgroup_values() {
        let c = container("500m", "64Mi");
        assert_eq!(memory_max(&c).as_deref(), Some("67108864"));
        assert_eq!(cpu_max(&c).as_deref(), Some("50000 100000"));
        assert_eq!(
            cpu_max(&container("2", "1G")).as_deref(),
            Some("200000 100000")
        );
        assert_eq!(
            cpu_max(&container("1m", "1")).as_deref(),
            Some("1000 100000")
        );
        assert_eq!(memory_max(&Container::default()), None);
    }

    #[test]
    fn place_writes_limits_and_pid_into_a_writable_hierarchy() {
        // A directory standing in for a cgroup v2 mount: the files are plain files here.
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids",
        )
        .expect("controllers");
        let cg = Cgroups::new(dir.path()).expect("cgroups");
        cg.place("u1", &container("250m", "1Gi"), 4242)
            .expect("place");
        let p = cg.path("u1", "app");
        let read = |f: &str| std::fs::read_to_string(p.join(f)).expect(f);
        assert_eq!(read("memory.max"), "1073741824");
        assert_eq!(read("cpu.max"), "25000 100000");
        assert_eq!(read("cgroup.procs"), "4242");
        let missing = tempfile::tempdir().expect("tempdir");
        std::fs::write(missing.path().join("cgroup.controllers"), "pids").expect("controllers");
        assert!(Cgroups::new(missing.path()).is_err());
    }
}
