//! Static pods: Pod manifests in `--pod-manifest-path` run without the API server, as the
//! kubelet's file source: each file (`.yaml`, `.yml`, `.json`) is one Pod, named
//! `<name>-<node>`, with a UID derived from its content and node (so an edit replaces the pod
//! and a restart finds the same one). When the API server is reachable, each static pod
//! appears there as a mirror pod (annotation `kubernetes.io/config.mirror`, owned by the Node)
//! carrying its status.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use tracing::{debug, warn};

/// Annotation holding the static pod's hash (its UID).
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// Annotation naming the pod's source (`file`).
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// Annotation that marks a mirror pod, holding the static pod's hash.
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";

/// 128-bit FNV-1a, hex: stable across builds and platforms, unlike std's hasher.
fn content_hash(parts: &[&[u8]]) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u128::from(*b);
            h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
    }
    format!("{h:032x}")
}

/// Reads one manifest into the static pod the agent runs.
pub fn static_pod(text: &str, is_json: bool, node: &str) -> Result<Pod, String> {
    let mut pod: Pod = if is_json {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())?
    };
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("the pod has no metadata.name")?;
    if pod.spec.as_ref().is_none_or(|s| s.containers.is_empty()) {
        return Err("the pod has no containers".into());
    }
    let uid = content_hash(&[text.as_bytes(), node.as_bytes()]);
    pod.metadata.name = Some(format!("{name}-{node}"));
    if pod.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        pod.metadata.namespace = Some("default".into());
    }
    pod.metadata.uid = Some(uid.clone());
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(CONFIG_HASH.into(), uid);
    annotations.insert(CONFIG_SOURCE.into(), "file".into());
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(node.to_string());
    }
    pod.status = None;
    Ok(pod)
}

/// Every valid manifest in `dir`, by file name order; invalid ones are skipped with a warning.
pub fn read_dir(dir: &Path, node: &str) -> Vec<Pod> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        debug!(dir = %dir.display(), "pod manifest path is not readable");
        return Vec::new();
    };
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "yaml" | "yml" | "json") {
                return None;
            }
            let text = std::fs::read_to_string(&path).ok()?;
            match static_pod(&text, ext == "json", node) {
                Ok(p) => Some(p),
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "ignoring static pod manifest");
                    None
                }
            }
        })
        .collect()
}

/// The mirror pod of `pod` in the API: the same pod, marked as a mirror and owned by the Node.
pub fn mirror_pod(pod: &Pod, node: &str, node_uid: &str) -> Pod {
    let mut m = pod.clone();
    let hash = pod.metadata.uid.clone().unwrap_or_default();
    m.metadata.uid = None;
    m.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CONFIG_MIRROR.into(), hash);
    m.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.into(),
        uid: node_uid.into(),
        controller: Some(true),
        ..Default::default()
    }]);
    m
}

/// Whether a pod from the API is a mirror pod (its static pod runs from a file, not from it).
pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(CONFIG_MIRROR))
}

/// Makes the mirror pod of `pod` exist and match it: created when missing, replaced when it
/// mirrors another version or is being deleted.
pub(crate) async fn ensure_mirror(
    client: &kube::Client,
    pod: &Pod,
    node: &str,
    node_uid: &str,
) -> Result<(), kube::Error> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let hash = pod.metadata.uid.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    if let Some(existing) = api.get_opt(&name).await? {
        let current = existing
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONFIG_MIRROR))
            .is_some_and(|h| *h == hash);
        if current && existing.metadata.deletion_timestamp.is_none() {
            return Ok(());
        }
        delete_mirror(client, &ns, &name, existing.metadata.uid.clone()).await?;
    }
    match api
        .create(&PostParams::default(), &mirror_pod(pod, node, node_uid))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes a mirror pod at once (nobody else finishes its termination).
pub(crate) async fn delete_mirror(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    uid: Option<String>,
) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: uid.map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(name, &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '100']\n";

    #[test]
    fn manifests_become_static_pods_with_stable_uids() {
        let p = static_pod(MANIFEST, false, "n1").expect("pod");
        assert_eq!(p.metadata.name.as_deref(), Some("web-n1"));
        assert_eq!(p.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
            Some("n1")
        );
        let uid = p.metadata.uid.clone().expect("uid");
        assert_eq!(uid.len(), 32);
        assert_eq!(
            static_pod(MANIFEST, false, "n1").expect("pod").metadata.uid,
            Some(uid.clone())
        );
        assert_ne!(
            static_pod(MANIFEST, false, "n2").expect("pod").metadata.uid,
            Some(uid.clone())
        );
        let edited = MANIFEST.replace("'100'", "'200'");
        assert_ne!(
            static_pod(&edited, false, "n1").expect("pod").metadata.uid,
            Some(uid.clone())
        );
        assert!(static_pod("kind: Pod\nmetadata: {}\n", false, "n1").is_err());
        let json = serde_json::to_string(&p).expect("json");
        assert!(static_pod(&json, true, "n1").is_ok());

        let m = mirror_pod(&p, "n1", "node-uid");
        assert!(is_mirror(&m));
        assert!(!is_mirror(&p));
        assert_eq!(m.metadata.uid, None);
        assert_eq!(
            m.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CONFIG_MIRROR)),
            Some(&uid)
        );
        let owner = &m.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Node", "node-uid")
        );
    }

    #[test]
    fn read_dir_skips_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.yaml"), MANIFEST).expect("write");
        std::fs::write(dir.path().join("b.yaml"), "not: [a pod").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "hello").expect("write");
        let pods = read_dir(dir.path(), "n1");
        assert_eq!(pods.len(), 1);
    }
}
