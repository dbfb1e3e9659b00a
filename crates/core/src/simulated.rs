//! Simulated nodes: how one is marked, and what its kubelet would serve.
//!
//! A simulated node has no machine behind it: its InternalIP and its pods' IPs are made up for
//! display (`-o wide`), and nothing may ever connect to them. So the API server never forwards a
//! request to a simulated node; it answers for the node's kubelet instead, as kwok's fake
//! kubelet does. Logs are a few deterministic lines derived from what the simulator reported in
//! the pod's status ([`container_log`]); what a simulator cannot do (exec, attach,
//! port-forward) is refused by the caller.
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use pernode_core::simulated::{LogRequest, container_log};
//!
//! let pod: Pod = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "p", "namespace": "default"},
//!     "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx:1.27"}]},
//!     "status": {"containerStatuses": [{"name": "c", "image": "nginx:1.27", "imageID": "",
//!         "ready": true, "restartCount": 0,
//!         "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
//! })).unwrap();
//! let log = container_log(&pod, "c", &LogRequest::default()).unwrap();
//! assert!(log.lines[0].text.contains("started"));
//! assert!(log.running);
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

/// Annotation that marks a Node as run by the simulator.
pub const SIMULATED_ANNOTATION: &str = "pernode.io/simulated";

/// Whether annotations carry `pernode.io/simulated: "true"`.
pub fn is_simulated(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations
        .and_then(|a| a.get(SIMULATED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// What a log request asks for, as the kubelet's `PodLogOptions`.
#[derive(Clone, Debug, Default)]
pub struct LogRequest {
    /// The instance before the current one.
    pub previous: bool,
    /// Only the last this many lines.
    pub tail_lines: Option<usize>,
    /// Only lines at or after this time.
    pub since: Option<Timestamp>,
    /// Each line prefixed with its RFC 3339 time.
    pub timestamps: bool,
    /// At most this many bytes.
    pub limit_bytes: Option<usize>,
}

/// One log line and when it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub time: Timestamp,
    pub text: String,
}

/// A container's simulated log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerLog {
    pub lines: Vec<LogLine>,
    /// Whether the instance is still running, so a follow waits for more (its end).
    pub running: bool,
}

impl ContainerLog {
    /// The log as the kubelet sends it for `req`: lines since `req.since`, the last
    /// `tail_lines`, optionally timestamped, cut at `limit_bytes`.
    pub fn render(&self, req: &LogRequest) -> Vec<u8> {
        render_lines(&self.lines, req)
    }
}

/// `lines` as the kubelet sends them for `req` (see [`ContainerLog::render`]).
pub fn render_lines(lines: &[LogLine], req: &LogRequest) -> Vec<u8> {
    let kept: Vec<&LogLine> = lines
        .iter()
        .filter(|l| req.since.is_none_or(|since| l.time >= since))
        .collect();
    let skip = req.tail_lines.map_or(0, |n| kept.len().saturating_sub(n));
    let mut out = Vec::new();
    for line in &kept[skip..] {
        if req.timestamps {
            out.extend_from_slice(rfc3339_nano(line.time).as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(line.text.as_bytes());
        out.push(b'\n');
    }
    if let Some(limit) = req.limit_bytes {
        out.truncate(limit);
    }
    out
}

/// The time as the CRI log format and the kubelet's `--timestamps` write it.
pub fn rfc3339_nano(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%NZ").to_string()
}

/// The simulated log of `container` in `pod`, or the kubelet's refusal (as
/// `validateContainerLogStatus` words it, answered as 400 Bad Request).
pub fn container_log(pod: &Pod, container: &str, req: &LogRequest) -> Result<ContainerLog, String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default();
    let Some(cs) = container_status(pod, container) else {
        return Err(format!(
            "container {container:?} in pod {name:?} is not available"
        ));
    };
    let state = cs.state.clone().unwrap_or_default();
    let last = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .filter(|t| t.container_id.as_deref().is_some_and(|id| !id.is_empty()));
    if req.previous {
        let Some(last) = last else {
            return Err(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            ));
        };
        let instance = cs.restart_count.max(1) - 1;
        return Ok(ContainerLog {
            lines: with_exit(
                instance_lines(cs, node, instance, last.started_at.as_ref().map(|t| t.0)),
                last,
            ),
            running: false,
        });
    }
    if let Some(running) = &state.running {
        let started = running.started_at.as_ref().map(|t| t.0);
        return Ok(ContainerLog {
            lines: instance_lines(cs, node, cs.restart_count, started),
            running: true,
        });
    }
    if let Some(terminated) = state.terminated.as_ref().or(last) {
        if terminated.container_id.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "container {container:?} in pod {name:?} is terminated"
            ));
        }
        let started = terminated.started_at.as_ref().map(|t| t.0);
        return Ok(ContainerLog {
            lines: with_exit(
                instance_lines(cs, node, cs.restart_count, started),
                terminated,
            ),
            running: false,
        });
    }
    let why = match state.waiting.as_ref().and_then(|w| w.reason.as_deref()) {
        Some("ErrImagePull") => "image can't be pulled".to_string(),
        Some("ImagePullBackOff") => "trying and failing to pull image".to_string(),
        Some(reason) => reason.to_string(),
        None => {
            return Err(format!(
                "container {container:?} in pod {name:?} is waiting to start - no logs yet"
            ));
        }
    };
    Err(format!(
        "container {container:?} in pod {name:?} is waiting to start: {why}"
    ))
}

/// The status of the container (or init container) `name` of `pod`, if reported.
pub fn container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    let status = pod.status.as_ref();
    status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .chain(status.and_then(|s| s.init_container_statuses.as_ref()))
        .flatten()
        .find(|c| c.name == name)
}

