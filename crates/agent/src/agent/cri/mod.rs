//! The CRI runtime (`--container-runtime-endpoint unix:///run/containerd/containerd.sock`):
//! pods as CRI pod sandboxes and containers through the CRI v1 API (`runtime.v1`
//! RuntimeService and ImageService, the `k8s-cri` crate's tonic client over the runtime's
//! Unix socket), as the kubelet's kuberuntime manager drives them: RunPodSandbox (reused while
//! ready; found again by the pod UID label after an agent restart), images by pull policy with
//! pull secrets (`images`), CreateContainer and StartContainer from [`config`], exits by
//! relisting the containers (`exits`, the PLEG's way), StopContainer with the grace period,
//! StopPodSandbox and RemovePodSandbox when the pod is gone. Logs are the runtime's CRI-format files under
//! `<pod logs dir>/<namespace>_<pod>_<uid>/<container>/<instance>.log`.

pub mod config;
mod exits;
pub mod images;
mod streams;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::Api;
use tonic::transport::{Channel, Endpoint, Uri};
use tracing::warn;

use super::AgentOptions;
use super::events::{self, Recorder};
use super::runtime::{
    ContainerId, ContainerRuntime, ContainerUsage, EXEC_OUTPUT_LIMIT, ExecSyncResult, LogFormat,
    PodRef, PodSandbox, StartError, StartRequest, Started, StreamError, StreamOptions,
    StreamTarget, UsageQuery,
};

/// How much longer than a command's own timeout an `ExecSync` call may take.
const EXEC_SYNC_MARGIN: Duration = Duration::from_secs(30);

/// Errors reaching the runtime.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error("connecting: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("{0}")]
    Status(#[from] tonic::Status),
}

/// A pod's sandbox as the runtime made it.
#[derive(Clone)]
struct Sandbox {
    id: String,
    config: cri::PodSandboxConfig,
    info: PodSandbox,
}

/// The CRI runtime.
pub struct CriRuntime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    client: kube::Client,
    recorder: Recorder,
    node_name: String,
    logs_root: PathBuf,
    /// `<runtime name>://<version>` for the node's `containerRuntimeVersion`.
    version: String,
    /// Sandboxes by pod UID.
    sandboxes: Mutex<HashMap<String, Sandbox>>,
    /// The exits of the containers followed.
    exits: exits::ExitWatch,
}

fn status_text(s: &tonic::Status) -> String {
    format!("rpc error: code = {:?} desc = {}", s.code(), s.message())
}

