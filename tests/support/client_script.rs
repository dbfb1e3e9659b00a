//! The official clients' scripts (`tests/js`, `tests/python`): run one against a cluster with a
//! deadline, and read the JSON of its steps' results (`{"step": {"ok": true, "value": ..}}` or
//! `{"ok": false, "error": ..}`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Cluster;

/// Runs `program script` in `dir` against `cluster` (its kubeconfig as `KUBECONFIG`, plus
/// `env`), killing it after `deadline`; the JSON it printed.
pub fn run(
    cluster: &Cluster,
    program: &Path,
    script: &str,
    dir: &Path,
    env: &[(&str, String)],
    deadline: Duration,
) -> Value {
    let stdout_path = cluster.path("client.out");
    let stderr_path = cluster.path("client.err");
    let mut child = Command::new(program)
        .arg(script)
        .current_dir(dir)
        .env("KUBECONFIG", cluster.kubeconfig())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let until = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the script") {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{script} still ran after {deadline:?}; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "{script} failed ({status}):\n{stdout}\n{stderr}\nserver log:\n{}",
        cluster.server_log()
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}\n{stderr}"))
}

/// The results of a script's steps.
pub struct Steps(pub Value);

impl Steps {
    /// The value of a step that must have succeeded.
    pub fn ok(&self, step: &str) -> &Value {
        let result = &self.0[step];
        assert_eq!(result["ok"], true, "step {step} failed: {result}");
        &result["value"]
    }

    /// The error of a step that must have failed.
    pub fn failed(&self, step: &str) -> &Value {
        let result = &self.0[step];
        assert_eq!(
            result["ok"], false,
            "step {step} should have failed: {result}"
        );
        &result["error"]
    }
}
