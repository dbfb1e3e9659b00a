//! Pod volumes, as kubelet's volume manager and volume plugins set them up: each volume that
//! is not a host path is a directory `<root>/pods/<uid>/volumes/<plugin>/<name>` (upstream's
//! `kubernetes.io~configmap`, `~secret`, `~downward-api`, `~projected`, `~empty-dir`) whose
//! contents the [`atomic_writer`] writes from what [`payload`] computes: a ConfigMap's or
//! Secret's keys (read through [`sources`], one watch per object), the pod's metadata and
//! resources, and service-account tokens from the TokenRequest API ([`token`]).
//!
//! Secret and projected volumes, and `emptyDir` with `medium: Memory`, are tmpfs mounts (in
//! the agent's mount namespace) when the agent may mount, so secrets and tokens never reach
//! the disk; otherwise plain directories. A hostPath volume is the host's path after upstream's
//! `type` checks. Other volume types cannot be set up here and say so.
//!
//! Setting a volume up again rewrites its files only when they changed, so the pod worker
//! calls [`VolumeHost::set_up`] on every resync; containers see the change through their bind
//! mounts of the directory. A failure is the message upstream's `FailedMount` event carries
//! after `MountVolume.SetUp failed for volume "<name>" : `.

pub mod atomic_writer;
pub mod payload;
pub mod sources;
pub mod token;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Volume};
use tracing::{debug, warn};

use atomic_writer::Payload;
use sources::{ObjectWatches, Registration};
use token::{TokenManager, TokenSpec};

/// Upstream's plugin directory names (`kubernetes.io/<plugin>` escaped for disk).
pub const CONFIG_MAP_PLUGIN: &str = "kubernetes.io~configmap";
pub const SECRET_PLUGIN: &str = "kubernetes.io~secret";
pub const DOWNWARD_API_PLUGIN: &str = "kubernetes.io~downward-api";
pub const PROJECTED_PLUGIN: &str = "kubernetes.io~projected";
pub const EMPTY_DIR_PLUGIN: &str = "kubernetes.io~empty-dir";

/// A service-account token's lifetime when the projection gives none (the API's default).
const DEFAULT_TOKEN_SECONDS: i64 = 3600;

/// What every pod's volumes share: the object watches, the token cache, whether tmpfs may be
/// mounted, and the node's allocatable resources (for the downward API).
pub struct VolumeHost {
    root: PathBuf,
    pub config_maps: ObjectWatches<ConfigMap>,
    pub secrets: ObjectWatches<Secret>,
    pub tokens: TokenManager,
    tmpfs: bool,
    allocatable: BTreeMap<String, String>,
}

/// The ConfigMaps and Secrets a pod refers to, by name (in its namespace): volumes, projected
/// sources, `env` and `envFrom` of every container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    pub config_maps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

impl References {
    /// What `pod` refers to.
    pub fn of(pod: &Pod) -> References {
        let mut r = References::default();
        let Some(spec) = &pod.spec else { return r };
        for v in spec.volumes.iter().flatten() {
            if let Some(c) = &v.config_map {
                r.config_maps.insert(c.name.clone());
            }
            if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
                r.secrets.insert(s);
            }
            for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
                if let Some(c) = &src.config_map {
                    r.config_maps.insert(c.name.clone());
                }
                if let Some(s) = &src.secret {
                    r.secrets.insert(s.name.clone());
                }
            }
        }
        let containers = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter());
        for c in containers {
            for e in c.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
                if let Some(k) = &e.config_map_key_ref {
                    r.config_maps.insert(k.name.clone());
                }
                if let Some(k) = &e.secret_key_ref {
                    r.secrets.insert(k.name.clone());
                }
            }
            for f in c.env_from.iter().flatten() {
                if let Some(k) = &f.config_map_ref {
                    r.config_maps.insert(k.name.clone());
                }
                if let Some(k) = &f.secret_ref {
                    r.secrets.insert(k.name.clone());
                }
            }
        }
        r.config_maps.retain(|n| !n.is_empty());
        r.secrets.retain(|n| !n.is_empty());
        r
    }
}