impl CriRuntime {
    /// Connects to the runtime's socket and asks its version.
    pub async fn connect(
        socket: &Path,
        opts: &AgentOptions,
        client: kube::Client,
        recorder: Recorder,
    ) -> Result<CriRuntime, CriError> {
        let path = socket.to_path_buf();
        // The URI is not used: every connection goes to the socket.
        let channel = Endpoint::from_static("http://localhost")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }))
            .await?;
        let mut runtime = RuntimeServiceClient::new(channel.clone());
        let v = runtime
            .version(cri::VersionRequest {
                version: "v1".into(),
            })
            .await?
            .into_inner();
        let exits = exits::ExitWatch::start(runtime.clone());
        Ok(CriRuntime {
            runtime,
            images: ImageServiceClient::new(channel),
            client,
            recorder,
            node_name: opts.node_name.clone(),
            logs_root: opts.pod_logs_dir.clone(),
            version: format!("{}://{}", v.runtime_name, v.runtime_version),
            sandboxes: Mutex::new(HashMap::new()),
            exits,
        })
    }

    /// `<runtime name>://<version>`, e.g. `containerd://1.6.20`.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn cached(&self, uid: &str) -> Option<Sandbox> {
        self.sandboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned()
    }

    /// The sandboxes of pod `uid` the runtime has (`ready`: only those still ready).
    async fn list_sandboxes(&self, uid: &str, ready: bool) -> Result<Vec<String>, tonic::Status> {
        let filter = cri::PodSandboxFilter {
            label_selector: HashMap::from([(config::POD_UID_LABEL.to_string(), uid.to_string())]),
            state: ready.then_some(cri::PodSandboxStateValue {
                state: cri::PodSandboxState::SandboxReady as i32,
            }),
            ..Default::default()
        };
        let items = self
            .runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await?
            .into_inner()
            .items;
        Ok(items.into_iter().map(|s| s.id).collect())
    }

    async fn sandbox_info(&self, id: &str, pod: &Pod) -> PodSandbox {
        if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
            return PodSandbox::default();
        }
        let status = self
            .runtime
            .clone()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: false,
            })
            .await;
        let ip = status
            .ok()
            .and_then(|s| s.into_inner().status)
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .filter(|ip| !ip.is_empty());
        PodSandbox { pod_ip: ip }
    }

    async fn ensure_sandbox(&self, pod: &Pod) -> Result<Sandbox, StartError> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Some(s) = self.cached(&uid) {
            return Ok(s);
        }
        let config = config::sandbox_config(pod, &self.node_name, &self.logs_root);
        let existing = self
            .list_sandboxes(&uid, true)
            .await
            .map_err(|e| StartError::new("ContainerCreating", status_text(&e)))?;
        let id = match existing.into_iter().next() {
            Some(id) => id,
            None => {
                if let Err(e) = std::fs::create_dir_all(&config.log_directory) {
                    warn!(dir = %config.log_directory, error = %e, "cannot create the pod's log directory");
                }
                let made = self
                    .runtime
                    .clone()
                    .run_pod_sandbox(cri::RunPodSandboxRequest {
                        config: Some(config.clone()),
                        runtime_handler: String::new(),
                    })
                    .await;
                match made {
                    Ok(r) => r.into_inner().pod_sandbox_id,
                    Err(e) => {
                        let message = format!("Failed to create pod sandbox: {}", status_text(&e));
                        self.recorder.pod_event(
                            pod,
                            events::WARNING,
                            "FailedCreatePodSandBox",
                            message.clone(),
                        );
                        return Err(StartError::new("ContainerCreating", message));
                    }
                }
            }
        };
        let sandbox = Sandbox {
            info: self.sandbox_info(&id, pod).await,
            id,
            config,
        };
        self.sandboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid, sandbox.clone());
        Ok(sandbox)
    }

    /// The image's ID in the runtime and its size, if present.
    async fn image_status(&self, image: &str) -> Result<Option<(String, u64)>, tonic::Status> {
        let status = self
            .images
            .clone()
            .image_status(cri::ImageStatusRequest {
                image: Some(cri::ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await?
            .into_inner();
        Ok(status
            .image
            .filter(|i| !i.id.is_empty())
            .map(|i| (i.id, i.size)))
    }

    /// The data of the pod's `imagePullSecrets` that exist.
    async fn pull_secrets(&self, pod: &Pod) -> Vec<BTreeMap<String, Vec<u8>>> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let mut out = Vec::new();
        for r in pod
            .spec
            .iter()
            .flat_map(|s| s.image_pull_secrets.iter().flatten())
        {
            match api.get_opt(&r.name).await {
                Ok(Some(s)) => out.push(
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect(),
                ),
                Ok(None) => {
                    warn!(secret = %r.name, "image pull secret not found; pulling without it")
                }
                Err(e) => {
                    warn!(secret = %r.name, error = %e, "image pull secret unreadable; pulling without it")
                }
            }
        }
        out
    }

    /// Makes the container's image present by its pull policy: its ID in the runtime.
    async fn ensure_image(
        &self,
        req: &StartRequest<'_>,
        sandbox: &Sandbox,
    ) -> Result<String, StartError> {
        let pod = req.pod;
        let image = images::with_default_tag(req.container.image.as_deref().unwrap_or_default());
        let present = self.image_status(&image).await.map_err(|e| {
            let message = format!("Failed to inspect image {image:?}: {}", status_text(&e));
            self.recorder
                .pod_event(pod, events::WARNING, "InspectFailed", message.clone());
            StartError::new("ImageInspectError", message)
        })?;
        let policy = req.container.image_pull_policy.as_deref();
        if !images::should_pull(policy, &image, present.is_some()) {
            return match present {
                Some((id, _)) => {
                    self.recorder.pod_event(
                        pod,
                        events::NORMAL,
                        "Pulled",
                        format!("Container image {image:?} already present on machine"),
                    );
                    Ok(id)
                }
                None => {
                    let message = format!(
                        "Container image {image:?} is not present with pull policy of Never"
                    );
                    self.recorder.pod_event(
                        pod,
                        events::WARNING,
                        "ErrImageNeverPull",
                        message.clone(),
                    );
                    Err(StartError::new("ErrImageNeverPull", message))
                }
            };
        }
        self.recorder.pod_event(
            pod,
            events::NORMAL,
            "Pulling",
            format!("Pulling image {image:?}"),
        );
        let started = Instant::now();
        let auth = images::auth_for(&image, &self.pull_secrets(pod).await);
        let pulled = self
            .images
            .clone()
            .pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                auth,
                sandbox_config: Some(sandbox.config.clone()),
            })
            .await;
        if let Err(e) = pulled {
            let err = status_text(&e);
            self.recorder.pod_event(
                pod,
                events::WARNING,
                "Failed",
                format!("Failed to pull image {image:?}: {err}"),
            );
            return Err(StartError::new("ErrImagePull", err));
        }
        let took = images::go_millis(started.elapsed());
        let (id, size) = self
            .image_status(&image)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| (image.clone(), 0));
        self.recorder.pod_event(
            pod,
            events::NORMAL,
            "Pulled",
            format!(
                "Successfully pulled image {image:?} in {took} ({took} including waiting). Image size: {size} bytes."
            ),
        );
        Ok(id)
    }

    async fn start_container(&self, req: StartRequest<'_>) -> Result<Started, StartError> {
        let uid = req.pod.metadata.uid.clone().unwrap_or_default();
        let sandbox = match self.cached(&uid) {
            Some(s) => s,
            None => self.ensure_sandbox(req.pod).await?,
        };
        let image_id = self.ensure_image(&req, &sandbox).await?;
        let cfg = config::container_config(
            req.pod,
            req.container,
            req.instance,
            &image_id,
            req.env,
            req.mounts,
        );
        let mut rt = self.runtime.clone();
        let created = rt
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox.id.clone(),
                config: Some(cfg),
                sandbox_config: Some(sandbox.config.clone()),
            })
            .await
            .map_err(|e| StartError::new("CreateContainerError", status_text(&e)))?
            .into_inner()
            .container_id;
        if let Err(e) = rt
            .start_container(cri::StartContainerRequest {
                container_id: created.clone(),
            })
            .await
        {
            return Err(StartError::new("RunContainerError", status_text(&e)));
        }
        Ok(Started {
            exited: self.exits.wait(&created).boxed(),
            id: ContainerId::Cri(created),
            image_ref: Some(image_id),
        })
    }

    async fn remove(&self, pod: &PodRef) {
        let cached = self
            .sandboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pod.uid);
        let mut ids: Vec<String> = cached.into_iter().map(|s| s.id).collect();
        match self.list_sandboxes(&pod.uid, false).await {
            Ok(found) => ids.extend(found),
            Err(e) => {
                warn!(pod = %pod.name, error = %status_text(&e), "cannot list the pod's sandboxes")
            }
        }
        ids.sort();
        ids.dedup();
        let mut rt = self.runtime.clone();
        for id in ids {
            let stopped = rt
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await;
            let removed = rt
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                })
                .await;
            if let Err(e) = stopped.and(removed) {
                warn!(pod = %pod.name, sandbox = %id, error = %status_text(&e), "pod sandbox not removed");
            }
        }
        let dir = config::pod_log_dir(&self.logs_root, &pod.namespace, &pod.name, &pod.uid);
        let _ = std::fs::remove_dir_all(dir);
        remove_cgroup(&config::cgroup_parent(&self.node_name, &pod.uid));
    }
}

