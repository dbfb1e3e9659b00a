//! A pod worker's probe jobs (one task per probe of a container instance, reporting each
//! thresholded flip to the worker, and each failed run as the kubelet's `Unhealthy` event) and
//! the stop of a container (through the runtime: SIGTERM, SIGKILL after the grace period).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{mpsc, watch};

use super::{Event, Running};
use crate::agent::events::{self, Recorder};
use crate::agent::probe::{self, Kind, Outcome};
use crate::agent::runtime::{ContainerId, ContainerRuntime};

/// Asks a container to stop (once): gracefully now, forcibly after `grace`.
pub(super) fn kill(runtime: &dyn ContainerRuntime, r: &mut Running, grace: Duration) {
    if r.killing {
        return;
    }
    r.killing = true;
    runtime.stop(&r.id, grace);
}

/// One probe of one container instance.
pub(super) struct ProbeJob {
    pub(super) kind: Kind,
    pub(super) spec: probe::Spec,
    pub(super) container: usize,
    pub(super) instance: u32,
    pub(super) started_at: Instant,
    pub(super) started: watch::Receiver<bool>,
    pub(super) tx: mpsc::UnboundedSender<Event>,
    /// Exec probes run in the container through the runtime.
    pub(super) runtime: Arc<dyn ContainerRuntime>,
    pub(super) id: ContainerId,
    /// Where `Unhealthy` events go, and the pod they are about.
    pub(super) recorder: Recorder,
    pub(super) pod: Arc<Pod>,
}

impl ProbeJob {
    pub(super) async fn run(mut self) {
        // Liveness and readiness wait for the startup probe.
        if self.kind != Kind::Startup {
            while !*self.started.borrow_and_update() {
                if self.started.changed().await.is_err() {
                    return;
                }
            }
        }
        let first = self.started_at + self.spec.initial_delay;
        tokio::time::sleep_until(first.into()).await;
        let initial = match self.kind {
            Kind::Readiness => Some(false),
            Kind::Liveness => Some(true),
            Kind::Startup => None,
        };
        let mut tracker = probe::Tracker::new(&self.spec, initial);
        let mut tick = tokio::time::interval(self.spec.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let outcome = self.spec.run(self.runtime.as_ref(), &self.id).await;
            if let Some(message) = outcome.event_message(self.kind) {
                self.recorder
                    .pod_event(&self.pod, events::WARNING, "Unhealthy", message);
            }
            let ok = match &outcome {
                Outcome::Success => true,
                Outcome::Failure(_) => false,
                // Upstream throws an errored run's result away.
                Outcome::Error(_) => continue,
            };
            if let Some(flipped) = tracker.record(ok) {
                let message = match outcome {
                    Outcome::Failure(output) => output,
                    _ => String::new(),
                };
                let sent = self.tx.send(Event::Probe {
                    container: self.container,
                    instance: self.instance,
                    kind: self.kind,
                    ok: flipped,
                    message,
                });
                if sent.is_err() {
                    return;
                }
                // A startup probe is done once it succeeded.
                if self.kind == Kind::Startup && flipped {
                    return;
                }
            }
        }
    }
}
