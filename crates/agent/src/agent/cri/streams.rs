//! The CRI's streaming calls: `Exec`, `Attach` and `PortForward` answer with a URL on the
//! runtime's own streaming server (containerd's, on loopback), which the agent's streaming
//! endpoints proxy the client to, as the kubelet does (its `redirectContainerStreaming`
//! off: the kubelet proxies). Also the runtime's container stats (`ListContainerStats`).

use k8s_cri::v1 as cri;

use super::{CriRuntime, status_text};
use crate::agent::runtime::{
    ContainerId, ContainerUsage, PodRef, StreamError, StreamOptions, StreamTarget, UsageQuery,
};

/// A failed streaming call as the kubelet answers it (its `streaming.WriteError`): 404 for
/// NotFound, 429 for ResourceExhausted, else 500, with the gRPC error's text.
fn stream_error(e: &tonic::Status) -> StreamError {
    let status = match e.code() {
        tonic::Code::NotFound => 404,
        tonic::Code::ResourceExhausted => 429,
        _ => 500,
    };
    StreamError::new(status, status_text(e))
}

fn cri_id(id: &ContainerId) -> Result<String, StreamError> {
    match id {
        ContainerId::Cri(id) => Ok(id.clone()),
        ContainerId::Process { .. } => Err(StreamError::new(500, "not a CRI container")),
    }
}

impl CriRuntime {
    pub(super) async fn exec_url(
        &self,
        id: &ContainerId,
        cmd: Vec<String>,
        opts: StreamOptions,
    ) -> Result<StreamTarget, StreamError> {
        let r = self
            .runtime
            .clone()
            .exec(cri::ExecRequest {
                container_id: cri_id(id)?,
                cmd,
                tty: opts.tty,
                stdin: opts.stdin,
                stdout: opts.stdout,
                stderr: opts.stderr,
            })
            .await
            .map_err(|e| stream_error(&e))?;
        Ok(StreamTarget::Url(r.into_inner().url))
    }

    pub(super) async fn attach_url(
        &self,
        id: &ContainerId,
        opts: StreamOptions,
    ) -> Result<StreamTarget, StreamError> {
        let r = self
            .runtime
            .clone()
            .attach(cri::AttachRequest {
                container_id: cri_id(id)?,
                stdin: opts.stdin,
                tty: opts.tty,
                stdout: opts.stdout,
                stderr: opts.stderr,
            })
            .await
            .map_err(|e| stream_error(&e))?;
        Ok(StreamTarget::Url(r.into_inner().url))
    }

    /// The pod's ready sandbox's port-forward URL; the ports come with the client's streams.
    pub(super) async fn port_forward_url(&self, pod: &PodRef) -> Result<StreamTarget, StreamError> {
        let id = match self.cached(&pod.uid) {
            Some(s) => s.id,
            None => self
                .list_sandboxes(&pod.uid, true)
                .await
                .map_err(|e| stream_error(&e))?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    StreamError::new(404, format!("pod sandbox of {:?} not found", pod.name))
                })?,
        };
        let r = self
            .runtime
            .clone()
            .port_forward(cri::PortForwardRequest {
                pod_sandbox_id: id,
                port: Vec::new(),
            })
            .await
            .map_err(|e| stream_error(&e))?;
        Ok(StreamTarget::Url(r.into_inner().url))
    }
}

impl CriRuntime {
    /// The runtime's figures for `of` from one `ListContainerStats` (CPU time so far, memory
    /// working set and usage), as the kubelet's CRI stats provider reads them.
    pub(super) async fn usage_of(&self, of: &[UsageQuery]) -> Vec<Option<ContainerUsage>> {
        let stats = match self
            .runtime
            .clone()
            .list_container_stats(cri::ListContainerStatsRequest { filter: None })
            .await
        {
            Ok(r) => r.into_inner().stats,
            Err(e) => {
                tracing::debug!(error = %status_text(&e), "container stats unavailable");
                return vec![None; of.len()];
            }
        };
        let by_id: std::collections::HashMap<String, ContainerUsage> = stats
            .into_iter()
            .filter_map(|s| {
                let id = s.attributes?.id;
                let cpu = s
                    .cpu
                    .and_then(|c| c.usage_core_nano_seconds)
                    .map(|v| v.value);
                let memory = s.memory.unwrap_or_default();
                let usage = ContainerUsage {
                    cpu_core_nanos: cpu?,
                    memory_working_set: memory.working_set_bytes.map_or(0, |v| v.value),
                    memory_usage: memory.usage_bytes.map_or(0, |v| v.value),
                };
                Some((id, usage))
            })
            .collect();
        of.iter()
            .map(|q| match &q.id {
                ContainerId::Cri(id) => by_id.get(id).copied(),
                ContainerId::Process { .. } => None,
            })
            .collect()
    }
}
