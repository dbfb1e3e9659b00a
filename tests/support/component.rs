//! A `pernode` process for end-to-end tests (`agent`, `controllers`, `sim`, ...): started
//! (optionally in a network namespace) with its stderr appended to a log file, killed with
//! SIGKILL when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::Cluster;

pub struct Component {
    pub child: Option<Child>,
    pub args: Vec<String>,
    /// The network namespace to run it in (`ip netns exec`), if any.
    pub netns: Option<String>,
    pub log: PathBuf,
}

impl Component {
    /// A process not yet started.
    pub fn new(args: Vec<String>, netns: Option<String>, log: PathBuf) -> Component {
        Component {
            child: None,
            args,
            netns,
            log,
        }
    }

    /// `pernode ARGS --kubeconfig <the cluster's admin kubeconfig>`, started, its log
    /// `<name>.log` in the cluster's dir.
    pub fn start(server: &Cluster, name: &str, args: &[&str]) -> Component {
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push("--kubeconfig".into());
        args.push(server.kubeconfig().display().to_string());
        let mut component = Component::new(args, None, server.path(&format!("{name}.log")));
        component.spawn();
        component
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
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
            .env("RUST_LOG", "pernode=info,pernode_agent=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pernode");
        self.child = Some(child);
    }

    /// Its exit status once it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.kill9();
    }
}