/// What a simulated instance "printed" when it started.
fn instance_lines(
    cs: &ContainerStatus,
    node: &str,
    instance: i32,
    started: Option<Timestamp>,
) -> Vec<LogLine> {
    let time = started.unwrap_or(Timestamp::UNIX_EPOCH);
    let line = |text: String| LogLine { time, text };
    let mut lines = vec![
        line(format!(
            "pernode simulator: container {:?} started on node {node:?} (simulated: no process runs)",
            cs.name
        )),
        line(format!("pernode simulator: image {}", cs.image)),
    ];
    if instance > 0 {
        lines.push(line(format!(
            "pernode simulator: restart {instance} of this container"
        )));
    }
    lines
}

/// An instance's lines followed by the line of its exit.
fn with_exit(mut lines: Vec<LogLine>, t: &ContainerStateTerminated) -> Vec<LogLine> {
    let time = t
        .finished_at
        .as_ref()
        .or(t.started_at.as_ref())
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    lines.push(LogLine {
        time,
        text: format!(
            "pernode simulator: container exited with code {}",
            t.exit_code
        ),
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox:1"}]},
            "status": {"containerStatuses": [status]},
        }))
        .expect("pod literal")
    }

    fn cs(extra: serde_json::Value) -> serde_json::Value {
        let mut base = json!({"name": "c", "image": "busybox:1", "imageID": "", "ready": false,
            "restartCount": 0});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        base
    }

    fn text(log: &ContainerLog, req: &LogRequest) -> String {
        String::from_utf8(log.render(req)).expect("utf-8")
    }

    #[test]
    fn a_running_container_logs_its_start_image_and_node() {
        let p = pod(cs(
            json!({"state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}}),
        ));
        let log = container_log(&p, "c", &LogRequest::default()).expect("log");
        assert!(log.running);
        assert_eq!(
            text(&log, &LogRequest::default()),
            "pernode simulator: container \"c\" started on node \"node-1\" (simulated: no process runs)\n\
             pernode simulator: image busybox:1\n"
        );
        let stamped = LogRequest {
            timestamps: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        assert_eq!(
            text(&log, &stamped),
            "2026-01-01T00:00:05.000000000Z pernode simulator: image busybox:1\n"
        );
        let later = LogRequest {
            since: Some("2026-01-01T00:00:06Z".parse().expect("time")),
            ..Default::default()
        };
        assert_eq!(text(&log, &later), "");
        let cut = LogRequest {
            limit_bytes: Some(8),
            ..Default::default()
        };
        assert_eq!(text(&log, &cut), "pernode ");
    }

    #[test]
    fn previous_needs_a_terminated_instance() {
        let p = pod(cs(
            json!({"state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}}),
        ));
        let previous = LogRequest {
            previous: true,
            ..Default::default()
        };
        assert_eq!(
            container_log(&p, "c", &previous).expect_err("no previous"),
            "previous terminated container \"c\" in pod \"p\" not found"
        );
        let restarted = pod(cs(json!({
            "restartCount": 2,
            "state": {"running": {"startedAt": "2026-01-01T00:01:00Z"}},
            "lastState": {"terminated": {"exitCode": 3, "containerID": "pernode-sim://x/c",
                "startedAt": "2026-01-01T00:00:05Z", "finishedAt": "2026-01-01T00:00:50Z"}},
        })));
        let log = container_log(&restarted, "c", &previous).expect("previous");
        assert!(!log.running);
        let t = text(&log, &LogRequest::default());
        assert!(t.contains("restart 1 of this container"), "{t}");
        assert!(t.ends_with("container exited with code 3\n"), "{t}");
        let current = container_log(&restarted, "c", &LogRequest::default()).expect("current");
        assert!(text(&current, &LogRequest::default()).contains("restart 2"));
    }

    #[test]
    fn refusals_follow_the_kubelet() {
        let waiting = |reason: &str| pod(cs(json!({"state": {"waiting": {"reason": reason}}})));
        let req = LogRequest::default();
        assert_eq!(
            container_log(&waiting("ContainerCreating"), "c", &req).expect_err("waiting"),
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            container_log(&waiting("ErrImagePull"), "c", &req).expect_err("pull"),
            "container \"c\" in pod \"p\" is waiting to start: image can't be pulled"
        );
        assert_eq!(
            container_log(&waiting("ImagePullBackOff"), "c", &req).expect_err("backoff"),
            "container \"c\" in pod \"p\" is waiting to start: trying and failing to pull image"
        );
        assert_eq!(
            container_log(&waiting("ContainerCreating"), "zz", &req).expect_err("unknown"),
            "container \"zz\" in pod \"p\" is not available"
        );
    }

    #[test]
    fn a_terminated_container_logs_its_exit() {
        let p = pod(cs(
            json!({"state": {"terminated": {"exitCode": 0, "reason": "Completed",
            "containerID": "pernode-sim://u/c", "startedAt": "2026-01-01T00:00:05Z",
            "finishedAt": "2026-01-01T00:00:07Z"}}}),
        ));
        let log = container_log(&p, "c", &LogRequest::default()).expect("log");
        assert!(!log.running);
        assert!(text(&log, &LogRequest::default()).ends_with("exited with code 0\n"));
    }

    #[test]
    fn simulated_means_the_annotation_is_true() {
        let mut a = BTreeMap::new();
        assert!(!is_simulated(Some(&a)));
        a.insert(SIMULATED_ANNOTATION.to_string(), "false".to_string());
        assert!(!is_simulated(Some(&a)));
        a.insert(SIMULATED_ANNOTATION.to_string(), "true".to_string());
        assert!(is_simulated(Some(&a)));
        assert!(!is_simulated(None));
    }
}
