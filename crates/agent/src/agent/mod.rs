//! The real node agent: the kubelet's job for one host, its containers run by a
//! [`runtime::ContainerRuntime`]: host processes (`runtime::host_process`, the default) or a
//! CRI runtime such as containerd (`cri`, with the `cri` feature).
//!
//! [`run`] registers the host as a Node (capacity and allocatable from the host; labels and
//! taints as given), keeps its Ready condition and its Lease in kube-node-lease fresh, watches
//! the pods bound to it and runs each as processes (`worker`): `command`/`args` (or the
//! [`env::ImageMap`] entry of an image when the pod gives no command), `env` (`fieldRef`s,
//! ConfigMap and Secret keys, `envFrom`: [`env_sources`]) with the `kubernetes` Service's
//! variables, `workingDir`, volumes ([`volumes`]: configMap, secret, downwardAPI, projected
//! with service-account tokens, emptyDir, hostPath) bind-mounted at their `mountPath` in the
//! container's own mount namespace ([`mounts`]), output captured per container instance,
//! restart policy with CrashLoopBackOff ([`backoff`]), startup/liveness/readiness probes
//! ([`probe`]), graceful termination, cgroup v2 limits where writable ([`cgroup`]), and the
//! kubelet's events about pods ([`events`]). On the kubelet port, HTTPS with the kubelet's
//! authentication and authorization ([`kubelet_server`]), it serves the kubelet's `/containerLogs`
//! endpoint ([`logs`]), which the API server proxies `pods/log` to, the streaming endpoints
//! for exec, attach and port-forward ([`streaming`]), the Summary API at `/stats/summary`
//! ([`stats`]), and the kubelet's core metrics at `/metrics` ([`metrics`]).
//!
//! Restarting the agent neither loses nor duplicates processes: each container's PID, start
//! time and restart count are kept under the root directory ([`state`]) and the next agent
//! adopts processes that still run. Static pods ([`static_pods`]) run from manifest files even
//! without the API server and appear there as mirror pods.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_agent::agent::Error> {
//! use pernode_agent::agent::{self, AgentOptions};
//! let opts = AgentOptions::new("node-a", "127.0.0.1".parse().expect("ip"), ".pernode-agent/node-a".into());
//! agent::run(client, opts).await?; // runs until an unrecoverable error
//! # Ok(()) }
//! ```

pub mod backoff;
pub mod cgroup;
#[cfg(feature = "cri")]
pub mod cri;
pub mod env;
pub mod env_sources;
pub mod events;
pub mod host;
pub mod kubelet_server;
pub mod logs;
pub mod metrics;
pub mod mounts;
pub mod node;
pub mod probe;
pub mod process;
pub mod runtime;
pub mod state;
pub mod static_pods;
pub mod stats;
pub mod streaming;
pub mod volumes;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, info, warn};

use crate::status::NodeProfile;
use state::PodRecord;

/// Prefix of the container IDs, image IDs and runtime version the agent reports.
pub const RUNTIME_SCHEME: &str = "pernode://";

/// Errors of the agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A local resource (root directory, listening socket) is unusable.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A background task of the agent stopped unexpectedly.
    #[error("agent task failed: {0}")]
    Task(String),
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Where container cgroups go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CgroupMode {
    /// `pernode-<node>` at the root of the cgroup v2 mount, if writable with memory and cpu.
    #[default]
    Auto,
    /// Under this cgroup v2 directory.
    Parent(PathBuf),
    /// No limits.
    Disabled,
}

