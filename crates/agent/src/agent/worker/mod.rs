//! One pod's worker: sets up its volumes (`setup`; containers start once every volume is
//! set up), starts its containers through the agent's container runtime (`start`; init
//! containers first, in order) with their env and volume mounts, follows their exits,
//! restarts them by the restart policy with CrashLoopBackOff, runs their probes (`probes`),
//! writes the pod's status (`report`), and on deletion stops them gracefully (the grace
//! period, then killed) before removing the pod from the API and its sandbox from the runtime.
//!
//! The worker owns all of its pod's runtime state; everything else talks to it through
//! channels: the pod manager sends newer pod objects (and drops the sender when the pod is
//! gone), container waiters, probe tasks and the watches of the objects the pod reads send
//! [`Event`]s.

mod hosts;
mod probes;
mod report;
mod setup;
mod start;
mod termination;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Preconditions};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use super::Shared;
use super::backoff::{self, CrashLoopBackoff};
use super::env::FieldContext;
use super::events;
use super::metrics::{self, RunningContainer, RunningPod};
use super::probe::{self, Kind};
use super::runtime::{ContainerId, PodRef, Started};
use super::state::{self, ContainerRecord, PodRecord, Terminated};
use probes::{ProbeJob, kill};

/// How soon a failed status write is retried.
const STATUS_RETRY: Duration = Duration::from_secs(1);
/// When a pod whose container failed to start is synced again (kubelet's pod worker
/// back-off after an error is 10 s; sooner here so `ErrImagePull` turns into
/// `ImagePullBackOff` promptly).
const POD_SYNC_AFTER_ERROR: Duration = Duration::from_secs(2);
/// How long killed processes get to be reaped after SIGKILL before the worker moves on.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Something that happened to one container instance.
#[derive(Debug)]
pub(crate) enum Event {
    /// The process ended; `code` is `None` when it was adopted and its exit code is unknown.
    Exited {
        container: usize,
        instance: u32,
        code: Option<i32>,
    },
    /// A probe's thresholded result flipped.
    Probe {
        container: usize,
        instance: u32,
        kind: Kind,
        ok: bool,
        message: String,
    },
    /// A ConfigMap or Secret the pod reads changed.
    SourcesChanged,
}

/// A live container and its probes.
struct Running {
    instance: u32,
    id: ContainerId,
    started_at: Timestamp,
    started: bool,
    ready: bool,
    /// Set once the agent asked it to stop (liveness failure, pod deletion).
    killing: bool,
    started_tx: watch::Sender<bool>,
    probes: Vec<AbortHandle>,
    waiter: AbortHandle,
    /// In `kubelet_running_containers` while followed.
    _counted: RunningContainer,
}

impl Drop for Running {
    fn drop(&mut self) {
        for p in &self.probes {
            p.abort();
        }
        self.waiter.abort();
    }
}

struct Ctr {
    spec: Container,
    init: bool,
    rec: ContainerRecord,
    running: Option<Running>,
    waiting: Option<(String, Option<String>)>,
    backoff: CrashLoopBackoff,
    /// When a container waiting to (re)start may start.
    start_at: Option<Instant>,
    /// Image pulls of this container back off (kubelet's image back-off, per pod and image):
    /// until when, and the next delay.
    pull_backoff: Option<(Instant, Duration)>,
}

pub(crate) struct Worker {
    shared: Arc<Shared>,
    pod: Arc<Pod>,
    rx: watch::Receiver<Arc<Pod>>,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    record: PodRecord,
    ctrs: Vec<Ctr>,
    /// The status as last computed: conditions keep their lastTransitionTime from it.
    last_status: Option<PodStatus>,
    last_written: Option<Value>,
    write_retry_at: Option<Instant>,
    /// Volumes and the objects the pod reads.
    setup: setup::PodSetup,
    /// The pod's own IP from its sandbox (a CNI network); none: the node's.
    pod_ip: Option<String>,
    /// The node's IP, as `status.hostIP` and the downward API show it.
    host_ip: String,
    /// In `kubelet_running_pods` while the worker lives.
    _counted: RunningPod,
    /// When the agent first saw the pod; `None` once its start was measured
    /// (`kubelet_pod_start_duration_seconds`).
    seen_at: Option<Instant>,
}

