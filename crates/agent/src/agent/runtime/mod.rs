//! The container runtime a pod worker drives, as the kubelet's `kubecontainer.Runtime`: the
//! worker keeps the pod's lifecycle (init containers in order, restart policy, back-off,
//! probes, status, events) and asks the runtime only to prepare the pod, start, stop and
//! re-attach to containers, and tear the pod down. Two runtimes: host processes
//! ([`host_process`], `--runtime process`) and a CRI runtime such as containerd
//! ([`crate::agent::cri`], `--container-runtime-endpoint`).

pub mod host_exec;
pub mod host_process;
pub mod host_usage;

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Container, Pod};

use super::mounts::MountSpec;
use super::state::ContainerRecord;

/// Why a container could not be started: the waiting reason and message its status shows
/// (`CreateContainerError`, `ErrImagePull`, `RunContainerError`, ...).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct StartError {
    pub reason: &'static str,
    pub message: String,
}

impl StartError {
    pub fn new(reason: &'static str, message: impl Into<String>) -> StartError {
        StartError {
            reason,
            message: message.into(),
        }
    }
}

/// What a pod's containers share once the runtime prepared the pod.
#[derive(Clone, Debug, Default)]
pub struct PodSandbox {
    /// The pod's own IP, when it has one apart from the node's (a CNI network).
    pub pod_ip: Option<String>,
}

/// One container instance to start.
pub struct StartRequest<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    /// The log instance (0 for the first start, then one more per restart).
    pub instance: u32,
    /// The resolved environment (`env`, `envFrom`, the Service variables).
    pub env: &'a [(String, String)],
    /// The container's volume mounts as host paths.
    pub mounts: &'a [MountSpec],
    /// Where its output goes ([`ContainerRuntime::log_path`]).
    pub log: PathBuf,
}

/// A started (or re-attached) container.
pub struct Started {
    /// The runtime's ID for it (kept in the pod's record to re-attach after an agent restart).
    pub id: ContainerId,
    /// The image reference it runs (`imageID` in its status).
    pub image_ref: Option<String>,
    /// Resolves when it has exited: its exit code, or `None` when it cannot be known.
    pub exited: BoxFuture<'static, Option<i32>>,
}

/// How a runtime names a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerId {
    /// A host process: its PID and start time (a reused PID is never mistaken for it).
    Process { pid: u32, start_ticks: u64 },
    /// The CRI's container ID.
    Cri(String),
}

impl ContainerId {
    /// Writes the ID into a container's durable record.
    pub fn record(&self, rec: &mut ContainerRecord) {
        match self {
            ContainerId::Process { pid, start_ticks } => {
                rec.pid = Some(*pid);
                rec.start_ticks = *start_ticks;
                rec.container_id = None;
            }
            ContainerId::Cri(id) => {
                rec.pid = None;
                rec.container_id = Some(id.clone());
            }
        }
    }

    /// The ID a durable record names, if a container was running.
    pub fn of_record(rec: &ContainerRecord) -> Option<ContainerId> {
        match (&rec.container_id, rec.pid) {
            (Some(id), _) => Some(ContainerId::Cri(id.clone())),
            (None, Some(pid)) => Some(ContainerId::Process {
                pid,
                start_ticks: rec.start_ticks,
            }),
            (None, None) => None,
        }
    }
}

/// Where the logs of a container instance are, and how they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// The process's output as it is.
    #[default]
    Raw,
    /// The CRI's format: `<RFC 3339 nano time> <stream> <P|F> <text>` per line.
    Cri,
}

/// Names a pod by what its durable record keeps (also of pods that no longer exist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Which of a command's standard streams a client asked for (exec and attach).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A command the agent itself started in a container, for a client to stream: the stream
/// ends when it exits.
pub struct LocalExec {
    pub child: tokio::process::Child,
    pub stdin: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    pub stdout: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
    pub stderr: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>,
    /// Sets the terminal's size (columns, rows) when it has one.
    pub resize: Option<Box<dyn Fn(u16, u16) + Send + Sync>>,
}

/// Where an exec, attach or port-forward stream is served.
pub enum StreamTarget {
    /// The agent serves it (host processes): the started command, or why it did not start
    /// (reported on the stream's error channel, as upstream reports a failed exec).
    Local(Result<Box<LocalExec>, String>),
    /// The runtime's own streaming server serves it at this URL (the CRI's): the agent
    /// proxies the client's request there, as the kubelet's streaming proxy does.
    Url(String),
}

