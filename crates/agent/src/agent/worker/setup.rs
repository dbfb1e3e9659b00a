//! What a pod needs from outside its processes: the ConfigMaps and Secrets it reads
//! (registered with the node's object watches, whose changes wake the worker), its volumes
//! (set up before any container starts, then kept current), the objects its containers'
//! `env` reads, and each container's mounts (as host paths, for the runtime to mount).
//!
//! Volumes as kubelet's volume manager: a volume that fails to set up is retried with its
//! exponential backoff (500 ms doubling to 2 min 2 s) and each failure is a `FailedMount`
//! event (`MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found`); the pod's
//! containers wait in `ContainerCreating` until every volume is set up. Once up, volumes are
//! set up again every resync period (the kubelet's pod sync, one minute: projected tokens are
//! refreshed then) and at once when a ConfigMap or Secret they read changes or the pod's
//! labels or annotations do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::debug;

use super::{Event, Worker};
use crate::agent::env::ConfigError;
use crate::agent::env_sources::EnvObjects;
use crate::agent::events;
use crate::agent::mounts::{self, MountSpec};
use crate::agent::volumes::References;
use crate::agent::volumes::sources::Registration;

/// The first retry of a failed volume set-up and the longest wait between retries
/// (upstream's `initialDurationBeforeRetry` and `maxDurationBeforeRetry`).
const RETRY_INITIAL: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(122);

/// The worker's part of a pod's setup.
#[derive(Default)]
pub(super) struct PodSetup {
    refs: References,
    registrations: Vec<Registration>,
    registered: bool,
    /// Every volume has been set up once: containers may start.
    pub(super) ready: bool,
    /// When the volumes are set up again (a retry or the periodic resync).
    pub(super) next: Option<Instant>,
    /// Something the volumes show changed: set them up again now.
    pub(super) dirty: bool,
    retry: Option<Duration>,
    /// What the containers' `env` and `envFrom` read, as last fetched.
    pub(super) env_objects: EnvObjects,
}

impl Worker {
    /// Registers the ConfigMaps and Secrets the pod refers to (again when its spec changed).
    pub(super) fn register_sources(&mut self) {
        let refs = References::of(&self.pod);
        if self.setup.registered && refs == self.setup.refs {
            return;
        }
        let tx = self.events_tx.clone();
        let notify: crate::agent::volumes::sources::Notifier = Arc::new(move || {
            let _ = tx.send(Event::SourcesChanged);
        });
        // The new registrations come first, so that a watch both sets share keeps running.
        let registrations = self.shared.volumes.register(self.ns(), &refs, notify);
        self.setup.registrations = registrations;
        self.setup.refs = refs;
        self.setup.registered = true;
    }

    /// A ConfigMap or Secret changed: volumes are set up again, and containers waiting for
    /// their configuration try again now.
    pub(super) fn sources_changed(&mut self) {
        self.setup.dirty = true;
        let now = Instant::now();
        for c in &mut self.ctrs {
            if c.waiting
                .as_ref()
                .is_some_and(|(reason, _)| reason == "CreateContainerConfigError")
            {
                c.start_at = Some(now);
            }
        }
    }

    /// Whether the volumes are to be set up now.
    pub(super) fn volumes_due(&self) -> bool {
        self.setup.dirty
            || match self.setup.next {
                Some(t) => t <= Instant::now(),
                None => !self.setup.ready,
            }
    }

    /// Sets up every volume; a failure is a `FailedMount` event and a retry with backoff.
    pub(super) async fn sync_volumes(&mut self) {
        self.setup.dirty = false;
        let pod = self.pod.clone();
        let mut failed = false;
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            if let Err(e) = self.shared.volumes.set_up(&pod, v).await {
                failed = true;
                debug!(pod = %self.name(), volume = %v.name, error = %e, "volume set-up failed");
                self.shared.recorder.pod_event(
                    &pod,
                    events::WARNING,
                    "FailedMount",
                    format!("MountVolume.SetUp failed for volume {:?} : {e}", v.name),
                );
            }
        }
        let now = Instant::now();
        if failed {
            let delay = self
                .setup
                .retry
                .map_or(RETRY_INITIAL, |d| (d * 2).min(RETRY_MAX));
            self.setup.retry = Some(delay);
            self.setup.next = Some(now + delay);
        } else {
            self.setup.ready = true;
            self.setup.retry = None;
            self.setup.next = Some(now + self.shared.opts.volume_resync);
        }
    }

    /// Reads the ConfigMaps and Secrets the containers' `env` and `envFrom` name.
    pub(super) async fn fetch_env_objects(&mut self) {
        let spec = self.pod.spec.as_ref();
        let containers = spec.into_iter().flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        });
        let mut config_maps = Vec::new();
        let mut secrets = Vec::new();
        for c in containers {
            for from in c.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
                config_maps.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()));
                secrets.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone()));
            }
            for f in c.env_from.iter().flatten() {
                config_maps.extend(f.config_map_ref.as_ref().map(|r| r.name.clone()));
                secrets.extend(f.secret_ref.as_ref().map(|r| r.name.clone()));
            }
        }
        let ns = self.ns().to_string();
        let mut objects = EnvObjects {
            config_maps: HashMap::new(),
            secrets: HashMap::new(),
        };
        config_maps.sort();
        config_maps.dedup();
        secrets.sort();
        secrets.dedup();
        for name in config_maps {
            let got = self.shared.volumes.config_maps.get(&ns, &name).await;
            objects.config_maps.insert(name, got);
        }
        for name in secrets {
            let got = self.shared.volumes.secrets.get(&ns, &name).await;
            objects.secrets.insert(name, got);
        }
        self.setup.env_objects = objects;
    }

    /// The mounts of container `i`, as host paths (`volumeMounts` resolved: subPath,
    /// readOnly); the runtime mounts them.
    pub(super) fn mount_specs(
        &self,
        i: usize,
        env: &[(String, String)],
    ) -> Result<Vec<MountSpec>, ConfigError> {
        let spec = &self.ctrs[i].spec;
        let volumes = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_deref())
            .unwrap_or_default();
        let vars: HashMap<String, String> = env.iter().cloned().collect();
        mounts::container_mounts(&self.shared.opts.root_dir, self.uid(), volumes, spec, &vars)
            .map_err(|message| ConfigError {
                reason: "CreateContainerConfigError",
                message,
            })
    }
}