/// What runs the containers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// Host processes (`--runtime process`).
    #[default]
    Process,
    /// A CRI runtime at this Unix socket (`--container-runtime-endpoint`), e.g. containerd.
    Cri(PathBuf),
}

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The Node's name.
    pub node_name: String,
    /// The node's InternalIP, also every pod's IP (containers share the host network).
    pub node_ip: Ipv4Addr,
    /// Labels to register the node with (besides the `kubernetes.io/*` ones).
    pub labels: BTreeMap<String, String>,
    /// Taints to register the node with.
    pub taints: Vec<Taint>,
    /// State and logs (`pods/<uid>/`).
    pub root_dir: PathBuf,
    /// Static pod manifests.
    pub pod_manifest_path: Option<PathBuf>,
    /// How often the manifest directory is read again.
    pub file_check_frequency: Duration,
    /// Entrypoints of images for containers without `command`.
    pub image_map: env::ImageMap,
    /// The address of the log endpoint (port 0 picks one; the node reports the real one).
    pub listen: SocketAddr,
    /// Lease renewal interval (kubelet: 10 s).
    pub lease_interval: Duration,
    /// `spec.leaseDurationSeconds` (kubelet: 40).
    pub lease_duration_seconds: i32,
    /// How often the node status (and Ready's heartbeat) is posted.
    pub node_status_interval: Duration,
    /// The pod capacity reported.
    pub max_pods: u32,
    /// Container cgroups.
    pub cgroups: CgroupMode,
    /// CrashLoopBackOff's first delay (upstream: 10 s) ...
    pub backoff_initial: Duration,
    /// ... and its cap (upstream: 300 s).
    pub backoff_max: Duration,
    /// Namespace of the node lease.
    pub lease_namespace: String,
    /// Where containers reach the API server (`KUBERNETES_SERVICE_HOST`/`PORT`): the host and
    /// port the agent itself talks to, there being no service proxy for the `kubernetes`
    /// Service's cluster IP. None: the variables are not set.
    pub api_server: Option<(String, u16)>,
    /// How often volumes are set up again (the kubelet's pod sync period: tokens refreshed).
    pub volume_resync: Duration,
    /// What runs the containers.
    pub runtime: RuntimeChoice,
    /// Where a CRI runtime writes container logs (kubelet's `podLogsDir`, `/var/log/pods`).
    pub pod_logs_dir: PathBuf,
    /// The kubelet port's certificate, and who may use it.
    pub server_auth: kubelet_server::ServerAuthOptions,
}

impl AgentOptions {
    /// Upstream's defaults for the node `node_name` at `node_ip`, keeping state in `root_dir`.
    pub fn new(node_name: &str, node_ip: Ipv4Addr, root_dir: PathBuf) -> AgentOptions {
        AgentOptions {
            node_name: node_name.to_string(),
            node_ip,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            root_dir,
            pod_manifest_path: None,
            file_check_frequency: Duration::from_secs(20),
            image_map: env::ImageMap::default(),
            listen: SocketAddr::from(([0, 0, 0, 0], 10250)),
            lease_interval: Duration::from_secs(10),
            lease_duration_seconds: 40,
            node_status_interval: Duration::from_secs(10),
            max_pods: 110,
            cgroups: CgroupMode::Auto,
            backoff_initial: backoff::INITIAL,
            backoff_max: backoff::MAX,
            lease_namespace: "kube-node-lease".to_string(),
            api_server: None,
            volume_resync: Duration::from_secs(60),
            runtime: RuntimeChoice::Process,
            pod_logs_dir: PathBuf::from("/var/log/pods"),
            server_auth: kubelet_server::ServerAuthOptions {
                token_webhook: true,
                ..Default::default()
            },
        }
    }
}

/// What every part of the agent shares.
pub(crate) struct Shared {
    pub(crate) client: kube::Client,
    pub(crate) opts: AgentOptions,
    pub(crate) profile: NodeProfile,
    pub(crate) node_ip: Ipv4Addr,
    pub(crate) runtime: Arc<dyn runtime::ContainerRuntime>,
    pub(crate) logs: logs::LogIndex,
    pub(crate) base_env: Vec<(String, String)>,
    pub(crate) volumes: volumes::VolumeHost,
    pub(crate) recorder: events::Recorder,
}