/// The directory of one volume of a pod (none for a host path).
pub fn volume_dir(root: &Path, uid: &str, volume: &Volume) -> Option<PathBuf> {
    let plugin = plugin_of(volume)?;
    Some(
        crate::agent::state::pod_dir(root, uid)
            .join("volumes")
            .join(plugin)
            .join(&volume.name),
    )
}

fn plugin_of(v: &Volume) -> Option<&'static str> {
    if v.config_map.is_some() {
        Some(CONFIG_MAP_PLUGIN)
    } else if v.secret.is_some() {
        Some(SECRET_PLUGIN)
    } else if v.downward_api.is_some() {
        Some(DOWNWARD_API_PLUGIN)
    } else if v.projected.is_some() {
        Some(PROJECTED_PLUGIN)
    } else if v.empty_dir.is_some() {
        Some(EMPTY_DIR_PLUGIN)
    } else {
        None
    }
}

/// Where a volume's contents are on the host: its directory, or the host path.
pub fn volume_source(root: &Path, uid: &str, volume: &Volume) -> Option<PathBuf> {
    match &volume.host_path {
        Some(hp) => Some(PathBuf::from(&hp.path)),
        None => volume_dir(root, uid, volume),
    }
}

/// Whether the volume is always mounted read-only (upstream's `Attributes().ReadOnly` of the
/// configMap, secret, downwardAPI and projected plugins).
pub fn always_read_only(volume: &Volume) -> bool {
    volume.config_map.is_some()
        || volume.secret.is_some()
        || volume.downward_api.is_some()
        || volume.projected.is_some()
}

