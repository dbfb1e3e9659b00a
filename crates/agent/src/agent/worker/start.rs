//! Starting one container instance: the image pull back-off (`ImagePullBackOff`), the pod's
//! sandbox, the container's env and mounts (with the pod's hosts file and its termination
//! message file), the runtime's start, and what a failed start leaves (the waiting reason,
//! the kubelet's `Failed` events, the retry).

use std::time::Instant;

use k8s_openapi::jiff::Timestamp;
use tracing::{debug, warn};

use super::{POD_SYNC_AFTER_ERROR, Worker, hosts, termination};
use crate::agent::env;
use crate::agent::events;
use crate::agent::metrics;
use crate::agent::runtime::{StartError, StartRequest};

impl Worker {
    pub(super) async fn start(&mut self, i: usize) {
        // Kubelet's image back-off: while it lasts, the container waits without a pull.
        if let Some((until, _)) = self.ctrs[i].pull_backoff
            && Instant::now() < until
        {
            let image = self.ctrs[i].spec.image.clone().unwrap_or_default();
            let message = format!("Back-off pulling image {image:?}");
            self.shared
                .recorder
                .pod_event(&self.pod, events::NORMAL, "BackOff", message.clone());
            self.shared.recorder.pod_event(
                &self.pod,
                events::WARNING,
                "Failed",
                "Error: ImagePullBackOff".into(),
            );
            let c = &mut self.ctrs[i];
            c.waiting = Some(("ImagePullBackOff".into(), Some(message)));
            c.start_at = Some(until);
            return;
        }
        let sandbox = match self.shared.runtime.prepare_pod(&self.pod).await {
            Ok(s) => s,
            Err(e) => {
                debug!(pod = %self.name(), error = %e, "pod sandbox not ready");
                self.retry_later(i, e.reason, e.message);
                return;
            }
        };
        self.pod_ip = sandbox.pod_ip;
        let ip = self.ip();
        let result = {
            let c = &self.ctrs[i];
            let ctx = self.field_context(&ip);
            env::resolve_env(&c.spec, &ctx, &self.base_env(), &self.setup.env_objects)
                .and_then(|e| self.mount_specs(i, &e).map(|m| (e, m)))
        };
        let (envs, mut mounts) = match result {
            Ok(v) => v,
            Err(e) => {
                debug!(pod = %self.name(), container = %self.ctrs[i].spec.name, reason = e.reason, message = %e.message, "container cannot start");
                if e.reason == "CreateContainerConfigError" {
                    // The kubelet's `Failed` event for a container it cannot configure.
                    self.shared.recorder.pod_event(
                        &self.pod,
                        events::WARNING,
                        "Failed",
                        format!("Error: {}", e.message),
                    );
                }
                self.retry_later(i, e.reason, e.message);
                return;
            }
        };
        let instance = if self.ctrs[i].rec.ever_started {
            self.ctrs[i].rec.instance + 1
        } else {
            0
        };
        let root = self.shared.opts.root_dir.clone();
        match hosts::prepare(&root, &self.pod, &self.ctrs[i].spec, &[ip]) {
            Ok(mount) => mounts.extend(mount),
            Err(e) => {
                let message = format!("failed to write the pod's hosts file: {e}");
                self.retry_later(i, "CreateContainerConfigError", message);
                return;
            }
        }
        match termination::prepare(&root, self.uid(), &self.ctrs[i].spec, instance) {
            Ok(mount) => mounts.extend(mount),
            // As upstream: the container starts without its termination message file.
            Err(e) => {
                warn!(pod = %self.name(), container = %self.ctrs[i].spec.name, error = %e, "cannot create the termination message file")
            }
        }
        let pod_ref = self.pod_ref();
        let runtime = self.shared.runtime.clone();
        let name = self.ctrs[i].spec.name.clone();
        let started = runtime
            .start(StartRequest {
                pod: &self.pod,
                container: &self.ctrs[i].spec,
                instance,
                env: &envs,
                mounts: &mounts,
                log: runtime.log_path(&pod_ref, &name, instance),
            })
            .await;
        let p = match started {
            Ok(p) => p,
            Err(e) => {
                self.start_failed(i, e);
                return;
            }
        };
        self.ctrs[i].pull_backoff = None;
        // Keep the current and the previous instance's logs only, as the kubelet does.
        if instance >= 2 {
            let _ = std::fs::remove_file(runtime.log_path(&pod_ref, &name, instance - 2));
            let _ = std::fs::remove_file(termination::file_path(
                &root,
                self.uid(),
                &name,
                instance - 2,
            ));
        }
        debug!(pod = %self.name(), container = %name, id = ?p.id, "container started");
        self.shared.recorder.pod_event(
            &self.pod,
            events::NORMAL,
            "Created",
            format!("Created container: {name}"),
        );
        self.shared.recorder.pod_event(
            &self.pod,
            events::NORMAL,
            "Started",
            format!("Started container {name}"),
        );
        let c = &mut self.ctrs[i];
        c.rec.instance = instance;
        c.rec.ever_started = true;
        p.id.record(&mut c.rec);
        c.rec.image_ref = p.image_ref.clone();
        let started_at = Timestamp::now();
        c.rec.started_at = Some(started_at.to_string());
        c.waiting = None;
        c.start_at = None;
        metrics::container_started(c.init);
        self.track(i, p, started_at);
        self.save();
    }

    /// A start that failed: image pull errors start the image back-off (the kubelet's
    /// `Error: ErrImagePull` event); the container waits with the reason and retries.
    fn start_failed(&mut self, i: usize, e: StartError) {
        debug!(pod = %self.name(), container = %self.ctrs[i].spec.name, error = %e, "container did not start");
        match e.reason {
            "ErrImagePull" => {
                let now = Instant::now();
                let delay = self.ctrs[i]
                    .pull_backoff
                    .map_or(self.shared.opts.backoff_initial, |(_, d)| {
                        (d * 2).min(self.shared.opts.backoff_max)
                    });
                self.ctrs[i].pull_backoff = Some((now + delay, delay));
                self.shared.recorder.pod_event(
                    &self.pod,
                    events::WARNING,
                    "Failed",
                    format!("Error: {}", e.reason),
                );
                let c = &mut self.ctrs[i];
                c.waiting = Some((e.reason.to_string(), Some(e.message)));
                // The pod worker's next sync (kubelet: its error back-off) finds the image
                // in back-off and says so.
                c.start_at = Some(now + POD_SYNC_AFTER_ERROR.min(delay));
            }
            "ErrImageNeverPull" | "CreateContainerError" | "RunContainerError" => {
                self.shared.recorder.pod_event(
                    &self.pod,
                    events::WARNING,
                    "Failed",
                    format!("Error: {}", e.message),
                );
                self.retry_later(i, e.reason, e.message);
            }
            _ => self.retry_later(i, e.reason, e.message),
        }
    }
}