/// Runs the agent until an unrecoverable error. Dropping the future stops the agent but not
/// its containers; the next agent on the same root directory adopts them.
pub async fn run(client: kube::Client, opts: AgentOptions) -> Result<(), Error> {
    std::fs::create_dir_all(&opts.root_dir)
        .map_err(io_error(format!("creating {}", opts.root_dir.display())))?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(io_error(format!("listening on {}", opts.listen)))?;
    let port = listener
        .local_addr()
        .map_err(io_error("reading the log endpoint's address"))?
        .port();
    let mut profile = host::profile(opts.max_pods, &opts.root_dir);
    profile.kubelet_port = i32::from(port);
    let kubelet_server = kubelet_server::KubeletServer::new(
        &opts.server_auth,
        &opts.root_dir,
        &opts.node_name,
        opts.node_ip.into(),
        &client,
    )
    .map_err(|e| Error::Io {
        context: "setting up the kubelet port".into(),
        source: std::io::Error::other(e),
    })?;
    let recorder = events::Recorder::start(client.clone(), opts.node_name.clone());
    #[cfg(feature = "cri")]
    let cri = match &opts.runtime {
        RuntimeChoice::Process => None,
        RuntimeChoice::Cri(socket) => {
            let cri = cri::CriRuntime::connect(socket, &opts, client.clone(), recorder.clone())
                .await
                .map_err(|e| Error::Io {
                    context: format!(
                        "connecting to the container runtime at {}",
                        socket.display()
                    ),
                    source: std::io::Error::other(e),
                })?;
            profile.container_runtime_version = cri.version().to_string();
            info!(socket = %socket.display(), runtime = %cri.version(), "using the CRI runtime");
            Some(Arc::new(cri))
        }
    };
    #[cfg(not(feature = "cri"))]
    let cri: Option<Arc<runtime::host_process::HostProcessRuntime>> = match &opts.runtime {
        RuntimeChoice::Process => None,
        RuntimeChoice::Cri(socket) => {
            return Err(Error::Io {
                context: format!("using the container runtime at {}", socket.display()),
                source: std::io::Error::other(
                    "this agent was built without the `cri` feature (cargo build --features cri)",
                ),
            });
        }
    };
    let cgroups = match &opts.cgroups {
        _ if cri.is_some() => None,
        CgroupMode::Disabled => None,
        CgroupMode::Parent(p) => Some(
            cgroup::Cgroups::new(p).map_err(io_error(format!("using cgroup {}", p.display())))?,
        ),
        CgroupMode::Auto => match cgroup::Cgroups::detect(&opts.node_name) {
            Ok(c) => Some(c),
            Err(e) => {
                info!(error = %e, "no writable cgroup v2 hierarchy: container resource limits are not enforced");
                None
            }
        },
    };
    let path = std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    // Host processes get the agent's PATH; images bring their own.
    let mut base_env = Vec::new();
    if cri.is_none() {
        base_env.push(("PATH".to_string(), path));
    }
    if let Some((host, port)) = &opts.api_server {
        base_env.extend(env_sources::kubernetes_service_env(host, *port));
    }
    let mount_namespaces = match mounts::probe() {
        Ok(()) => true,
        // The runtime mounts; the agent needs no namespaces of its own.
        Err(_) if cri.is_some() => false,
        Err(e) => {
            warn!(error = %e, "no permission to create mount namespaces (run the agent as root): containers see the host's filesystem as it is, their volumeMounts are not mounted (volumes are still written under the root directory), and memory-backed volumes are plain directories");
            false
        }
    };
    let volumes = volumes::VolumeHost::new(
        client.clone(),
        opts.root_dir.clone(),
        mount_namespaces,
        profile.capacity.clone(),
    );
    let runtime: Arc<dyn runtime::ContainerRuntime> = match cri {
        Some(cri) => cri,
        None => Arc::new(runtime::host_process::HostProcessRuntime {
            root_dir: opts.root_dir.clone(),
            image_map: opts.image_map.clone(),
            mount_namespaces,
            cgroups,
        }),
    };
    let shared = Arc::new(Shared {
        client,
        node_ip: opts.node_ip,
        profile,
        runtime,
        logs: logs::LogIndex::default(),
        base_env,
        volumes,
        recorder,
        opts,
    });
    let manager = Arc::new(Manager::new(
        shared.clone(),
        PodRecord::load_all(&shared.opts.root_dir),
    ));
    let mut tasks: JoinSet<Result<(), Error>> = JoinSet::new();
    let streams = streaming::StreamHost {
        pods: shared.logs.clone(),
        runtime: shared.runtime.clone(),
    };
    let router = logs::router(shared.logs.clone())
        .merge(metrics::router())
        .merge(streaming::router(streams));
    let stats_host = stats::StatsHost::new(
        shared.opts.node_name.clone(),
        shared.logs.clone(),
        shared.runtime.clone(),
    );
    let router = router.merge(stats::router(stats_host.clone()));
    tasks.spawn(async move {
        stats::sample_every(stats_host, stats::SAMPLE_INTERVAL).await;
        Ok(())
    });
    tasks.spawn(async move {
        Arc::new(kubelet_server)
            .serve(listener, router)
            .await
            .map_err(io_error("serving the kubelet port"))
    });
    // Static pods start before registration: they must run while the API server is away.
    if let Some(dir) = shared.opts.pod_manifest_path.clone() {
        manager.sync_static(&dir);
        tasks.spawn(static_loop(manager.clone(), dir));
    }
    let node = node::register(&shared).await?;
    info!(node = %shared.opts.node_name, ip = %shared.node_ip, port, "node registered");
    tasks.spawn(node::heartbeats(shared.clone(), node));
    tasks.spawn(watch_pods(manager.clone()));
    let first = tasks.join_next().await;
    tasks.abort_all();
    match first {
        Some(Ok(r)) => r.and(Err(Error::Task("a task ended".into()))),
        Some(Err(e)) => Err(Error::Task(e.to_string())),
        None => Ok(()),
    }
}

