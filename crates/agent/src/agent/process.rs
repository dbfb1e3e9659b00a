//! Containers as host processes: spawn one in its own process group (and, given a
//! [`MountPlan`], its own mount namespace) with its output appended to a log file, signal its
//! group, and follow its life either as our child (exit code known) or, after an agent
//! restart, by its PID and start time (a reused PID is never mistaken for it).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use super::mounts::MountPlan;

/// How often an adopted process (not our child) is checked for exit.
const ADOPTED_POLL: Duration = Duration::from_millis(250);

/// What to start.
#[derive(Clone, Debug)]
pub struct Launch<'a> {
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub working_dir: &'a Path,
    pub log: &'a Path,
    /// The container's mounts, in a mount namespace of its own; none: the host's as they are.
    pub mounts: Option<Arc<MountPlan>>,
}

/// A running container process.
#[derive(Debug)]
pub struct Process {
    /// Its PID, which is also its process group ID.
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
    child: Option<tokio::process::Child>,
}

/// Starts `launch` in a new process group, stdin from /dev/null, stdout and stderr appended to
/// its log file. The process outlives the agent (no kill on drop), so an agent restart does
/// not stop containers.
pub fn spawn(launch: &Launch<'_>) -> std::io::Result<Process> {
    let Some((program, args)) = launch.argv.split_first() else {
        return Err(std::io::Error::other("empty command"));
    };
    if let Some(dir) = launch.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(launch.log)?;
    let err = out.try_clone()?;
    let mut cmd = tokio::process::Command::new(program);
    if let Some(plan) = launch.mounts.clone() {
        // SAFETY: `apply` makes only async-signal-safe system calls on prepared data.
        unsafe {
            cmd.pre_exec(move || plan.apply());
        }
    }
    let child = cmd
        .args(args)
        .env_clear()
        .envs(launch.env.iter().cloned())
        .current_dir(launch.working_dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false)
        .spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("process exited before it could be tracked"))?;
    let start_ticks = start_ticks(pid).unwrap_or(0);
    Ok(Process {
        pid,
        start_ticks,
        child: Some(child),
    })
}

impl Process {
    /// A process started by an earlier agent, if it still runs.
    pub fn adopt(pid: u32, start_ticks: u64) -> Option<Process> {
        alive(pid, start_ticks).then_some(Process {
            pid,
            start_ticks,
            child: None,
        })
    }

    /// Waits for the process to end: its exit code (128 + signal when killed), or `None` when
    /// it was adopted and its exit code is unknowable. What is left of its process group is
    /// killed, as a runtime tears down a container's cgroup.
    pub async fn wait(mut self) -> Option<i32> {
        let code = match self.child.take() {
            Some(mut child) => match child.wait().await {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    status.code().or_else(|| status.signal().map(|s| 128 + s))
                }
                Err(_) => None,
            },
            None => {
                while alive(self.pid, self.start_ticks) {
                    tokio::time::sleep(ADOPTED_POLL).await;
                }
                None
            }
        };
        let _ = signal_group(self.pid, Signal::KILL);
        code
    }
}

/// Sends `sig` to the process group of `pid`, if that process is still the one started at
/// `start_ticks`.
pub fn signal(pid: u32, start_ticks: u64, sig: Signal) -> bool {
    alive(pid, start_ticks) && signal_group(pid, sig).is_ok()
}

fn signal_group(pid: u32, sig: Signal) -> rustix::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or(rustix::io::Errno::SRCH)?;
    rustix::process::kill_process_group(pid, sig)
}

/// Whether `pid` runs (not a zombie) and started at `start_ticks`.
pub fn alive(pid: u32, start_ticks: u64) -> bool {
    stat_fields(pid)
        .is_some_and(|(state, ticks)| state != 'Z' && state != 'X' && ticks == start_ticks)
}

/// The start time of `pid` in clock ticks since boot.
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid).map(|(_, t)| t)
}

/// State and start time from `/proc/<pid>/stat`. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted after its last `)`.
fn stat_fields(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was `state`; `starttime` is field 22.
    let ticks = fields.nth(18)?.parse().ok()?;
    Some((state, ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 10 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 98765)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[tokio::test]
    async fn spawn_logs_waits_and_signals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("c/0.log");
        let argv = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            "echo out; echo err >&2; echo $WHO; exit 3".to_string(),
        ];
        let env = vec![("WHO".to_string(), "me".to_string())];
        let p = spawn(&Launch {
            argv: &argv,
            env: &env,
            working_dir: dir.path(),
            log: &log,
            mounts: None,
        })
        .expect("spawn");
        assert_eq!(p.wait().await, Some(3));
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(
            text.contains("out\n") && text.contains("err\n") && text.contains("me\n"),
            "{text}"
        );

        let argv = vec!["/bin/sleep".to_string(), "30".to_string()];
        let p = spawn(&Launch {
            argv: &argv,
            env: &[],
            working_dir: dir.path(),
            log: &log,
            mounts: None,
        })
        .expect("spawn");
        let (pid, ticks) = (p.pid, p.start_ticks);
        assert!(alive(pid, ticks));
        assert!(
            !alive(pid, ticks + 1),
            "a different start time is a different process"
        );
        // An adopted handle sees the same process.
        let adopted = Process::adopt(pid, ticks).expect("adopt");
        assert!(signal(pid, ticks, Signal::TERM));
        assert_eq!(p.wait().await, Some(128 + 15));
        assert_eq!(adopted.wait().await, None);
        assert!(!signal(pid, ticks, Signal::TERM));
        assert!(Process::adopt(pid, ticks).is_none());
    }
}
