//! A pod worker's probe jobs (one task per probe of a container instance, reporting each
//! thresholded flip to the worker) and the stop of a container (SIGTERM, SIGKILL after the
//! grace period).

use std::time::{Duration, Instant};

use rustix::process::Signal;
use tokio::sync::{mpsc, watch};

use super::{Event, Running};
use crate::agent::probe::{self, Kind};
use crate::agent::process;

/// Asks a container to stop: SIGTERM now, SIGKILL after `grace` if it is still the same
/// process.
pub(super) fn kill(r: &mut Running, grace: Duration) {
    if r.killing {
        return;
    }
    r.killing = true;
    let (pid, ticks) = (r.pid, r.start_ticks);
    if !process::signal(pid, ticks, Signal::TERM) {
        return;
    }
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + grace;
        while process::alive(pid, ticks) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50).min(grace)).await;
        }
        process::signal(pid, ticks, Signal::KILL);
    });
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
            let outcome = self.spec.run(&self.env).await;
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