/// Why a stream could not be set up before the client's connection was upgraded: an HTTP
/// status and the text the kubelet answers with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StreamError {
    pub status: u16,
    pub message: String,
}

impl StreamError {
    pub fn new(status: u16, message: impl Into<String>) -> StreamError {
        StreamError {
            status,
            message: message.into(),
        }
    }
}

/// The most of an exec probe's output that is kept (upstream's exec prober: 10 KiB).
pub const EXEC_OUTPUT_LIMIT: usize = 10 * 1024;

/// What a command run to completion in a container did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecSyncResult {
    /// It exited with `code`; `output` is its stdout then its stderr (at most
    /// [`EXEC_OUTPUT_LIMIT`] bytes), as the kubelet's `RunInContainer` joins them.
    Exited { code: i32, output: Vec<u8> },
    /// It still ran when the timeout passed (and was killed).
    TimedOut,
}

/// What a running container uses: CPU time so far and memory now (cgroup or runtime figures).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    pub cpu_core_nanos: u64,
    pub memory_working_set: u64,
    pub memory_usage: u64,
}

/// A running container whose usage is asked.
#[derive(Clone, Debug)]
pub struct UsageQuery {
    pub pod_uid: String,
    pub container: String,
    pub id: ContainerId,
}

/// A container runtime, as the pod worker uses it.
pub trait ContainerRuntime: Send + Sync {
    /// `containerID`'s scheme in container statuses (`containerd`, `pernode`).
    fn scheme(&self) -> &str;

    /// Whether containers get the agent's `PATH` (host processes do; images bring their own).
    fn passes_host_path(&self) -> bool;

    /// Prepares the pod before its first container starts (a CRI pod sandbox); called again
    /// before each start, so it must return the existing sandbox when there is one.
    fn prepare_pod<'a>(&'a self, pod: &'a Pod) -> BoxFuture<'a, Result<PodSandbox, StartError>>;

    /// Starts one container instance.
    fn start<'a>(&'a self, req: StartRequest<'a>) -> BoxFuture<'a, Result<Started, StartError>>;

    /// Re-attaches to a container an earlier agent started, if it still runs.
    fn adopt<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Option<Started>>;

    /// Runs `cmd` in a running container to completion (exec probes; the CRI's `ExecSync`),
    /// bounded by `timeout`. `Err`: it could not be run at all (the runtime's words).
    fn exec_sync(
        &self,
        id: &ContainerId,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<ExecSyncResult, String>>;

    /// Runs `cmd` in a running container for a client's `exec` stream.
    fn exec_stream<'a>(
        &'a self,
        id: &'a ContainerId,
        cmd: Vec<String>,
        opts: StreamOptions,
    ) -> BoxFuture<'a, Result<StreamTarget, StreamError>>;

    /// Connects a client's `attach` stream to a running container's main process.
    fn attach_stream<'a>(
        &'a self,
        id: &'a ContainerId,
        opts: StreamOptions,
    ) -> BoxFuture<'a, Result<StreamTarget, StreamError>>;

    /// Where a client's `portforward` stream to the pod's ports is served.
    fn port_forward<'a>(
        &'a self,
        pod: &'a PodRef,
    ) -> BoxFuture<'a, Result<StreamTarget, StreamError>>;

    /// The usage of each of `of` (in order), `None` where the runtime has no figures.
    fn usage<'a>(&'a self, of: &'a [UsageQuery]) -> BoxFuture<'a, Vec<Option<ContainerUsage>>>;

    /// Asks a container to stop: gracefully now, forcibly after `grace`. Returns at once.
    fn stop(&self, id: &ContainerId, grace: Duration);

    /// Removes what the runtime holds for the pod (its sandbox, containers and their logs),
    /// once all of its containers stopped.
    fn remove_pod<'a>(&'a self, pod: &'a PodRef) -> BoxFuture<'a, ()>;

    /// The log file of a container instance.
    fn log_path(&self, pod: &PodRef, container: &str, instance: u32) -> PathBuf;

    /// How log files are written.
    fn log_format(&self) -> LogFormat;
}
