//! Each container's own mount namespace, in which its `volumeMounts` are bind-mounted at their
//! `mountPath`, as a container runtime mounts them into a container's root filesystem. Here
//! the root is the host's own: the process sees the host's files, plus its volumes at their
//! paths, and nothing it mounts reaches the host.
//!
//! [`MountPlan::build`] runs in the agent before the spawn: it resolves every mount (sub paths
//! included), creates missing mount points on the host (a runtime creates them in the
//! container's root filesystem, which here is the host's: they stay behind, empty, after the
//! container is gone) and turns every path into a C string. [`MountPlan::apply`] runs in the
//! forked child before `exec` (`pre_exec`), where only async-signal-safe system calls are
//! allowed and nothing may allocate: `unshare(CLONE_NEWNS)`, `/` made recursively slave (the
//! host's later mounts and unmounts still propagate in, nothing propagates out), the bind
//! mounts in path-depth order (so a mount inside another lands on top of it), read-only
//! remounts last (keeping the source's nosuid/nodev/noexec, which an unprivileged remount
//! could not drop), then the working directory entered again, since it may be a mount point.
//!
//! Processes adopted after an agent restart keep the namespace they were started in.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Volume};
use rustix::fs::{Mode, OFlags, StatVfsMountFlags};
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::thread::UnshareFlags;

use super::volumes;

/// One mount as the pod asks for it, resolved to host paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSpec {
    /// What to mount: a volume's directory, a file or directory within it, a host path.
    pub source: PathBuf,
    /// Where the container sees it (`mountPath`).
    pub target: PathBuf,
    pub read_only: bool,
}

/// One bind mount, ready for the child.
#[derive(Debug)]
struct Bind {
    source: CString,
    target: CString,
    /// The target and its ancestors, outermost first: created (errors ignored) in the child,
    /// for mount points inside earlier mounts.
    ancestors: Vec<CString>,
    is_file: bool,
    read_only: bool,
    /// Flags of the source's mount that a read-only remount keeps.
    keep: MountFlags,
}

