//! `exec` into a host-process container, as `nsenter` would: the command joins the main
//! process's mount namespace (where its volumes are mounted), starts in its working directory
//! with its environment (read from `/proc/<pid>`), and talks to the client through pipes, or
//! through a pseudo-terminal when a TTY is asked (the session leader of a new session, the
//! terminal its controlling one, so `sh` is interactive and `resize` reaches it). Exec probes
//! run the same way to completion ([`exec_sync`]), so they see what the container sees.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

use rustix::pty::OpenptFlags;
use rustix::thread::LinkNameSpaceType;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{EXEC_OUTPUT_LIMIT, ExecSyncResult, LocalExec, StreamOptions};
use crate::agent::process;

/// What the command inherits from the container's main process.
struct ContainerContext {
    env: Vec<(String, String)>,
    cwd: CString,
    /// Its mount namespace, when it differs from the agent's.
    mount_ns: Option<File>,
}

/// The environment, working directory and mount namespace of process `pid`.
fn context_of(pid: u32) -> std::io::Result<ContainerContext> {
    let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
    let env = parse_environ(&environ);
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))?;
    let cwd = CString::new(cwd.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/mnt"))?;
    let ours = std::fs::metadata("/proc/self/ns/mnt")?;
    use std::os::unix::fs::MetadataExt;
    let mount_ns = if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        None
    } else {
        Some(File::open(format!("/proc/{pid}/ns/mnt"))?)
    };
    Ok(ContainerContext { env, cwd, mount_ns })
}

/// `NAME=value` entries of a `/proc/<pid>/environ` (NUL-separated).
fn parse_environ(data: &[u8]) -> Vec<(String, String)> {
    data.split(|b| *b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (k, v) = entry.split_once('=')?;
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// A pseudo-terminal: the agent's end and the command's.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

fn open_pty() -> std::io::Result<Pty> {
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(std::path::Path::new(std::ffi::OsStr::from_bytes(
            name.as_bytes(),
        )))?;
    Ok(Pty {
        master,
        slave: slave.into(),
    })
}

/// Starts `argv` in the container whose main process is `pid` (started at `start_ticks`).
/// `Err`: the text upstream's runtime reports for a command that could not start.
pub fn exec_in(
    pid: u32,
    start_ticks: u64,
    argv: &[String],
    opts: StreamOptions,
) -> Result<LocalExec, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("command is required".to_string());
    };
    if !process::alive(pid, start_ticks) {
        return Err("container is not running".to_string());
    }
    let cx = context_of(pid).map_err(|e| format!("reading the container's process: {e}"))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(cx.env.iter().cloned())
        .kill_on_drop(true);
    let pty = if opts.tty {
        Some(open_pty().map_err(|e| format!("opening a terminal: {e}"))?)
    } else {
        None
    };
    match &pty {
        Some(p) => {
            let io = |fd: &OwnedFd| fd.try_clone().map(Stdio::from);
            let failed = |e: std::io::Error| format!("opening a terminal: {e}");
            cmd.stdin(io(&p.slave).map_err(failed)?)
                .stdout(io(&p.slave).map_err(failed)?)
                .stderr(io(&p.slave).map_err(failed)?);
        }
        None => {
            let piped = |wanted: bool| {
                if wanted {
                    Stdio::piped()
                } else {
                    Stdio::null()
                }
            };
            cmd.stdin(piped(opts.stdin))
                .stdout(piped(opts.stdout))
                .stderr(piped(opts.stderr));
        }
    }
    let mount_ns = cx.mount_ns;
    let cwd = cx.cwd;
    let with_tty = pty.is_some();
    // SAFETY: only system calls on data prepared before the fork (setns, chdir, setsid and
    // the controlling-terminal ioctl), which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(ns) = &mount_ns {
                rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(LinkNameSpaceType::Mount),
                )?;
            }
            rustix::process::chdir(cwd.as_c_str())?;
            if with_tty {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(std::io::stdin())?;
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| spawn_failure(program, &e))?;
    let Some(pty) = pty else {
        let stdin = child
            .stdin
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>);
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>);
        return Ok(LocalExec {
            child,
            stdin,
            stdout,
            stderr,
            resize: None,
        });
    };
    drop(pty.slave);
    let failed = |e: std::io::Error| format!("opening a terminal: {e}");
    let reader = File::from(pty.master.try_clone().map_err(failed)?);
    let writer = File::from(pty.master.try_clone().map_err(failed)?);
    let master = pty.master;
    Ok(LocalExec {
        child,
        stdin: Some(Box::new(tokio::fs::File::from_std(writer))),
        stdout: Some(Box::new(tokio::fs::File::from_std(reader))),
        stderr: None,
        resize: Some(Box::new(move |cols, rows| {
            let size = rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let _ = rustix::termios::tcsetwinsize(&master, size);
        })),
    })
}

