//! What a pod worker reports: the durable record of its containers, what the log endpoint
//! serves, and the pod's status (container states, phase, conditions) written to the API.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::time::Instant;
use tracing::{debug, warn};

use super::{Ctr, STATUS_RETRY, Worker, parse_time, termination};
use crate::agent::RUNTIME_SCHEME;
use crate::agent::logs::ContainerLogs;
use crate::agent::state::Terminated;
use crate::status::{PodAddresses, PodView, assemble_pod_status};

impl Worker {
    pub(super) fn save(&mut self) {
        self.record.containers = self
            .ctrs
            .iter()
            .map(|c| (c.spec.name.clone(), c.rec.clone()))
            .collect();
        if let Err(e) = self.record.save(&self.shared.opts.root_dir) {
            warn!(pod = %self.name(), error = %e, "could not save pod state");
        }
    }

    pub(super) fn publish_logs(&self) {
        let runtime = &self.shared.runtime;
        let pod = self.pod_ref();
        for c in &self.ctrs {
            let path = |n: u32| runtime.log_path(&pod, &c.spec.name, n);
            let logs = ContainerLogs {
                current: c.rec.ever_started.then(|| path(c.rec.instance)),
                previous: (c.rec.ever_started && c.rec.instance > 0)
                    .then(|| path(c.rec.instance - 1)),
                running: c.running.is_some(),
                waiting: c.waiting.as_ref().map(|w| w.0.clone()),
                format: runtime.log_format(),
                running_id: c.running.as_ref().map(|r| r.id.clone()),
                pod_uid: self.uid().to_string(),
                started_at: c.running.as_ref().map(|r| r.started_at),
            };
            self.shared
                .logs
                .set(self.ns(), self.name(), &c.spec.name, logs);
        }
    }

    fn container_status(&self, c: &Ctr) -> ContainerStatus {
        let image = c.spec.image.clone().unwrap_or_default();
        let scheme = self.shared.runtime.scheme();
        // A CRI runtime's container ID; host processes are named by pod, container, instance.
        let id = |instance: u32, cri: Option<&String>| match cri {
            Some(cri) => format!("{scheme}://{cri}"),
            None => format!("{RUNTIME_SCHEME}{}/{}/{instance}", self.uid(), c.spec.name),
        };
        // The pod's 12 KiB of termination messages, split across its containers.
        let containers = self.ctrs.len();
        let terminated = |t: &Terminated| ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: t.exit_code,
                reason: Some(t.reason.clone()),
                message: t
                    .message
                    .as_deref()
                    .map(|m| termination::cap_for_pod(m, containers).to_string()),
                started_at: Some(Time(parse_time(&t.started_at))),
                finished_at: Some(Time(parse_time(&t.finished_at))),
                container_id: Some(id(t.instance, t.container_id.as_ref())),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (state, ready, started) = if let Some(r) = &c.running {
            (
                ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(Time(r.started_at)),
                    }),
                    ..Default::default()
                },
                r.ready && !c.init,
                r.started,
            )
        } else if let Some(d) = &c.rec.done {
            (terminated(d), c.init && d.exit_code == 0, false)
        } else {
            let (reason, message) = c
                .waiting
                .clone()
                .unwrap_or_else(|| ("ContainerCreating".into(), None));
            (
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason),
                        message,
                    }),
                    ..Default::default()
                },
                false,
                false,
            )
        };
        ContainerStatus {
            name: c.spec.name.clone(),
            image: image.clone(),
            image_id: match &c.rec.image_ref {
                Some(r) => r.clone(),
                None => format!("{RUNTIME_SCHEME}image/{image}"),
            },
            container_id: c.rec.ever_started.then(|| {
                let last = c.rec.done.as_ref().or(c.rec.last_terminated.as_ref());
                let cri = c.rec.container_id.as_ref().or_else(|| {
                    c.running
                        .is_none()
                        .then(|| last.and_then(|t| t.container_id.as_ref()))
                        .flatten()
                });
                id(c.rec.instance, cri)
            }),
            ready,
            started: Some(started),
            restart_count: c.rec.restart_count,
            state: Some(state),
            last_state: c.rec.last_terminated.as_ref().map(terminated),
            ..Default::default()
        }
    }

    fn view(&self) -> PodView {
        let inits: Vec<&Ctr> = self.ctrs.iter().filter(|c| c.init).collect();
        let apps: Vec<&Ctr> = self.ctrs.iter().filter(|c| !c.init).collect();
        let init_failed = inits
            .iter()
            .any(|c| c.rec.done.as_ref().is_some_and(|d| d.exit_code != 0));
        let initialized = inits
            .iter()
            .all(|c| c.rec.done.as_ref().is_some_and(|d| d.exit_code == 0));
        let all_done = apps.iter().all(|c| c.rec.done.is_some());
        let phase = if init_failed {
            "Failed"
        } else if !initialized {
            "Pending"
        } else if all_done {
            if apps
                .iter()
                .all(|c| c.rec.done.as_ref().is_some_and(|d| d.exit_code == 0))
            {
                "Succeeded"
            } else {
                "Failed"
            }
        } else if apps
            .iter()
            .any(|c| c.running.is_some() || c.rec.last_terminated.is_some() || c.rec.done.is_some())
        {
            "Running"
        } else {
            "Pending"
        };
        let containers: Vec<ContainerStatus> =
            apps.iter().map(|c| self.container_status(c)).collect();
        let ready = phase == "Running" && containers.iter().all(|c| c.ready);
        PodView {
            phase: phase.to_string(),
            ready,
            containers,
            init_containers: (!inits.is_empty())
                .then(|| inits.iter().map(|c| self.container_status(c)).collect()),
            initialized,
            completed: phase == "Succeeded" || phase == "Failed",
        }
    }

    pub(super) async fn write_status(&mut self) {
        let mut base = (*self.pod).clone();
        if self.last_status.is_some() {
            base.status = self.last_status.clone();
        }
        let addrs = PodAddresses {
            host_ip: self.shared.node_ip,
            pod_ip: self.shared.node_ip,
        };
        let mut status = assemble_pod_status(&base, self.view(), addrs, Timestamp::now());
        // On the host's network the pod's IP is the node's; on a CNI network, its sandbox's.
        let ip = self.ip();
        status.pod_ip = Some(ip.clone());
        status.pod_ips = Some(vec![k8s_openapi::api::core::v1::PodIP { ip }]);
        let value = json!({ "status": status });
        self.last_status = Some(status);
        if self.last_written.as_ref() == Some(&value) {
            return;
        }
        let api: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.shared.client.clone(), self.ns());
        match api
            .patch_status(
                self.name(),
                &PatchParams::default(),
                &Patch::Strategic(value.clone()),
            )
            .await
        {
            Ok(_) => {
                self.last_written = Some(value);
                self.write_retry_at = None;
            }
            // A static pod's mirror may not exist yet; the static source creates it.
            Err(e) => {
                debug!(pod = %self.name(), error = %e, "pod status write failed; retrying");
                self.write_retry_at = Some(Instant::now() + STATUS_RETRY);
            }
        }
    }
}
