//! `--runtime process`: containers as host processes (`process`), each in its own process
//! group and, where the agent may mount, its own mount namespace with the volume mounts
//! (`mounts::MountPlan`), in a cgroup v2 with its limits where writable (`cgroup`). The
//! program is the pod's `command` or the image map's entry for its image.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use rustix::process::Signal;
use tracing::warn;

use super::{
    ContainerId, ContainerRuntime, ContainerUsage, ExecSyncResult, LogFormat, PodRef, PodSandbox,
    StartError, StartRequest, Started, StreamError, StreamOptions, StreamTarget, UsageQuery,
    host_exec, host_usage,
};
use crate::agent::RUNTIME_SCHEME;
use crate::agent::cgroup::Cgroups;
use crate::agent::env::{self, ImageMap};
use crate::agent::mounts::MountPlan;
use crate::agent::process::{self, Launch, Process};
use crate::agent::state;

/// Host processes as containers.
pub struct HostProcessRuntime {
    pub root_dir: PathBuf,
    pub image_map: ImageMap,
    /// Whether containers get their own mount namespace (the agent may mount).
    pub mount_namespaces: bool,
    pub cgroups: Option<Cgroups>,
}

fn started(p: Process) -> Started {
    Started {
        id: ContainerId::Process {
            pid: p.pid,
            start_ticks: p.start_ticks,
        },
        image_ref: None,
        exited: p.wait().boxed(),
    }
}

impl HostProcessRuntime {
    fn start_now(&self, req: &StartRequest<'_>) -> Result<Started, StartError> {
        let spec = req.container;
        let argv = env::argv(spec, &self.image_map, req.env)
            .map_err(|e| StartError::new(e.reason, e.message))?;
        let working_dir = spec
            .working_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or("/");
        let mounts = if self.mount_namespaces && !req.mounts.is_empty() {
            let plan =
                MountPlan::build(req.mounts, std::path::Path::new(working_dir)).map_err(|e| {
                    StartError::new(
                        "CreateContainerError",
                        format!("failed to prepare the mounts: {e}"),
                    )
                })?;
            Some(Arc::new(plan))
        } else {
            None
        };
        let p = process::spawn(&Launch {
            argv: &argv,
            env: req.env,
            working_dir: std::path::Path::new(working_dir),
            log: &req.log,
            mounts,
        })
        .map_err(|e| {
            StartError::new(
                "RunContainerError",
                format!("failed to start {:?}: {e}", argv[0]),
            )
        })?;
        let uid = req.pod.metadata.uid.as_deref().unwrap_or_default();
        if let Some(cg) = &self.cgroups
            && let Err(e) = cg.place(uid, spec, p.pid)
        {
            warn!(pod = ?req.pod.metadata.name, container = %spec.name, error = %e, "resource limits not applied");
        }
        Ok(started(p))
    }
}

impl ContainerRuntime for HostProcessRuntime {
    fn scheme(&self) -> &str {
        RUNTIME_SCHEME.trim_end_matches("://")
    }

    fn passes_host_path(&self) -> bool {
        true
    }

    fn prepare_pod<'a>(&'a self, _pod: &'a Pod) -> BoxFuture<'a, Result<PodSandbox, StartError>> {
        async { Ok(PodSandbox::default()) }.boxed()
    }

    fn start<'a>(&'a self, req: StartRequest<'a>) -> BoxFuture<'a, Result<Started, StartError>> {
        let r = self.start_now(&req);
        async move { r }.boxed()
    }

    fn adopt<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Option<Started>> {
        let found = match id {
            ContainerId::Process { pid, start_ticks } => Process::adopt(*pid, *start_ticks),
            ContainerId::Cri(_) => None,
        };
        async move { found.map(started) }.boxed()
    }

    /// In the container's mount namespace, working directory and environment, as
    /// `kubectl exec` runs (`host_exec`).
    fn exec_sync(
        &self,
        id: &ContainerId,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<ExecSyncResult, String>> {
        let id = id.clone();
        async move {
            match id {
                ContainerId::Process { pid, start_ticks } => {
                    host_exec::exec_sync(pid, start_ticks, &cmd, timeout).await
                }
                ContainerId::Cri(_) => Err("not a host-process container".to_string()),
            }
        }
        .boxed()
    }

    fn exec_stream<'a>(
        &'a self,
        id: &'a ContainerId,
        cmd: Vec<String>,
        opts: StreamOptions,
    ) -> BoxFuture<'a, Result<StreamTarget, StreamError>> {
        let r = match *id {
            ContainerId::Process { pid, start_ticks } => Ok(StreamTarget::Local(
                host_exec::exec_in(pid, start_ticks, &cmd, opts).map(Box::new),
            )),
            ContainerId::Cri(_) => Err(StreamError::new(500, "not a host-process container")),
        };
        async move { r }.boxed()
    }

    /// A host process's standard streams are not kept (its output goes to its log file), so
    /// there is nothing to attach to.
    fn attach_stream<'a>(
        &'a self,
        _id: &'a ContainerId,
        _opts: StreamOptions,
    ) -> BoxFuture<'a, Result<StreamTarget, StreamError>> {
        let e = StreamError::new(
            400,
            "attach is not supported by the process runtime: a host process's output goes to its log (kubectl logs -f), and its input is /dev/null",
        );
        async move { Err(e) }.boxed()
    }

    /// Port-forward's protocol is SPDY (also inside kubectl's WebSocket tunnel), which this
    /// agent does not speak; host processes share the node's network anyway.
    fn port_forward<'a>(
        &'a self,
        _pod: &'a PodRef,
    ) -> BoxFuture<'a, Result<StreamTarget, StreamError>> {
        let e = StreamError::new(
            400,
            "port-forward is not supported by the process runtime: its pods share the node's network, connect to the node's address instead",
        );
        async move { Err(e) }.boxed()
    }

    fn usage<'a>(&'a self, of: &'a [UsageQuery]) -> BoxFuture<'a, Vec<Option<ContainerUsage>>> {
        let figures = of
            .iter()
            .map(|q| {
                let ContainerId::Process { pid, start_ticks } = q.id else {
                    return None;
                };
                let cgroup = self
                    .cgroups
                    .as_ref()
                    .and_then(|cg| host_usage::of_cgroup(&cg.path(&q.pod_uid, &q.container)));
                let usage = cgroup.or_else(|| host_usage::of_process(pid))?;
                // A PID reused since is somebody else's.
                process::alive(pid, start_ticks).then_some(usage)
            })
            .collect();
        async move { figures }.boxed()
    }

    /// SIGTERM to the process group now, SIGKILL after `grace` if it is still the same process.
    fn stop(&self, id: &ContainerId, grace: Duration) {
        let ContainerId::Process { pid, start_ticks } = *id else {
            return;
        };
        if !process::signal(pid, start_ticks, Signal::TERM) {
            return;
        }
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + grace;
            while process::alive(pid, start_ticks) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50).min(grace)).await;
            }
            process::signal(pid, start_ticks, Signal::KILL);
        });
    }

    fn remove_pod<'a>(&'a self, pod: &'a PodRef) -> BoxFuture<'a, ()> {
        if let Some(cg) = &self.cgroups {
            cg.remove_pod(&pod.uid);
        }
        async {}.boxed()
    }

    fn log_path(&self, pod: &PodRef, container: &str, instance: u32) -> PathBuf {
        state::log_path(&self.root_dir, &pod.uid, container, instance)
    }

    fn log_format(&self) -> LogFormat {
        LogFormat::Raw
    }
}
