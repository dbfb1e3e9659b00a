//! Termination messages, as the kubelet's kuberuntime manager keeps them: each container
//! instance gets an empty, world-writable file of its own under the pod's directory
//! (`<pod dir>/containers/<container>/<instance>`), mounted writable at its
//! `terminationMessagePath`; once it exited, the last 4 KiB of that file are its
//! `state.terminated.message`. With `terminationMessagePolicy: FallbackToLogsOnError`, a
//! container that failed and wrote nothing there gets the end of its log instead (its last 80
//! lines, at most the last 2 KiB of them). The pod's status keeps at most 12 KiB of messages,
//! split evenly across its containers.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

use crate::agent::logs;
use crate::agent::mounts::MountSpec;
use crate::agent::runtime::LogFormat;
use crate::agent::state;

/// Where the message is written when the pod does not say (upstream's API default).
const DEFAULT_PATH: &str = "/dev/termination-log";
/// The most of a container's file that is read (upstream's
/// `MaxContainerTerminationMessageLength`): its last bytes.
const MAX_CONTAINER_BYTES: u64 = 4 * 1024;
/// The most of all of a pod's messages its status holds (`MaxPodTerminationMessageLogLength`).
const MAX_POD_BYTES: usize = 12 * 1024;
/// From the log: its last lines, and of those at most the last bytes.
const LOG_LINES: usize = 80;
const LOG_BYTES: usize = 2 * 1024;
/// How much of the end of a log is read to find its last lines.
const LOG_READ_BYTES: u64 = 256 * 1024;

/// The host file mounted at one container instance's `terminationMessagePath`.
pub(super) fn file_path(root: &Path, uid: &str, container: &str, instance: u32) -> PathBuf {
    state::pod_dir(root, uid)
        .join("containers")
        .join(container)
        .join(instance.to_string())
}

fn message_path(container: &Container) -> Option<&str> {
    match container.termination_message_path.as_deref() {
        None => Some(DEFAULT_PATH),
        Some("") => None,
        Some(p) => Some(p),
    }
}

/// Creates the instance's empty message file (mode 0666, whatever the umask: the container
/// may run as any user) and returns its mount; `None` when the container has no message path.
pub(super) fn prepare(
    root: &Path,
    uid: &str,
    container: &Container,
    instance: u32,
) -> std::io::Result<Option<MountSpec>> {
    use std::os::unix::fs::PermissionsExt;
    let Some(target) = message_path(container) else {
        return Ok(None);
    };
    let file = file_path(root, uid, &container.name, instance);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::create(&file)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))?;
    Ok(Some(MountSpec {
        source: file,
        target: PathBuf::from(target),
        read_only: false,
    }))
}

/// The last `max` bytes of a file; `Ok(None)` when it does not exist.
fn read_last(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut data = Vec::new();
    f.read_to_end(&mut data)?;
    Ok(Some(data))
}

/// What one exited container instance left behind, to find its message in.
pub(super) struct Exited<'a> {
    pub root: &'a Path,
    pub uid: &'a str,
    pub container: &'a Container,
    pub instance: u32,
    pub exit_code: i32,
    /// Its log file and how it is written.
    pub log: PathBuf,
    pub log_format: LogFormat,
}

/// The instance's termination message (upstream's `getTerminationMessage`, then
/// `readLastStringFromContainerLogs` when the policy falls back to the log); `None` if empty.
pub(super) fn message(exited: &Exited<'_>) -> Option<String> {
    let c = exited.container;
    let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
        && exited.exit_code != 0;
    let (text, check_logs) = match message_path(c) {
        None => (String::new(), fallback),
        Some(_) => {
            let file = file_path(exited.root, exited.uid, &c.name, exited.instance);
            match read_last(&file, MAX_CONTAINER_BYTES) {
                Ok(None) => (String::new(), fallback),
                Ok(Some(data)) => (
                    String::from_utf8_lossy(&data).into_owned(),
                    fallback && data.is_empty(),
                ),
                Err(e) => (
                    format!("Error on reading termination log {}: {e}", file.display()),
                    false,
                ),
            }
        }
    };
    let text = if check_logs {
        last_log_text(&exited.log, exited.log_format)
    } else {
        text
    };
    (!text.is_empty()).then_some(text)
}

