//! What must survive an agent restart, per pod under `<root-dir>/pods/<uid>/`: each
//! container's current process (PID and start time), restart count, last termination and log
//! instance. Written atomically (temporary file, then rename) after every start and exit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A container's termination, as reported in `state.terminated` / `lastState.terminated`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terminated {
    pub exit_code: i32,
    pub reason: String,
    #[serde(default)]
    pub message: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// The log instance it wrote.
    pub instance: u32,
    /// The runtime's ID of the container that ran (a CRI runtime's; host processes have none).
    #[serde(default)]
    pub container_id: Option<String>,
}

/// One container's durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The current (or last) log instance; each start takes the next one.
    pub instance: u32,
    /// Whether a process was ever started.
    pub ever_started: bool,
    /// The running process, if any.
    pub pid: Option<u32>,
    pub start_ticks: u64,
    /// The running (or last) container's ID in a CRI runtime.
    #[serde(default)]
    pub container_id: Option<String>,
    /// The image reference the runtime resolved for it.
    #[serde(default)]
    pub image_ref: Option<String>,
    /// RFC 3339 start time of the running process.
    pub started_at: Option<String>,
    pub restart_count: i32,
    pub last_terminated: Option<Terminated>,
    /// Terminated for good (no restart coming): init container done, or restart policy.
    pub done: Option<Terminated>,
}

/// One pod's durable state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub is_static: bool,
    pub containers: BTreeMap<String, ContainerRecord>,
}

/// The directory of a pod's state and logs.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// The log file of one container instance.
pub fn log_path(root: &Path, uid: &str, container: &str, instance: u32) -> PathBuf {
    pod_dir(root, uid)
        .join("logs")
        .join(container)
        .join(format!("{instance}.log"))
}

impl PodRecord {
    /// Writes the record to `<root>/pods/<uid>/state.json`.
    pub fn save(&self, root: &Path) -> std::io::Result<()> {
        let dir = pod_dir(root, &self.uid);
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join("state.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, dir.join("state.json"))
    }

    /// Every readable pod record under `root`; unreadable ones are skipped with a warning.
    pub fn load_all(root: &Path) -> Vec<PodRecord> {
        let Ok(entries) = std::fs::read_dir(root.join("pods")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let path = e.path().join("state.json");
                let bytes = std::fs::read(&path).ok()?;
                match serde_json::from_slice(&bytes) {
                    Ok(r) => Some(r),
                    Err(err) => {
                        tracing::warn!(path = %path.display(), error = %err, "ignoring unreadable pod state");
                        None
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut r = PodRecord {
            namespace: "default".into(),
            name: "p".into(),
            uid: "u1".into(),
            ..Default::default()
        };
        r.containers.insert(
            "c".into(),
            ContainerRecord {
                instance: 2,
                pid: Some(42),
                start_ticks: 7,
                restart_count: 1,
                ..Default::default()
            },
        );
        r.save(dir.path()).expect("save");
        std::fs::create_dir_all(dir.path().join("pods/broken")).expect("dir");
        std::fs::write(dir.path().join("pods/broken/state.json"), "{").expect("write");
        assert_eq!(PodRecord::load_all(dir.path()), vec![r]);
        assert_eq!(
            log_path(dir.path(), "u1", "c", 3),
            dir.path().join("pods/u1/logs/c/3.log")
        );
    }
}