/// Runs `argv` to completion in the container whose main process is `pid`, as the CRI's
/// `ExecSync`: its exit code and output (stdout then stderr), or [`ExecSyncResult::TimedOut`]
/// (the command killed) when it runs past `timeout`. `Err`: it could not start.
pub async fn exec_sync(
    pid: u32,
    start_ticks: u64,
    argv: &[String],
    timeout: std::time::Duration,
) -> Result<ExecSyncResult, String> {
    let opts = StreamOptions {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let mut exec = exec_in(pid, start_ticks, argv, opts)?;
    let (stdout, stderr) = (exec.stdout.take(), exec.stderr.take());
    let run = async {
        let (out, err) = tokio::join!(read_capped(stdout), read_capped(stderr));
        let status = exec.child.wait().await;
        (out, err, status)
    };
    // On a timeout the child is dropped, and `kill_on_drop` kills it.
    let Ok((mut output, err, status)) = tokio::time::timeout(timeout, run).await else {
        return Ok(ExecSyncResult::TimedOut);
    };
    let status = status.map_err(|e| format!("waiting for the command: {e}"))?;
    output.extend_from_slice(&err);
    output.truncate(EXEC_OUTPUT_LIMIT);
    // Killed by a signal: the shell's convention, 128 + the signal.
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    Ok(ExecSyncResult::Exited { code, output })
}

/// Everything a stream yields until it ends, keeping the first [`EXEC_OUTPUT_LIMIT`] bytes
/// (the rest is read and dropped so the writer never blocks on a full pipe).
async fn read_capped(stream: Option<Box<dyn AsyncRead + Send + Unpin>>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut stream) = stream else {
        return kept;
    };
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let room = EXEC_OUTPUT_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
    kept
}

/// A command that could not start, worded as runc words it.
fn spawn_failure(program: &str, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::NotFound if !program.contains('/') => {
            format!("exec: \"{program}\": executable file not found in $PATH")
        }
        std::io::ErrorKind::NotFound => {
            format!("exec: \"{program}\": stat {program}: no such file or directory")
        }
        _ => format!("exec: \"{program}\": {e}"),
    };
    format!("failed to exec in container: starting container process caused: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn environ_entries_are_split_at_the_first_equals_sign() {
        let env = parse_environ(b"A=1\0B=x=y\0\0=z\0C\0");
        assert_eq!(
            env,
            vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
    }

    #[test]
    fn a_missing_program_is_worded_as_runc_does() {
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(
            spawn_failure("nope", &e)
                .ends_with("exec: \"nope\": executable file not found in $PATH")
        );
    }

    #[tokio::test]
    async fn a_command_runs_with_the_containers_environment_and_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut main = std::process::Command::new("sleep")
            .arg("30")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("GREETING", "hello")
            .current_dir(dir.path())
            .spawn()
            .expect("sleep");
        let pid = main.id();
        let ticks = process::start_ticks(pid).expect("ticks");
        let argv: Vec<String> = ["sh", "-c", "read x; echo \"$GREETING $x $(pwd)\"; exit 3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let opts = StreamOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let mut exec = exec_in(pid, ticks, &argv, opts).expect("exec");
        let mut stdin = exec.stdin.take().expect("stdin");
        stdin.write_all(b"world\n").await.expect("write");
        drop(stdin);
        let mut out = String::new();
        exec.stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .await
            .expect("read");
        let status = exec.child.wait().await.expect("wait");
        let _ = main.kill();
        let _ = main.wait();
        let canonical = dir.path().canonicalize().expect("canonical");
        assert_eq!(out, format!("hello world {}\n", canonical.display()));
        assert_eq!(status.code(), Some(3));
    }

    #[tokio::test]
    async fn exec_sync_reports_output_exit_code_and_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut main = std::process::Command::new("sleep")
            .arg("30")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("WHO", "probe")
            .current_dir(dir.path())
            .spawn()
            .expect("sleep");
        let pid = main.id();
        let ticks = process::start_ticks(pid).expect("ticks");
        let sh = |script: &str| -> Vec<String> {
            ["sh", "-c", script].iter().map(|s| s.to_string()).collect()
        };
        let second = std::time::Duration::from_secs(5);
        let failed = exec_sync(
            pid,
            ticks,
            &sh("echo err >&2; echo \"out $WHO\"; exit 4"),
            second,
        )
        .await
        .expect("ran");
        assert_eq!(
            failed,
            ExecSyncResult::Exited {
                code: 4,
                output: b"out probe\nerr\n".to_vec()
            },
            "stdout then stderr, with the container's environment"
        );
        let long = exec_sync(pid, ticks, &sh("head -c 20000 /dev/zero"), second)
            .await
            .expect("ran");
        assert!(
            matches!(long, ExecSyncResult::Exited { code: 0, ref output } if output.len() == EXEC_OUTPUT_LIMIT)
        );
        let started = std::time::Instant::now();
        let slow = exec_sync(
            pid,
            ticks,
            &sh("exec sleep 5"),
            std::time::Duration::from_millis(300),
        )
        .await
        .expect("ran");
        assert_eq!(slow, ExecSyncResult::TimedOut);
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
        let missing = exec_sync(pid, ticks, &["no-such-program".to_string()], second).await;
        assert!(
            missing.is_err_and(|e| e.contains("executable file not found")),
            "a command that cannot start is an error, not an exit"
        );
        let _ = main.kill();
        let _ = main.wait();
    }
}
