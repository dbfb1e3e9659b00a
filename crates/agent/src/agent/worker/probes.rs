//! A pod worker's probe jobs (one task per probe of a container instance, reporting each
//! thresholded flip to the worker) and the stop of a container (through the runtime: SIGTERM,
//! SIGKILL after the grace period).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::{Event, Running};
use crate::agent::probe::{self, Kind};
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
    pub(super) env: Vec<(String, String)>,
    pub(super) started: watch::Receiver<bool>,
    pub(super) tx: mpsc::UnboundedSender<Event>,
    /// Exec probes run in the container through the runtime, where it has exec.
    pub(super) runtime: Arc<dyn ContainerRuntime>,
    pub(super) id: ContainerId,
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
            let in_container = match &self.spec.action {
                probe::Action::Exec(cmd) => {
                    self.runtime
                        .exec_sync(&self.id, cmd.clone(), self.spec.timeout)
                }
                _ => None,
            };
            let outcome = match in_container {
                Some(exec) => exec.await,
                None => self.spec.run(&self.env).await,
            };
            let ok = outcome.is_ok();
            if let Some(flipped) = tracker.record(ok) {
                let message = outcome.err().unwrap_or_default();
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