fn now_string() -> String {
    Timestamp::now().to_string()
}

fn parse_time(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|_| Timestamp::now())
}

impl Worker {
    /// A worker for `pod`, adopting the processes of `saved` (same uid) if they still run.
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: watch::Receiver<Arc<Pod>>,
        saved: Option<PodRecord>,
        is_static: bool,
    ) -> Worker {
        let pod = rx.borrow().clone();
        let spec = pod.spec.clone().unwrap_or_default();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let mut record = saved.unwrap_or_else(|| PodRecord {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            is_static,
            containers: Default::default(),
        });
        let (initial, max) = (shared.opts.backoff_initial, shared.opts.backoff_max);
        let ctrs = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| (c, true))
            .chain(spec.containers.iter().map(|c| (c, false)))
            .map(|(c, init)| Ctr {
                spec: c.clone(),
                init,
                rec: record.containers.remove(&c.name).unwrap_or_default(),
                running: None,
                waiting: None,
                backoff: CrashLoopBackoff::new(initial, max),
                start_at: None,
                pull_backoff: None,
            })
            .collect();
        let last_status = pod.status.clone();
        let host_ip = shared.node_ip.to_string();
        Worker {
            shared,
            pod,
            rx,
            events_tx,
            events_rx,
            record,
            ctrs,
            last_status,
            last_written: None,
            write_retry_at: None,
            setup: setup::PodSetup::default(),
            pod_ip: None,
            host_ip,
            _counted: RunningPod::new(),
            seen_at: Some(Instant::now()),
        }
    }

    fn uid(&self) -> &str {
        &self.record.uid
    }

    fn pod_ref(&self) -> PodRef {
        PodRef {
            namespace: self.record.namespace.clone(),
            name: self.record.name.clone(),
            uid: self.record.uid.clone(),
        }
    }

    /// The pod's IP: its sandbox's, or the node's.
    fn ip(&self) -> String {
        self.pod_ip
            .clone()
            .unwrap_or_else(|| self.shared.node_ip.to_string())
    }

    fn ns(&self) -> &str {
        &self.record.namespace
    }

    fn name(&self) -> &str {
        &self.record.name
    }

    fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    fn grace(&self) -> Duration {
        let secs = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        Duration::from_secs(secs.max(0) as u64)
    }

    pub(crate) async fn run(mut self) {
        self.register_sources();
        self.adopt().await;
        loop {
            if self.pod.metadata.deletion_timestamp.is_some() {
                self.terminate(self.grace()).await;
                self.finish(true).await;
                return;
            }
            self.register_sources();
            if self.volumes_due() {
                self.sync_volumes().await;
            }
            // Kubelet starts no container before every volume is mounted.
            if self.setup.ready {
                if self.any_start_due() {
                    self.fetch_env_objects().await;
                }
                self.start_due().await;
                self.measure_start();
            }
            self.publish_logs();
            self.write_status().await;
            let wake = self
                .ctrs
                .iter()
                .filter_map(|c| c.start_at)
                .chain(self.write_retry_at)
                .chain(self.setup.next)
                .min();
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.rx.changed() => {
                    if changed.is_err() {
                        // The pod is gone from its source: stop everything now-ish.
                        let grace = self.grace();
                        self.terminate(grace).await;
                        self.finish(false).await;
                        return;
                    }
                    let pod = self.rx.borrow_and_update().clone();
                    // The downward API projects labels and annotations.
                    if pod.metadata.labels != self.pod.metadata.labels
                        || pod.metadata.annotations != self.pod.metadata.annotations
                    {
                        self.setup.dirty = true;
                    }
                    self.pod = pod;
                }
                Some(ev) = self.events_rx.recv() => self.handle(ev).await,
                _ = sleep => {}
            }
        }
    }

    // ---- starting -------------------------------------------------------------------------

    /// Takes over the processes a previous agent started; containers whose process is gone
    /// are treated as exited (exit code unknown).
    async fn adopt(&mut self) {
        let mut adopted = false;
        for i in 0..self.ctrs.len() {
            let Some(id) = ContainerId::of_record(&self.ctrs[i].rec) else {
                continue;
            };
            match self.shared.runtime.adopt(&id).await {
                Some(p) => {
                    let started_at = self.ctrs[i]
                        .rec
                        .started_at
                        .as_deref()
                        .map(parse_time)
                        .unwrap_or_else(Timestamp::now);
                    info!(pod = %self.name(), container = %self.ctrs[i].spec.name, ?id, "adopted running container");
                    self.track(i, p, started_at);
                    adopted = true;
                }
                None => {
                    let instance = self.ctrs[i].rec.instance;
                    self.on_exit(i, instance, None);
                }
            }
        }
        // The adopted containers' sandbox: the pod's IP again.
        if adopted && let Ok(sandbox) = self.shared.runtime.prepare_pod(&self.pod).await {
            self.pod_ip = sandbox.pod_ip;
        }
    }

    /// Starts every container that should run now.
    async fn start_due(&mut self) {
        let now = Instant::now();
        let inits_done = |ctrs: &[Ctr]| {
            ctrs.iter()
                .filter(|c| c.init)
                .all(|c| c.rec.done.as_ref().is_some_and(|d| d.exit_code == 0))
        };
        for i in 0..self.ctrs.len() {
            let c = &self.ctrs[i];
            if c.running.is_some() || c.rec.done.is_some() || c.start_at.is_some_and(|t| t > now) {
                continue;
            }
            if c.init {
                // Init containers run one at a time, in order.
                let earlier_done = self.ctrs[..i]
                    .iter()
                    .all(|e| !e.init || e.rec.done.as_ref().is_some_and(|d| d.exit_code == 0));
                if !earlier_done {
                    continue;
                }
            } else if !inits_done(&self.ctrs) {
                self.ctrs[i].waiting = Some(("PodInitializing".into(), None));
                continue;
            }
            self.start(i).await;
        }
    }

    /// Whether some container is due to start now.
    /// Observes the pod's start once every regular container runs, as the kubelet's pod
    /// start SLI does.
    fn measure_start(&mut self) {
        let regular = || self.ctrs.iter().filter(|c| !c.init);
        if regular().next().is_some()
            && regular().all(|c| c.running.is_some())
            && let Some(seen_at) = self.seen_at.take()
        {
            metrics::pod_started(seen_at.elapsed());
        }
    }

    fn any_start_due(&self) -> bool {
        let now = Instant::now();
        self.ctrs.iter().any(|c| {
            c.running.is_none() && c.rec.done.is_none() && c.start_at.is_none_or(|t| t <= now)
        })
    }

    fn field_context<'a>(&'a self, ip: &'a str) -> FieldContext<'a> {
        FieldContext {
            pod: &self.pod,
            node_name: &self.shared.opts.node_name,
            pod_ip: ip,
            host_ip: &self.host_ip,
            allocatable: &self.shared.profile.capacity,
        }
    }

    fn base_env(&self) -> Vec<(String, String)> {
        let mut base = self.shared.base_env.clone();
        // hostNetwork semantics: the hostname is the node's; otherwise the pod's name.
        let host_network = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let hostname = if host_network {
            self.shared.opts.node_name.clone()
        } else {
            self.name().to_string()
        };
        base.push(("HOSTNAME".into(), hostname));
        base
    }

    fn retry_later(&mut self, i: usize, reason: &str, message: String) {
        let now = Instant::now();
        let c = &mut self.ctrs[i];
        c.waiting = Some((reason.to_string(), Some(message)));
        let delay = c
            .backoff
            .restart_delay(now, now)
            .unwrap_or(c.backoff.current());
        c.start_at = Some(now + delay);
    }

    /// Starts following a started (or adopted) container: its exit and its probes.
    fn track(&mut self, i: usize, p: Started, started_at: Timestamp) {
        let instance = self.ctrs[i].rec.instance;
        let id = p.id;
        let tx = self.events_tx.clone();
        let exited = p.exited;
        let waiter = tokio::spawn(async move {
            let code = exited.await;
            let _ = tx.send(Event::Exited {
                container: i,
                instance,
                code,
            });
        })
        .abort_handle();
        let spec = self.ctrs[i].spec.clone();
        let ip = self.ip();
        let probe_of = |kind: Kind| {
            let p = match kind {
                Kind::Startup => spec.startup_probe.as_ref(),
                Kind::Liveness => spec.liveness_probe.as_ref(),
                Kind::Readiness => spec.readiness_probe.as_ref(),
            }?;
            match probe::Spec::from_probe(p, &spec, &ip) {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(container = %spec.name, probe = kind.name(), error = %e, "probe ignored");
                    None
                }
            }
        };
        let startup = probe_of(Kind::Startup);
        let started = startup.is_none();
        let readiness = probe_of(Kind::Readiness);
        let ready = started && readiness.is_none();
        let (started_tx, started_rx) = watch::channel(started);
        let mut probes = Vec::new();
        for (kind, spec) in [
            (Kind::Startup, startup),
            (Kind::Liveness, probe_of(Kind::Liveness)),
            (Kind::Readiness, readiness),
        ] {
            let Some(spec) = spec else { continue };
            let job = ProbeJob {
                kind,
                spec,
                container: i,
                instance,
                started_at: Instant::now()
                    - Duration::try_from(Timestamp::now().duration_since(started_at))
                        .unwrap_or_default(),
                started: started_rx.clone(),
                tx: self.events_tx.clone(),
                runtime: self.shared.runtime.clone(),
                id: id.clone(),
                recorder: self.shared.recorder.clone(),
                pod: self.pod.clone(),
            };
            probes.push(tokio::spawn(job.run()).abort_handle());
        }
        self.ctrs[i].running = Some(Running {
            instance,
            id,
            started_at,
            started,
            ready,
            killing: false,
            started_tx,
            probes,
            waiter,
            _counted: RunningContainer::new(),
        });
    }

    // ---- events ---------------------------------------------------------------------------

    async fn handle(&mut self, ev: Event) {
        match ev {
            Event::Exited {
                container,
                instance,
                code,
            } => self.on_exit(container, instance, code),
            Event::SourcesChanged => self.sources_changed(),
            Event::Probe {
                container,
                instance,
                kind,
                ok,
                message,
            } => {
                let grace = self.grace();
                let Some(c) = self.ctrs.get_mut(container) else {
                    return;
                };
                let Some(r) = c.running.as_mut().filter(|r| r.instance == instance) else {
                    return;
                };
                match (kind, ok) {
                    (Kind::Readiness, ready) => r.ready = ready,
                    (Kind::Startup, true) => {
                        r.started = true;
                        let _ = r.started_tx.send(true);
                        if c.spec.readiness_probe.is_none() {
                            r.ready = true;
                        }
                    }
                    (Kind::Startup | Kind::Liveness, false) => {
                        info!(pod = %self.record.name, container = %c.spec.name, probe = kind.name(), %message, "container failed its probe, will be restarted");
                        let probe_grace = match kind {
                            Kind::Startup => c.spec.startup_probe.as_ref(),
                            _ => c.spec.liveness_probe.as_ref(),
                        }
                        .and_then(|p| p.termination_grace_period_seconds)
                        .map(|s| Duration::from_secs(s.max(0) as u64));
                        r.ready = false;
                        if !r.killing {
                            self.shared.recorder.pod_event(
                                &self.pod,
                                events::NORMAL,
                                "Killing",
                                format!(
                                    "Container {} failed {} probe, will be restarted",
                                    c.spec.name,
                                    kind.name().to_lowercase()
                                ),
                            );
                        }
                        kill(
                            self.shared.runtime.as_ref(),
                            r,
                            probe_grace.unwrap_or(grace),
                        );
                    }
                    (Kind::Liveness, true) => {}
                }
            }
        }
    }

    /// Records an exit and decides, by restart policy, whether and when it restarts.
    fn on_exit(&mut self, i: usize, instance: u32, code: Option<i32>) {
        let policy = self.restart_policy().to_string();
        let pod_ref = self.pod_ref();
        let Some(c) = self.ctrs.get_mut(i) else {
            return;
        };
        if c.rec.instance != instance {
            return;
        }
        c.running = None;
        let (exit_code, reason, message) = match code {
            Some(0) => (0, "Completed", None),
            Some(n) => (n, "Error", None),
            None => (
                137,
                "ContainerStatusUnknown",
                Some("The container exited while it was adopted after an agent restart; its exit code is unknown".to_string()),
            ),
        };
        let runtime = &self.shared.runtime;
        let written = termination::message(&termination::Exited {
            root: &self.shared.opts.root_dir,
            uid: &pod_ref.uid,
            container: &c.spec,
            instance,
            exit_code,
            log: runtime.log_path(&pod_ref, &c.spec.name, instance),
            log_format: runtime.log_format(),
        });
        // Upstream appends what the container wrote to the runtime's own message.
        let message = match (message, written) {
            (Some(m), Some(w)) => Some(format!("{m}: {w}")),
            (m, w) => m.or(w),
        };
        let term = Terminated {
            exit_code,
            reason: reason.to_string(),
            message,
            started_at: c.rec.started_at.clone().unwrap_or_else(now_string),
            finished_at: now_string(),
            instance,
            container_id: c.rec.container_id.clone(),
        };
        c.rec.pid = None;
        c.rec.container_id = None;
        c.rec.started_at = None;
        let restart = match (c.init, policy.as_str()) {
            (true, _) if exit_code == 0 => false,
            (_, "Never") => false,
            (_, "OnFailure") => exit_code != 0,
            _ => true,
        };
        debug!(pod = %self.record.name, container = %c.spec.name, exit_code, restart, "container exited");
        if restart {
            c.rec.restart_count += 1;
            c.rec.last_terminated = Some(term);
            let now = Instant::now();
            match c.backoff.restart_delay(now, now) {
                None => c.start_at = None,
                Some(d) => {
                    c.waiting = Some((
                        "CrashLoopBackOff".into(),
                        Some(backoff::message(
                            c.backoff.current(),
                            &c.spec.name,
                            &self.record.name,
                            &self.record.namespace,
                            &self.record.uid,
                        )),
                    ));
                    c.start_at = Some(now + d);
                }
            }
        } else {
            c.rec.done = Some(term);
        }
        self.save();
    }

    // ---- stopping -------------------------------------------------------------------------

    /// SIGTERM to every running container, SIGKILL to those still running after `grace`.
    async fn terminate(&mut self, grace: Duration) {
        for c in &mut self.ctrs {
            c.start_at = None;
            if let Some(r) = c.running.as_mut() {
                if !r.killing {
                    self.shared.recorder.pod_event(
                        &self.pod,
                        events::NORMAL,
                        "Killing",
                        format!("Stopping container {}", c.spec.name),
                    );
                }
                kill(self.shared.runtime.as_ref(), r, grace);
            }
        }
        let deadline = Instant::now() + grace + KILL_WAIT;
        while self.ctrs.iter().any(|c| c.running.is_some()) {
            let ev = tokio::time::timeout_at(deadline.into(), self.events_rx.recv()).await;
            match ev {
                Ok(Some(Event::Exited {
                    container,
                    instance,
                    code,
                })) => {
                    if let Some(c) = self.ctrs.get_mut(container)
                        && c.rec.instance == instance
                    {
                        c.running = None;
                        c.rec.pid = None;
                        c.rec.container_id = None;
                        let _ = code;
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        for c in &mut self.ctrs {
            if let Some(r) = c.running.take() {
                warn!(pod = %self.record.name, container = %c.spec.name, id = ?r.id, "container did not exit after it was killed");
            }
        }
    }

    /// After termination: remove the pod from the API (when it was deleted there) and forget
    /// its state and logs.
    async fn finish(&mut self, delete_from_api: bool) {
        if delete_from_api && !self.record.is_static {
            let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), self.ns());
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(self.uid().to_string()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            // Retried until it succeeds or the pod is gone: a terminated pod must not linger.
            let mut delay = Duration::from_millis(200);
            loop {
                match api.delete(self.name(), &dp).await {
                    Ok(_) => break,
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => break,
                    Err(e) => {
                        debug!(pod = %self.name(), error = %e, "pod delete failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                }
            }
        }
        self.shared.logs.remove(self.ns(), self.name());
        self.shared.runtime.remove_pod(&self.pod_ref()).await;
        self.shared.volumes.forget(self.uid());
        // A volume still mounted keeps the directory: removing it would empty the mount.
        if self.shared.volumes.tear_down(self.uid()).is_err() {
            return;
        }
        let dir = state::pod_dir(&self.shared.opts.root_dir, self.uid());
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(dir = %dir.display(), error = %e, "could not remove pod state");
        }
    }
}