/// Removes the pod's (now empty) cgroup parent in every hierarchy mounted under
/// /sys/fs/cgroup: cgroup v1's per-controller ones and v2's unified one.
fn remove_cgroup(parent: &str) {
    let rel = parent.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    let _ = std::fs::remove_dir(root.join(rel));
    if let Ok(entries) = std::fs::read_dir(root) {
        for e in entries.flatten() {
            let _ = std::fs::remove_dir(e.path().join(rel));
        }
    }
}

impl ContainerRuntime for CriRuntime {
    fn scheme(&self) -> &str {
        self.version.split("://").next().unwrap_or("cri")
    }

    fn passes_host_path(&self) -> bool {
        false
    }

    fn prepare_pod<'a>(&'a self, pod: &'a Pod) -> BoxFuture<'a, Result<PodSandbox, StartError>> {
        async move { self.ensure_sandbox(pod).await.map(|s| s.info) }.boxed()
    }

    fn start<'a>(&'a self, req: StartRequest<'a>) -> BoxFuture<'a, Result<Started, StartError>> {
        self.start_container(req).boxed()
    }

    fn adopt<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Option<Started>> {
        async move {
            let ContainerId::Cri(id) = id else {
                return None;
            };
            let mut rt = self.runtime.clone();
            let status = rt
                .container_status(cri::ContainerStatusRequest {
                    container_id: id.clone(),
                    verbose: false,
                })
                .await
                .ok()?
                .into_inner()
                .status?;
            // One that exited while the agent was away reports its real exit code.
            let exited = if status.state == cri::ContainerState::ContainerExited as i32 {
                futures::future::ready(Some(status.exit_code)).boxed()
            } else if status.state == cri::ContainerState::ContainerRunning as i32 {
                self.exits.wait(id).boxed()
            } else {
                return None;
            };
            Some(Started {
                exited,
                id: ContainerId::Cri(id.clone()),
                image_ref: Some(status.image_ref),
            })
        }
        .boxed()
    }