/// The name of the source a volume of an unsupported type uses (`persistentVolumeClaim`...).
fn source_name(volume: &Volume) -> String {
    serde_json::to_value(volume)
        .ok()
        .and_then(|v| {
            v.as_object()
                .and_then(|o| o.keys().find(|k| *k != "name").cloned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Whether `dir` is a mount point (on another device than its parent).
fn is_mount_point(dir: &Path) -> bool {
    let (Ok(me), Some(Ok(parent))) = (std::fs::metadata(dir), dir.parent().map(std::fs::metadata))
    else {
        return false;
    };
    me.dev() != parent.dev()
}

impl VolumeHost {
    /// `tmpfs`: whether memory-backed volumes may be mounted (the agent may mount).
    pub fn new(
        client: kube::Client,
        root: PathBuf,
        tmpfs: bool,
        allocatable: BTreeMap<String, String>,
    ) -> VolumeHost {
        VolumeHost {
            root,
            config_maps: ObjectWatches::new(client.clone(), "configmap"),
            secrets: ObjectWatches::new(client.clone(), "secret"),
            tokens: TokenManager::new(client),
            tmpfs,
            allocatable,
        }
    }

    /// Registers the pod's references with the object watches; `notify` runs on each change.
    pub fn register(
        &self,
        namespace: &str,
        refs: &References,
        notify: sources::Notifier,
    ) -> Vec<Registration> {
        let cms = refs
            .config_maps
            .iter()
            .map(|n| self.config_maps.register(namespace, n, notify.clone()));
        let secrets = refs
            .secrets
            .iter()
            .map(|n| self.secrets.register(namespace, n, notify.clone()));
        cms.chain(secrets).collect()
    }

    /// Sets up (or refreshes) one volume of `pod`.
    pub async fn set_up(&self, pod: &Pod, volume: &Volume) -> Result<(), String> {
        if let Some(hp) = &volume.host_path {
            return host_path_check(&hp.path, hp.type_.as_deref().unwrap_or(""));
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let Some(dir) = volume_dir(&self.root, uid, volume) else {
            return Err(format!(
                "volumes of type {} are not supported by the pernode agent",
                source_name(volume)
            ));
        };
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let memory = |medium: Option<&str>| medium == Some("Memory");
        if let Some(ed) = &volume.empty_dir {
            let size = ed
                .size_limit
                .as_ref()
                .map(|q| q.0.clone())
                .or_else(|| self.allocatable.get("memory").cloned());
            return self.make_dir(&dir, memory(ed.medium.as_deref()), size.as_deref());
        }
        let payload = if let Some(cm) = &volume.config_map {
            self.make_dir(&dir, false, None)?;
            let optional = cm.optional.unwrap_or(false);
            let mode = cm.default_mode.unwrap_or(payload::DEFAULT_MODE);
            let items = cm.items.as_deref().unwrap_or_default();
            match self.config_maps.get(ns, &cm.name).await {
                Ok(obj) => payload::config_map(items, &obj, mode, optional)?,
                Err(e) if e.is_not_found() && optional => {
                    payload::config_map(items, &ConfigMap::default(), mode, optional)?
                }
                Err(e) => return Err(e.to_string()),
            }
        } else if let Some(s) = &volume.secret {
            self.make_dir(&dir, true, None)?;
            let optional = s.optional.unwrap_or(false);
            let mode = s.default_mode.unwrap_or(payload::DEFAULT_MODE);
            let items = s.items.as_deref().unwrap_or_default();
            let name = s.secret_name.as_deref().unwrap_or_default();
            match self.secrets.get(ns, name).await {
                Ok(obj) => payload::secret(items, &obj, mode, optional)?,
                Err(e) if e.is_not_found() && optional => {
                    payload::secret(items, &Secret::default(), mode, optional)?
                }
                Err(e) => return Err(e.to_string()),
            }
        } else if let Some(d) = &volume.downward_api {
            self.make_dir(&dir, false, None)?;
            let mode = d.default_mode.unwrap_or(payload::DEFAULT_MODE);
            payload::downward_api(
                d.items.as_deref().unwrap_or_default(),
                pod,
                &self.allocatable,
                mode,
            )?
        } else if let Some(p) = &volume.projected {
            self.make_dir(&dir, true, None)?;
            self.projected(pod, p).await?
        } else {
            return Err(format!(
                "volumes of type {} are not supported by the pernode agent",
                source_name(volume)
            ));
        };
        atomic_writer::write(&dir, &payload).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The projected volume's files (upstream's `collectData`): every source's, or the errors
    /// of every failing source, aggregated.
    async fn projected(
        &self,
        pod: &Pod,
        p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    ) -> Result<Payload, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let mode = p.default_mode.unwrap_or(payload::DEFAULT_MODE);
        let mut errors = Vec::new();
        let mut out = Payload::new();
        for src in p.sources.iter().flatten() {
            let part = if let Some(s) = &src.secret {
                let optional = s.optional.unwrap_or(false);
                let items = s.items.as_deref().unwrap_or_default();
                match self.secrets.get(ns, &s.name).await {
                    Ok(obj) => payload::secret(items, &obj, mode, optional),
                    Err(e) if e.is_not_found() && optional => {
                        payload::secret(items, &Secret::default(), mode, optional)
                    }
                    Err(e) => Err(e.to_string()),
                }
            } else if let Some(c) = &src.config_map {
                let optional = c.optional.unwrap_or(false);
                let items = c.items.as_deref().unwrap_or_default();
                match self.config_maps.get(ns, &c.name).await {
                    Ok(obj) => payload::config_map(items, &obj, mode, optional),
                    Err(e) if e.is_not_found() && optional => {
                        payload::config_map(items, &ConfigMap::default(), mode, optional)
                    }
                    Err(e) => Err(e.to_string()),
                }
            } else if let Some(d) = &src.downward_api {
                payload::downward_api(
                    d.items.as_deref().unwrap_or_default(),
                    pod,
                    &self.allocatable,
                    mode,
                )
            } else if let Some(t) = &src.service_account_token {
                self.token_payload(pod, t, mode).await
            } else {
                Err("projected volume sources other than serviceAccountToken, configMap, secret and downwardAPI are not supported by the pernode agent".into())
            };
            match part {
                Ok(files) => out.extend(files),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(payload::aggregate(&errors))
        }
    }

    async fn token_payload(
        &self,
        pod: &Pod,
        t: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
        mode: i32,
    ) -> Result<Payload, String> {
        let spec = pod.spec.as_ref();
        let account = spec
            .and_then(|s| s.service_account_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let request = TokenSpec {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            service_account: account,
            audience: t.audience.clone().filter(|a| !a.is_empty()),
            expiration_seconds: t.expiration_seconds.unwrap_or(DEFAULT_TOKEN_SECONDS),
            pod_name: pod.metadata.name.clone().unwrap_or_default(),
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
        };
        let token = self.tokens.token(&request).await?;
        Ok([(
            t.path.clone(),
            atomic_writer::FileProjection {
                data: token.into_bytes(),
                mode: (mode as u32) & 0o7777,
            },
        )]
        .into())
    }

    /// The volume directory, world-writable as upstream's emptyDir (the wrapper of every
    /// API-backed volume), on a tmpfs when `memory` and the agent may mount (kept when it is
    /// one already: an agent restart must not hide what running containers see).
    fn make_dir(&self, dir: &Path, memory: bool, size: Option<&str>) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        if memory && self.tmpfs && !is_mount_point(dir) {
            let data = match size.map(pernode_core::quantity::parse_quantity) {
                Some(Ok(q)) if q.value() > 0 => format!("size={}", q.value()),
                _ => String::new(),
            };
            let data = std::ffi::CString::new(data).unwrap_or_default();
            rustix::mount::mount(
                c"tmpfs",
                dir,
                c"tmpfs",
                rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
                Some(data.as_c_str()),
            )
            .map_err(|e| format!("mount tmpfs at {}: {e}", dir.display()))?;
        }
        let meta = std::fs::metadata(dir).map_err(|e| format!("stat {}: {e}", dir.display()))?;
        if meta.permissions().mode() & 0o7777 != 0o777 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        }
        Ok(())
    }

    /// Unmounts the pod's memory-backed volumes, so that its directory can be removed. Fails
    /// (and the directory must stay) when one cannot be unmounted.
    pub fn tear_down(&self, uid: &str) -> Result<(), String> {
        tear_down(&self.root, uid)
    }

    /// Forgets what is cached for a pod that is gone (its tokens).
    pub fn forget(&self, uid: &str) {
        self.tokens.forget_pod(uid);
    }
}

/// See [`VolumeHost::tear_down`]; also for pods of an earlier agent, before any host exists.
pub fn tear_down(root: &Path, uid: &str) -> Result<(), String> {
    let volumes = crate::agent::state::pod_dir(root, uid).join("volumes");
    let Ok(plugins) = std::fs::read_dir(&volumes) else {
        return Ok(());
    };
    let mut result = Ok(());
    for plugin in plugins.flatten() {
        let Ok(dirs) = std::fs::read_dir(plugin.path()) else {
            continue;
        };
        for dir in dirs.flatten().map(|d| d.path()) {
            if !is_mount_point(&dir) {
                continue;
            }
            match rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH) {
                Ok(()) => debug!(dir = %dir.display(), "volume unmounted"),
                Err(e) => {
                    warn!(dir = %dir.display(), error = %e, "could not unmount a volume; its pod directory stays");
                    result = Err(format!("unmount {}: {e}", dir.display()));
                }
            }
        }
    }
    result
}

/// Upstream's hostPath `type` checks (`checkType` of `pkg/volume/hostpath`): the `OrCreate`
/// types make a missing directory (0755, with its parents) or empty file (0644, parent must
/// exist); the others require what they name.
pub fn host_path_check(path: &str, type_: &str) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let p = Path::new(path);
    let meta = std::fs::metadata(p).ok();
    let is = |f: fn(&std::fs::Metadata) -> bool| meta.as_ref().is_some_and(f);
    let fail = |what: &str| {
        Err(format!(
            "hostPath type check failed: {path} is not a {what}"
        ))
    };
    match type_ {
        "DirectoryOrCreate" if meta.is_none() => {
            let mut b = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o755);
            b.recursive(true)
                .create(p)
                .map_err(|e| format!("mkdir {path}: {e}"))
        }
        "DirectoryOrCreate" | "Directory" if !is(|m| m.is_dir()) => fail("directory"),
        "FileOrCreate" if meta.is_none() => {
            let mut o = std::fs::OpenOptions::new();
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o644);
            o.create(true)
                .append(true)
                .open(p)
                .map(|_| ())
                .map_err(|e| format!("open {path}: {e}"))
        }
        "FileOrCreate" | "File" if !is(|m| m.is_file()) => fail("file"),
        "Socket" if !is(|m| m.file_type().is_socket()) => fail("socket file"),
        "CharDevice" if !is(|m| m.file_type().is_char_device()) => fail("character device"),
        "BlockDevice" if !is(|m| m.file_type().is_block_device()) => fail("block device"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_cover_volumes_projections_and_env() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "volumes": [
                    {"name": "a", "configMap": {"name": "cm-vol"}},
                    {"name": "b", "secret": {"secretName": "s-vol"}},
                    {"name": "c", "projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}, {"secret": {"name": "s-proj"}}]}},
                    {"name": "d", "hostPath": {"path": "/tmp"}},
                ],
                "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s-init"}}]}],
                "containers": [{"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}}],
                    "envFrom": [{"configMapRef": {"name": "cm-from"}}]}],
            },
        }))
        .expect("pod");
        let r = References::of(&pod);
        assert_eq!(
            r.config_maps.iter().map(String::as_str).collect::<Vec<_>>(),
            ["cm-env", "cm-from", "cm-vol", "kube-root-ca.crt"]
        );
        assert_eq!(
            r.secrets.iter().map(String::as_str).collect::<Vec<_>>(),
            ["s-init", "s-proj", "s-vol"]
        );
        let root = Path::new("/r");
        let vols = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
        assert_eq!(
            volume_source(root, "u", &vols[0]),
            Some(PathBuf::from("/r/pods/u/volumes/kubernetes.io~configmap/a"))
        );
        assert_eq!(
            volume_source(root, "u", &vols[3]),
            Some(PathBuf::from("/tmp"))
        );
        assert!(always_read_only(&vols[2]) && !always_read_only(&vols[3]));
    }

    #[test]
    fn host_path_types_are_checked_as_upstream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("made/deep");
        let ds = d.display().to_string();
        host_path_check(&ds, "DirectoryOrCreate").expect("created");
        assert!(d.is_dir());
        host_path_check(&ds, "Directory").expect("a directory");
        assert_eq!(
            host_path_check(&ds, "File").expect_err("not a file"),
            format!("hostPath type check failed: {ds} is not a file")
        );
        let f = dir.path().join("f");
        let fs = f.display().to_string();
        host_path_check(&fs, "FileOrCreate").expect("created");
        assert!(f.is_file());
        assert_eq!(
            host_path_check(&fs, "DirectoryOrCreate").expect_err("a file"),
            format!("hostPath type check failed: {fs} is not a directory")
        );
        // FileOrCreate does not make the parent directory.
        let orphan = dir.path().join("no/parent").display().to_string();
        assert!(host_path_check(&orphan, "FileOrCreate").is_err());
        assert_eq!(
            host_path_check(&fs, "Socket").expect_err("not a socket"),
            format!("hostPath type check failed: {fs} is not a socket file")
        );
        host_path_check("/does/not/matter", "").expect("no type, no check");
    }
}