/// The mounts of one container process.
#[derive(Debug)]
pub struct MountPlan {
    binds: Vec<Bind>,
    working_dir: CString,
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// The flags of the mount `path` is on that a bind remount must keep.
fn kept_flags(path: &Path) -> MountFlags {
    let Ok(st) = rustix::fs::statvfs(path) else {
        return MountFlags::empty();
    };
    let mut keep = MountFlags::empty();
    for (from, to) in [
        (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (StatVfsMountFlags::NODEV, MountFlags::NODEV),
        (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
        (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
        (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
    ] {
        if st.f_flag.contains(from) {
            keep |= to;
        }
    }
    keep
}

impl MountPlan {
    /// Resolves `mounts`, creating missing mount points on the host: a directory, or an empty
    /// file when the source is a file (what runc does in a container's root filesystem).
    pub fn build(mounts: &[MountSpec], working_dir: &Path) -> io::Result<MountPlan> {
        let mut sorted: Vec<&MountSpec> = mounts.iter().collect();
        // Parents before children, as containerd orders a container's mounts.
        sorted.sort_by_key(|m| m.target.components().count());
        let mut binds = Vec::with_capacity(sorted.len());
        for m in sorted {
            let is_file = std::fs::metadata(&m.source)
                .map_err(|e| with_path(e, "reading", &m.source))?
                .is_file();
            let dir = if is_file {
                m.target.parent().unwrap_or(Path::new("/"))
            } else {
                &m.target
            };
            // Inside an earlier mount the child creates it; on the host it is made here.
            if let Err(e) = std::fs::create_dir_all(dir) {
                tracing::debug!(path = %dir.display(), error = %e, "mount point not created on the host");
            }
            if is_file && !m.target.exists() {
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&m.target);
            }
            let ancestors = m
                .target
                .ancestors()
                .filter(|a| !a.as_os_str().is_empty() && *a != Path::new("/"))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(cstring)
                .collect::<io::Result<Vec<_>>>()?;
            binds.push(Bind {
                source: cstring(&m.source)?,
                target: cstring(&m.target)?,
                ancestors,
                is_file,
                read_only: m.read_only,
                keep: kept_flags(&m.source),
            });
        }
        Ok(MountPlan {
            binds,
            working_dir: cstring(working_dir)?,
        })
    }

    /// Enters a new mount namespace and mounts everything. Runs in the forked child: only
    /// system calls on prepared C strings, no allocation.
    pub fn apply(&self) -> io::Result<()> {
        // SAFETY: the child is single-threaded; no other thread shares its fs state.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }?;
        rustix::mount::mount_change(
            c"/",
            MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
        )?;
        for b in &self.binds {
            let last = b.ancestors.len().saturating_sub(1);
            for (i, a) in b.ancestors.iter().enumerate() {
                if b.is_file && i == last {
                    if let Ok(fd) = rustix::fs::open(
                        a.as_c_str(),
                        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o644),
                    ) {
                        drop(fd);
                    }
                } else {
                    let _ = rustix::fs::mkdir(a.as_c_str(), Mode::from_raw_mode(0o755));
                }
            }
            rustix::mount::mount_bind_recursive(b.source.as_c_str(), b.target.as_c_str())?;
        }
        for b in self.binds.iter().filter(|b| b.read_only) {
            rustix::mount::mount_remount(
                b.target.as_c_str(),
                MountFlags::BIND | MountFlags::RDONLY | b.keep,
                c"",
            )?;
        }
        // The working directory was entered before the mounts; it may lie under one.
        let _ = rustix::process::chdir(self.working_dir.as_c_str());
        Ok(())
    }
}

/// The mounts of `container` of the pod `uid` with `volumes`, as the kubelet's `makeMounts`
/// resolves them: the volume's host source, `subPath` (or `subPathExpr` expanded with the
/// container's `env`) within it, created as a directory when missing and refused when it
/// leaves the volume; `readOnly`, always for configMap, secret, downwardAPI and projected
/// volumes. Errors are upstream's (the container waits in `CreateContainerConfigError`).
pub fn container_mounts(
    root: &Path,
    uid: &str,
    volumes: &[Volume],
    container: &Container,
    env: &HashMap<String, String>,
) -> Result<Vec<MountSpec>, String> {
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let volume = volumes.iter().find(|v| v.name == m.name).ok_or_else(|| {
            format!(
                "cannot find volume {:?} to mount into container {:?}",
                m.name, container.name
            )
        })?;
        let source = volumes::volume_source(root, uid, volume).ok_or_else(|| {
            format!(
                "cannot find volume {:?} to mount into container {:?}",
                m.name, container.name
            )
        })?;
        let mut sub_path = m.sub_path.clone().unwrap_or_default();
        if let Some(expr) = m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            sub_path = super::env::expand(expr, env);
        }
        let source = if sub_path.is_empty() {
            source
        } else {
            sub_path_source(&source, &sub_path, &m.name, &container.name)?
        };
        let target = Path::new("/").join(&m.mount_path);
        out.push(MountSpec {
            source,
            target,
            read_only: m.read_only.unwrap_or(false) || volumes::always_read_only(volume),
        });
    }
    Ok(out)
}

/// `subPath` within the volume at `volume`: made (a directory) when missing, resolved through
/// symlinks, and refused unless it stays inside the volume.
fn sub_path_source(
    volume: &Path,
    sub_path: &str,
    mount: &str,
    container: &str,
) -> Result<PathBuf, String> {
    if sub_path.starts_with('/') {
        return Err(format!(
            "error SubPath `{sub_path}` must not be an absolute path"
        ));
    }
    if sub_path.split('/').any(|p| p == "..") {
        return Err(format!(
            "unable to provision SubPath `{sub_path}`: must not contain '..'"
        ));
    }
    let prepare_failed = || {
        format!("failed to prepare subPath for volumeMount {mount:?} of container {container:?}")
    };
    let base = volume.canonicalize().map_err(|_| prepare_failed())?;
    let path = volume.join(sub_path);
    if std::fs::symlink_metadata(&path).is_err() {
        // Made only under an existing ancestor that is inside the volume.
        let inside = path
            .ancestors()
            .find(|a| std::fs::symlink_metadata(a).is_ok())
            .and_then(|a| a.canonicalize().ok())
            .is_some_and(|a| a.starts_with(&base));
        let made = inside && std::fs::create_dir_all(&path).is_ok();
        if !made {
            return Err(format!(
                "failed to create subPath directory for volumeMount {mount:?} of container {container:?}"
            ));
        }
    }
    let resolved = path.canonicalize().map_err(|_| prepare_failed())?;
    if !resolved.starts_with(&base) {
        return Err(prepare_failed());
    }
    Ok(resolved)
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Whether child processes can get their own mount namespace (root, or CAP_SYS_ADMIN). Forks
/// a child that tries and reports through the spawn error, without executing anything.
pub fn probe() -> Result<(), io::Error> {
    use std::os::unix::process::CommandExt;
    // Returned by the child after a successful unshare, so that nothing is executed.
    const DONE: i32 = rustix::io::Errno::CANCELED.raw_os_error();
    let mut cmd = std::process::Command::new("/");
    // SAFETY: the closure only makes system calls.
    unsafe {
        cmd.pre_exec(|| {
            rustix::thread::unshare_unsafe(UnshareFlags::NEWNS)?;
            rustix::mount::mount_change(
                c"/",
                MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
            )?;
            Err(io::Error::from_raw_os_error(DONE))
        });
    }
    match cmd.spawn() {
        Err(e) if e.raw_os_error() == Some(DONE) => Ok(()),
        Err(e) => Err(e),
        Ok(mut child) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(io::Error::other("the probe unexpectedly executed"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_order_mounts_by_depth_and_create_mount_points() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(&vol).expect("vol");
        std::fs::write(vol.join("f"), "x").expect("file");
        let root = dir.path().join("c");
        let mounts = vec![
            MountSpec {
                source: vol.join("f"),
                target: root.join("a/b/file"),
                read_only: true,
            },
            MountSpec {
                source: vol.clone(),
                target: root.join("a"),
                read_only: false,
            },
        ];
        let plan = MountPlan::build(&mounts, Path::new("/")).expect("plan");
        assert_eq!(plan.binds[0].target, cstring(&root.join("a")).expect("c"));
        assert!(plan.binds[1].is_file && plan.binds[1].read_only);
        assert!(
            root.join("a/b/file").is_file(),
            "a file mount point for a file"
        );
        assert_eq!(
            plan.binds[1].ancestors.last(),
            Some(&cstring(&root.join("a/b/file")).expect("c"))
        );
        let missing = vec![MountSpec {
            source: dir.path().join("nope"),
            target: root.join("x"),
            read_only: false,
        }];
        assert!(MountPlan::build(&missing, Path::new("/")).is_err());
    }

    #[test]
    fn container_mounts_resolve_sub_paths_inside_their_volume() {
        use serde_json::json;
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir.path().join("host");
        std::fs::create_dir_all(host.join("logs")).expect("host dir");
        std::os::unix::fs::symlink("/etc", host.join("escape")).expect("symlink");
        let volumes: Vec<Volume> = serde_json::from_value(json!([
            {"name": "cfg", "configMap": {"name": "c"}},
            {"name": "h", "hostPath": {"path": host.display().to_string()}},
        ]))
        .expect("volumes");
        let container = |mounts: serde_json::Value| -> Container {
            serde_json::from_value(json!({"name": "app", "volumeMounts": mounts}))
                .expect("container")
        };
        let env: HashMap<String, String> = [("POD".to_string(), "p1".to_string())].into();
        let root = dir.path().join("root");
        let m = container_mounts(
            &root,
            "u",
            &volumes,
            &container(json!([
                {"name": "cfg", "mountPath": "/etc/app"},
                {"name": "h", "mountPath": "/var/log/app", "subPathExpr": "logs/$(POD)", "readOnly": false},
                {"name": "h", "mountPath": "/data", "readOnly": true},
            ])),
            &env,
        )
        .expect("mounts");
        assert_eq!(
            m[0].source,
            root.join("pods/u/volumes/kubernetes.io~configmap/cfg")
        );
        assert!(m[0].read_only, "configMap volumes are always read-only");
        let made = host.canonicalize().expect("canonical").join("logs/p1");
        assert_eq!(m[1].source, made);
        assert!(made.is_dir(), "a missing subPath is made");
        assert!(!m[1].read_only && m[2].read_only);

        let err = |mounts| {
            container_mounts(&root, "u", &volumes, &container(mounts), &env).expect_err("refused")
        };
        assert_eq!(
            err(json!([{"name": "nope", "mountPath": "/x"}])),
            "cannot find volume \"nope\" to mount into container \"app\""
        );
        assert_eq!(
            err(json!([{"name": "h", "mountPath": "/x", "subPath": "escape"}])),
            "failed to prepare subPath for volumeMount \"h\" of container \"app\""
        );
        assert_eq!(
            err(json!([{"name": "h", "mountPath": "/x", "subPath": "escape/made"}])),
            "failed to create subPath directory for volumeMount \"h\" of container \"app\""
        );
        assert!(!Path::new("/etc/made").exists());
        assert_eq!(
            err(json!([{"name": "h", "mountPath": "/x", "subPath": "a/../b"}])),
            "unable to provision SubPath `a/../b`: must not contain '..'"
        );
    }
}
