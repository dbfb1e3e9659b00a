//! The kubelet-managed `/etc/hosts` (kubelet_pods.go's `makeHostsMount`): written to
//! `<pod dir>/etc-hosts` before each container starts and mounted writable at `/etc/hosts`,
//! unless the container mounts a volume there itself. A pod off the host network gets a
//! generated file (localhost entries, its IP with its hostname, and the FQDN under its
//! `subdomain`); a `hostNetwork` pod gets the node's own `/etc/hosts`. Both end with the
//! pod's `hostAliases` under upstream's comment.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, HostAlias, Pod};

use crate::agent::mounts::MountSpec;
use crate::agent::state;

const ETC_HOSTS: &str = "/etc/hosts";
const MANAGED_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const HOST_NETWORK_HEADER: &str = "# Kubernetes-managed hosts file (host network).\n";
/// The cluster domain a pod's subdomain FQDN ends in. The kubelet takes it from
/// `--cluster-domain`; the agent has no DNS of its own to configure, so the common default.
const CLUSTER_DOMAIN: &str = "cluster.local";
/// A hostname is at most 63 characters (upstream's `truncatePodHostnameIfNeeded`).
const HOSTNAME_MAX: usize = 63;

/// The pod's hostname and, with a `subdomain`, its domain (upstream's
/// `GeneratePodHostNameAndDomain`; the API server validated both as DNS labels).
pub(super) fn hostname_and_domain(pod: &Pod) -> (String, Option<String>) {
    let spec = pod.spec.as_ref();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let mut hostname = spec
        .and_then(|s| s.hostname.as_deref())
        .filter(|h| !h.is_empty())
        .unwrap_or(name)
        .to_string();
    if hostname.len() > HOSTNAME_MAX {
        // A label is ASCII: any byte index is a character boundary.
        hostname.truncate(HOSTNAME_MAX);
        hostname = hostname.trim_end_matches(['-', '.']).to_string();
    }
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let domain = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|d| !d.is_empty())
        .map(|sub| format!("{sub}.{namespace}.svc.{CLUSTER_DOMAIN}"));
    (hostname, domain)
}

fn alias_entries(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in aliases {
        let names = a.hostnames.as_deref().unwrap_or_default().join("\t");
        out.push_str(&format!("{}\t{names}\n", a.ip));
    }
    out
}

/// The generated file of a pod off the host network.
pub(super) fn managed_content(
    pod_ips: &[String],
    hostname: &str,
    domain: Option<&str>,
    aliases: &[HostAlias],
) -> String {
    let mut out = String::from(MANAGED_HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    for ip in pod_ips {
        match domain {
            Some(d) => out.push_str(&format!("{ip}\t{hostname}.{d}\t{hostname}\n")),
            None => out.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    out.push_str(&alias_entries(aliases));
    out
}

/// A `hostNetwork` pod's file: the node's hosts file under upstream's header, then aliases.
pub(super) fn host_network_content(node_hosts: &[u8], aliases: &[HostAlias]) -> Vec<u8> {
    let mut out = HOST_NETWORK_HEADER.as_bytes().to_vec();
    out.extend_from_slice(node_hosts);
    out.extend_from_slice(alias_entries(aliases).as_bytes());
    out
}

/// Where the pod's hosts file is kept.
fn file_path(root: &Path, uid: &str) -> PathBuf {
    state::pod_dir(root, uid).join("etc-hosts")
}

/// Writes the pod's hosts file (mode 0644) and returns its mount for `container`; `None` when
/// the container mounts a volume at `/etc/hosts` or the pod has no IP yet (as upstream).
pub(super) fn prepare(
    root: &Path,
    pod: &Pod,
    container: &Container,
    pod_ips: &[String],
) -> std::io::Result<Option<MountSpec>> {
    use std::os::unix::fs::PermissionsExt;
    let own = container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path == ETC_HOSTS);
    if own || pod_ips.is_empty() {
        return Ok(None);
    }
    let spec = pod.spec.as_ref();
    let aliases = spec
        .and_then(|s| s.host_aliases.as_deref())
        .unwrap_or_default();
    let content = if spec.and_then(|s| s.host_network) == Some(true) {
        host_network_content(&std::fs::read(ETC_HOSTS)?, aliases)
    } else {
        let (hostname, domain) = hostname_and_domain(pod);
        managed_content(pod_ips, &hostname, domain.as_deref(), aliases).into_bytes()
    };
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let file = file_path(root, uid);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&file, content)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
    Ok(Some(MountSpec {
        source: file,
        target: PathBuf::from(ETC_HOSTS),
        read_only: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).expect("pod")
    }

    fn aliases() -> Vec<HostAlias> {
        vec![
            HostAlias {
                ip: "10.1.2.3".into(),
                hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
            },
            HostAlias {
                ip: "10.1.2.4".into(),
                hostnames: Some(vec!["baz".into()]),
            },
        ]
    }

    #[test]
    fn a_pod_off_the_host_network_gets_a_generated_file() {
        let ips = vec!["10.0.0.7".to_string()];
        assert_eq!(
            managed_content(&ips, "web-0", None, &[]),
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.0.0.7\tweb-0\n"
        );
        let with = managed_content(&ips, "web-0", Some("web.ns.svc.cluster.local"), &aliases());
        assert!(
            with.ends_with(
                "10.0.0.7\tweb-0.web.ns.svc.cluster.local\tweb-0\n\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n10.1.2.4\tbaz\n"
            ),
            "{with}"
        );
    }

    #[test]
    fn a_host_network_pod_gets_the_nodes_file_and_its_aliases() {
        let got = host_network_content(b"127.0.0.1 localhost\n", &aliases()[1..]);
        assert_eq!(
            String::from_utf8_lossy(&got),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n\n# Entries added by HostAliases.\n10.1.2.4\tbaz\n"
        );
    }

    #[test]
    fn hostname_and_domain_follow_the_pods_spec() {
        let p = pod(
            "metadata: {name: p1, namespace: ns}\nspec:\n  hostname: h\n  subdomain: s\n  containers: []\n",
        );
        assert_eq!(
            hostname_and_domain(&p),
            ("h".to_string(), Some("s.ns.svc.cluster.local".to_string()))
        );
        let long = format!(
            "metadata: {{name: {}-x}}\nspec: {{containers: []}}\n",
            "a".repeat(62)
        );
        assert_eq!(hostname_and_domain(&pod(&long)).0, "a".repeat(62));
    }

    #[test]
    fn the_file_is_written_and_mounted_unless_the_container_mounts_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = pod(
            "metadata: {name: p1, namespace: ns, uid: u1}\nspec:\n  containers:\n  - {name: a}\n  - name: b\n    volumeMounts: [{name: v, mountPath: /etc/hosts}]\n",
        );
        let cs = &p.spec.as_ref().expect("spec").containers;
        let ips = vec!["10.0.0.9".to_string()];
        let mount = prepare(dir.path(), &p, &cs[0], &ips)
            .expect("prepare")
            .expect("mounted");
        assert_eq!(mount.target, Path::new("/etc/hosts"));
        assert!(!mount.read_only);
        let text = std::fs::read_to_string(&mount.source).expect("written");
        assert!(text.ends_with("10.0.0.9\tp1\n"), "{text}");
        assert!(
            prepare(dir.path(), &p, &cs[1], &ips)
                .expect("prepare")
                .is_none()
        );
        assert!(
            prepare(dir.path(), &p, &cs[0], &[])
                .expect("prepare")
                .is_none()
        );
    }
}