/// The end of a container's log: its last lines, at most the last bytes of them.
fn last_log_text(log: &Path, format: LogFormat) -> String {
    let data = match read_last(log, LOG_READ_BYTES) {
        Ok(data) => data.unwrap_or_default(),
        Err(e) => return format!("Error on reading termination message from logs: {e}"),
    };
    let decoded = match format {
        LogFormat::Raw => data,
        LogFormat::Cri => logs::decode_cri(&data, false, None, &mut false).0,
    };
    let lines = logs::tail(&decoded, LOG_LINES);
    let from = lines.len().saturating_sub(LOG_BYTES);
    String::from_utf8_lossy(&lines[from..]).into_owned()
}

/// Cuts a message to its share of the pod's budget (`containers` is the number of the pod's
/// containers and init containers), as the kubelet's status manager does before it writes.
pub(super) fn cap_for_pod(message: &str, containers: usize) -> &str {
    let max = MAX_POD_BYTES / containers.max(1);
    if message.len() <= max {
        return message;
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(policy: Option<&str>, path: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            termination_message_policy: policy.map(str::to_string),
            termination_message_path: path.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn the_file_is_mounted_writable_and_its_last_bytes_are_the_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = container(None, None);
        let mount = prepare(dir.path(), "u", &c, 2)
            .expect("prepare")
            .expect("a mount");
        assert_eq!(mount.target, Path::new("/dev/termination-log"));
        assert!(!mount.read_only);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&mount.source)
            .expect("file")
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o666);
        let exited = |exit_code| Exited {
            root: dir.path(),
            uid: "u",
            container: &c,
            instance: 2,
            exit_code,
            log: dir.path().join("no-log"),
            log_format: LogFormat::Raw,
        };
        assert_eq!(message(&exited(1)), None, "an empty file is no message");
        let long = format!("{}{}", "x".repeat(5000), "the end");
        std::fs::write(&mount.source, &long).expect("write");
        let got = message(&exited(0)).expect("message");
        assert_eq!(got.len(), 4096);
        assert!(got.ends_with("the end"));
        let none = container(None, Some(""));
        assert!(
            prepare(dir.path(), "u", &none, 0)
                .expect("prepare")
                .is_none()
        );
    }

    #[test]
    fn failed_containers_fall_back_to_the_end_of_their_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = container(Some("FallbackToLogsOnError"), Some("/tmp/msg"));
        prepare(dir.path(), "u", &c, 0).expect("prepare");
        let raw = dir.path().join("0.log");
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&raw, &text).expect("log");
        let exited = |exit_code, log: &Path, log_format| Exited {
            root: dir.path(),
            uid: "u",
            container: &c,
            instance: 0,
            exit_code,
            log: log.to_path_buf(),
            log_format,
        };
        let got = message(&exited(2, &raw, LogFormat::Raw)).expect("message");
        assert!(
            got.starts_with("line 21\n") && got.ends_with("line 100\n"),
            "{got}"
        );
        assert_eq!(
            message(&exited(0, &raw, LogFormat::Raw)),
            None,
            "only on failure"
        );
        let cri = dir.path().join("cri.log");
        std::fs::write(
            &cri,
            "2026-01-01T00:00:00.000000000Z stdout P par\n2026-01-01T00:00:00.100000000Z stderr F tial\n",
        )
        .expect("log");
        assert_eq!(
            message(&exited(1, &cri, LogFormat::Cri)).as_deref(),
            Some("partial\n")
        );
        let big = dir.path().join("big.log");
        std::fs::write(&big, format!("{}\n", "y".repeat(3000))).expect("log");
        let got = message(&exited(1, &big, LogFormat::Raw)).expect("message");
        assert_eq!(got.len(), 2048, "at most 2 KiB of the log");
        // Something in the file wins over the log.
        let file = file_path(dir.path(), "u", "c", 0);
        std::fs::write(&file, "from the file").expect("write");
        assert_eq!(
            message(&exited(1, &raw, LogFormat::Raw)).as_deref(),
            Some("from the file")
        );
    }

    #[test]
    fn a_pods_messages_share_twelve_kib() {
        let m = "é".repeat(4000);
        assert_eq!(cap_for_pod(&m, 1).len(), 8000);
        assert_eq!(cap_for_pod(&m, 3).len(), 4096);
        // 12 KiB over 5 is 2457.6: cut to the character boundary below.
        assert_eq!(cap_for_pod(&m, 5).len(), 2456);
    }
}
