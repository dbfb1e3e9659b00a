//! A real `pernode agent` process for end-to-end tests: started (optionally in a network
//! namespace) with its stderr appended to a log file, killed with SIGKILL when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::Cluster;

pub struct Agent {
    pub child: Option<Child>,
    pub args: Vec<String>,
    /// The network namespace to run it in (`ip netns exec`), if any.
    pub netns: Option<String>,
    pub log: PathBuf,
}

impl Agent {
    /// An agent not yet started.
    pub fn new(args: Vec<String>, netns: Option<String>, log: PathBuf) -> Agent {
        Agent {
            child: None,
            args,
            netns,
            log,
        }
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("agent log");
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_pernode")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_pernode")),
        };
        let child = cmd
            .args(&self.args)
            .env("RUST_LOG", "pernode_agent=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What the agent logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Cluster {
    /// Writes to `file` a kubeconfig for node `node` (`system:node:<node>` in `system:nodes`,
    /// a certificate the cluster's CA signed) talking to `server` with the cluster's CA.
    pub fn node_kubeconfig(&self, file: &Path, node: &str, server: &str) {
        let kubeconfig = std::fs::read_to_string(self.kubeconfig()).expect("kubeconfig");
        let (cert, key) = self.client_certificate(&format!("system:node:{node}"), "system:nodes");
        let text = kubeconfig
            .lines()
            .map(|l| match l.trim().split_once(": ") {
                Some(("server", _)) => format!("    server: {server}"),
                Some(("client-certificate-data", _)) => {
                    format!("    client-certificate-data: {cert}")
                }
                Some(("client-key-data", _)) => format!("    client-key-data: {key}"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(file, text).expect("agent kubeconfig");
    }
}

/// Unmounts (lazily, with `umount -l`) whatever is still mounted under a directory when
/// dropped: the memory-backed volumes an agent on this host's mount namespace mounted, should
/// a test fail before its pods were torn down.
pub struct UnmountOnDrop(pub PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        let dir = self.0.display().to_string();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").args(["-l", p]).status();
        }
    }
}