/// A pod worker's handle: the channel that feeds it newer pod objects; dropping it tells the
/// worker its pod is gone.
struct Handle {
    tx: watch::Sender<Arc<Pod>>,
    task: AbortHandle,
}

#[derive(Default)]
struct ManagerState {
    workers: HashMap<String, Handle>,
    /// Records of an earlier agent not yet claimed by a pod.
    saved: HashMap<String, PodRecord>,
    /// UIDs of the static pods currently in the manifest directory.
    static_uids: HashSet<String>,
    /// Static pods by UID (for their mirrors).
    static_pods: HashMap<String, Arc<Pod>>,
}

/// The pods this node runs: one worker per pod UID.
struct Manager {
    shared: Arc<Shared>,
    state: Mutex<ManagerState>,
    /// Every worker, so dropping the manager (the agent stopped) stops them all.
    tasks: Mutex<JoinSet<()>>,
}

impl Drop for Manager {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(|e| e.into_inner());
        tasks.abort_all();
    }
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

impl Manager {
    fn new(shared: Arc<Shared>, saved: Vec<PodRecord>) -> Manager {
        let saved = saved.into_iter().map(|r| (r.uid.clone(), r)).collect();
        Manager {
            shared,
            state: Mutex::new(ManagerState {
                saved,
                ..Default::default()
            }),
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ManagerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pod (from the API or a manifest) to run or update.
    fn upsert(&self, pod: Pod, is_static: bool) {
        if !is_static && static_pods::is_mirror(&pod) {
            return; // its static pod runs from the file
        }
        let on_this_node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
            == Some(self.shared.opts.node_name.as_str());
        if !on_this_node {
            return;
        }
        let uid = uid_of(&pod);
        let mut st = self.lock();
        if let Some(h) = st.workers.get(&uid) {
            if !h.task.is_finished() {
                h.tx.send_replace(Arc::new(pod));
            }
            return;
        }
        let saved = st.saved.remove(&uid);
        if saved.is_none() && pernode_core::pod::is_pod_terminal(&pod) {
            return; // nothing runs and nothing will
        }
        let (tx, rx) = watch::channel(Arc::new(pod));
        let w = worker::Worker::new(self.shared.clone(), rx, saved, is_static);
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        while tasks.try_join_next().is_some() {}
        let task = tasks.spawn(w.run());
        st.workers.insert(uid, Handle { tx, task });
    }

    /// The pod is gone from its source: its worker stops its processes.
    fn remove(&self, uid: &str) {
        self.lock().workers.remove(uid);
    }

    /// After a full list from the API: stop workers of API pods that are no longer there, and
    /// kill what earlier agents started for pods that no longer exist.
    fn resync(&self, seen: &HashSet<String>) {
        let mut st = self.lock();
        let keep: HashSet<String> = seen.union(&st.static_uids).cloned().collect();
        st.workers.retain(|uid, _| keep.contains(uid));
        let orphans: Vec<PodRecord> = st
            .saved
            .extract_if(|uid, _| !keep.contains(uid))
            .map(|(_, r)| r)
            .collect();
        drop(st);
        if orphans.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.spawn(async move {
            for r in orphans {
                info!(pod = %r.name, namespace = %r.namespace, "stopping containers of a pod that no longer exists");
                for c in r.containers.values() {
                    if let Some(id) = runtime::ContainerId::of_record(c) {
                        shared.runtime.stop(&id, Duration::ZERO);
                    }
                }
                let pod = runtime::PodRef {
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    uid: r.uid.clone(),
                };
                shared.runtime.remove_pod(&pod).await;
                // A volume still mounted keeps the directory: removing it would empty the mount.
                if volumes::tear_down(&shared.opts.root_dir, &r.uid).is_ok() {
                    let _ = std::fs::remove_dir_all(state::pod_dir(&shared.opts.root_dir, &r.uid));
                }
            }
        });
    }

    /// Reads the manifest directory: new static pods start, removed ones stop.
    fn sync_static(&self, dir: &std::path::Path) -> Vec<Arc<Pod>> {
        let pods = static_pods::read_dir(dir, &self.shared.opts.node_name);
        let uids: HashSet<String> = pods.iter().map(uid_of).collect();
        let gone: Vec<String> = {
            let mut st = self.lock();
            let gone = st.static_uids.difference(&uids).cloned().collect();
            st.static_uids = uids;
            gone
        };
        for uid in &gone {
            self.remove(uid);
        }
        let mut out = Vec::new();
        for p in pods {
            out.push(Arc::new(p.clone()));
            self.upsert(p, true);
        }
        let mut st = self.lock();
        let removed: Vec<Arc<Pod>> = gone
            .iter()
            .filter_map(|uid| st.static_pods.remove(uid))
            .collect();
        for p in &out {
            st.static_pods.insert(uid_of(p), p.clone());
        }
        removed
    }
}

/// Re-reads the manifest directory every `file_check_frequency` and keeps mirror pods in step.
async fn static_loop(manager: Arc<Manager>, dir: PathBuf) -> Result<(), Error> {
    let shared = manager.shared.clone();
    let nodes: Api<Node> = Api::all(shared.client.clone());
    let mut removed: Vec<Arc<Pod>> = Vec::new();
    let mut tick = tokio::time::interval(shared.opts.file_check_frequency);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        removed.extend(manager.sync_static(&dir));
        let node_uid = match nodes.get_opt(&shared.opts.node_name).await {
            Ok(Some(n)) => n.metadata.uid.unwrap_or_default(),
            Ok(None) => continue,
            Err(e) => {
                debug!(error = %e, "API server unreachable; static pods run without mirrors");
                continue;
            }
        };
        let mut still: Vec<Arc<Pod>> = Vec::new();
        for p in removed.drain(..) {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let name = p.metadata.name.clone().unwrap_or_default();
            if let Err(e) = static_pods::delete_mirror(&shared.client, &ns, &name, None).await {
                debug!(pod = %name, error = %e, "mirror pod delete failed; retrying");
                still.push(p);
            }
        }
        removed = still;
        let pods: Vec<Arc<Pod>> = manager.lock().static_pods.values().cloned().collect();
        for p in pods {
            if let Err(e) =
                static_pods::ensure_mirror(&shared.client, &p, &shared.opts.node_name, &node_uid)
                    .await
            {
                debug!(pod = ?p.metadata.name, error = %e, "mirror pod update failed; retrying");
            }
        }
    }
}

/// Watches the pods bound to this node and hands them to their workers.
async fn watch_pods(manager: Arc<Manager>) -> Result<(), Error> {
    let shared = manager.shared.clone();
    let api: Api<Pod> = Api::all(shared.client.clone());
    let cfg =
        watcher::Config::default().fields(&format!("spec.nodeName={}", shared.opts.node_name));
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut seen: HashSet<String> = HashSet::new();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Apply(p)) => manager.upsert(p, false),
            Ok(Event::Delete(p)) => manager.remove(&uid_of(&p)),
            Ok(Event::Init) => seen.clear(),
            Ok(Event::InitApply(p)) => {
                seen.insert(uid_of(&p));
                manager.upsert(p, false);
            }
            Ok(Event::InitDone) => manager.resync(&seen),
            Err(e) => warn!(error = %e, "pod watch interrupted; retrying"),
        }
    }
    Err(Error::Task("pod watch ended".into()))
}
