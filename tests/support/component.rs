//! A `pernode` component (`controllers`, `sim`, ...) as a child process against a test
//! cluster, its stderr kept in `<name>.log` in the cluster's dir; killed (-9) when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::Cluster;

pub struct Component {
    child: Option<Child>,
    log: PathBuf,
}

impl Component {
    /// `pernode ARGS --kubeconfig <the cluster's admin kubeconfig>`, logging at info.
    pub fn start(server: &Cluster, name: &str, args: &[&str]) -> Component {
        let log = server.path(&format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_pernode"))
            .args(args)
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .env("RUST_LOG", "pernode=info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start pernode");
        Component {
            child: Some(child),
            log,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status once it has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.kill9();
    }
}
