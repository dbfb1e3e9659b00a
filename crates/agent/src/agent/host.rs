//! What the host offers, for the Node's capacity and nodeInfo: CPUs, memory, pods, disk, kernel
//! and OS, and the address other machines reach it at.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;

use super::RUNTIME_SCHEME;
use crate::status::NodeProfile;

/// Capacity and nodeInfo from the host. `pods` is the pod capacity to report; `disk` the
/// directory whose filesystem is the ephemeral storage.
pub fn profile(pods: u32, disk: &Path) -> NodeProfile {
    let mut capacity = BTreeMap::new();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    capacity.insert("cpu".to_string(), cpus.to_string());
    if let Some(kib) = meminfo_total_kib() {
        capacity.insert("memory".to_string(), format!("{kib}Ki"));
    }
    capacity.insert("pods".to_string(), pods.to_string());
    if let Ok(st) = rustix::fs::statvfs(disk) {
        let kib = st.f_blocks.saturating_mul(st.f_frsize) / 1024;
        capacity.insert("ephemeral-storage".to_string(), format!("{kib}Ki"));
    }
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .ok()
    };
    NodeProfile {
        capacity,
        kubelet_version: "v1.33.0".to_string(),
        os_image: read("/etc/os-release")
            .and_then(|t| os_pretty_name(&t))
            .unwrap_or_else(|| "Linux".to_string()),
        kernel_version: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
        container_runtime_version: format!("{RUNTIME_SCHEME}{}", env!("CARGO_PKG_VERSION")),
        architecture: go_arch(std::env::consts::ARCH).to_string(),
        kubelet_port: 10250,
    }
}

fn meminfo_total_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn os_pretty_name(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// Rust's architecture names as Go's GOARCH (what `kubernetes.io/arch` holds).
pub fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The local IPv4 address the host uses to reach `target` (no packet is sent: connecting a UDP
/// socket only picks the route).
pub fn source_ip_towards(target: SocketAddr) -> Option<Ipv4Addr> {
    let socket = UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    socket.connect(target).ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(_) => None,
    }
}

/// The host's name, for `--node-name`'s default.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_profile_has_capacity() {
        let p = profile(110, Path::new("/"));
        assert!(p.capacity["cpu"].parse::<u32>().is_ok_and(|n| n >= 1));
        assert!(p.capacity["memory"].ends_with("Ki"));
        assert_eq!(p.capacity["pods"], "110");
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(
            os_pretty_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n").as_deref(),
            Some("Debian GNU/Linux 12")
        );
        assert_eq!(
            source_ip_towards("127.0.0.1:6443".parse().expect("addr")),
            Some(Ipv4Addr::LOCALHOST)
        );
        assert!(!hostname().is_empty());
    }
}