    /// The CRI's `ExecSync` with the probe's timeout (whole seconds, as the kubelet sends
    /// it); the runtime answers `DeadlineExceeded` for a command it killed at the timeout.
    fn exec_sync(
        &self,
        id: &ContainerId,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<ExecSyncResult, String>> {
        let id = id.clone();
        let mut rt = self.runtime.clone();
        async move {
            let ContainerId::Cri(id) = id else {
                return Err("not a CRI container".to_string());
            };
            let mut req = tonic::Request::new(cri::ExecSyncRequest {
                container_id: id,
                cmd,
                timeout: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX).max(1),
            });
            // Room for the runtime to kill the command and answer (the kubelet allows its
            // runtime request timeout on top).
            req.set_timeout(timeout + EXEC_SYNC_MARGIN);
            match rt.exec_sync(req).await {
                Ok(r) => {
                    let r = r.into_inner();
                    let mut output = r.stdout;
                    output.extend_from_slice(&r.stderr);
                    output.truncate(EXEC_OUTPUT_LIMIT);
                    Ok(ExecSyncResult::Exited {
                        code: r.exit_code,
                        output,
                    })
                }
                Err(e) if e.code() == tonic::Code::DeadlineExceeded => Ok(ExecSyncResult::TimedOut),
                Err(e) => Err(status_text(&e)),
            }
        }
        .boxed()
    }

    fn stop(&self, id: &ContainerId, grace: Duration) {
        let ContainerId::Cri(id) = id.clone() else {
            return;
        };
        let mut rt = self.runtime.clone();
        tokio::spawn(async move {
            let stopped = rt
                .stop_container(cri::StopContainerRequest {
                    container_id: id.clone(),
                    timeout: i64::try_from(grace.as_secs()).unwrap_or(i64::MAX),
                })
                .await;
            if let Err(e) = stopped {
                warn!(container = %id, error = %status_text(&e), "container stop failed");
            }
        });
    }

    fn exec_stream<'a>(
        &'a self,
        id: &'a ContainerId,
        cmd: Vec<String>,
        opts: StreamOptions,
    ) -> BoxFuture<'a, Result<StreamTarget, StreamError>> {
        self.exec_url(id, cmd, opts).boxed()
    }

    fn attach_stream<'a>(
        &'a self,
        id: &'a ContainerId,
        opts: StreamOptions,
    ) -> BoxFuture<'a, Result<StreamTarget, StreamError>> {
        self.attach_url(id, opts).boxed()
    }

    fn port_forward<'a>(
        &'a self,
        pod: &'a PodRef,
    ) -> BoxFuture<'a, Result<StreamTarget, StreamError>> {
        self.port_forward_url(pod).boxed()
    }

    fn usage<'a>(&'a self, of: &'a [UsageQuery]) -> BoxFuture<'a, Vec<Option<ContainerUsage>>> {
        self.usage_of(of).boxed()
    }

    fn remove_pod<'a>(&'a self, pod: &'a PodRef) -> BoxFuture<'a, ()> {
        self.remove(pod).boxed()
    }

    fn log_path(&self, pod: &PodRef, container: &str, instance: u32) -> PathBuf {
        config::pod_log_dir(&self.logs_root, &pod.namespace, &pod.name, &pod.uid)
            .join(config::container_log_path(container, instance))
    }

    fn log_format(&self) -> LogFormat {
        LogFormat::Cri
    }
}
