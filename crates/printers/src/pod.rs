//! Pod rows: a port of upstream's `printPod`.
//!
//! The Status column is the phase, overridden in order by `status.reason`, a
//! `SchedulingGated` PodScheduled condition, the first failing init container
//! (`Init:<reason>`, `Init:ExitCode:N`, `Init:Signal:N`, `Init:i/n`), then the reasons of
//! the regular containers (waiting or terminated; the first container wins because
//! upstream walks them backwards), then `Terminating`/`Unknown` for pods being deleted.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::model::{Head, Meta, RenderError, Row, lean_object, or_none, s};
use pernode_core::duration::age_since;

/// `apiv1.PodReasonSchedulingGated`.
const SCHEDULING_GATED: &str = "SchedulingGated";
/// `node.NodeUnreachablePodReason`: set by the node lifecycle controller.
const NODE_LOST: &str = "NodeLost";

const SUCCEEDED_CONDITIONS: &str = r#"[{"type":"Completed","status":"True","reason":"Succeeded","message":"The pod has completed successfully."}]"#;
const FAILED_CONDITIONS: &str =
    r#"[{"type":"Completed","status":"True","reason":"Failed","message":"The pod failed."}]"#;

lean_object! {
    struct Pod<'a> {
        #[serde(default)]
        spec: Option<Spec>,
        #[serde(default)]
        status: Option<Status>,
    }
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Spec {
    containers: Option<Vec<IgnoredAny>>,
    init_containers: Option<Vec<InitContainer>>,
    node_name: Option<String>,
    readiness_gates: Option<Vec<ReadinessGate>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct InitContainer {
    name: Option<String>,
    restart_policy: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ReadinessGate {
    condition_type: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Status {
    phase: Option<String>,
    reason: Option<String>,
    nominated_node_name: Option<String>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pod_ips: Option<Vec<PodIp>>,
    conditions: Option<Vec<Condition>>,
    init_container_statuses: Option<Vec<ContainerStatus>>,
    container_statuses: Option<Vec<ContainerStatus>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PodIp {
    ip: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Condition {
    #[serde(rename = "type")]
    type_: Option<String>,
    status: Option<String>,
    reason: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ContainerStatus {
    name: Option<String>,
    restart_count: Option<i64>,
    ready: Option<bool>,
    started: Option<bool>,
    state: Option<State>,
    last_state: Option<State>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct State {
    waiting: Option<Waiting>,
    running: Option<IgnoredAny>,
    terminated: Option<Terminated>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Waiting {
    reason: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Terminated {
    reason: Option<String>,
    exit_code: Option<i64>,
    signal: Option<i64>,
    finished_at: Option<Time>,
}

impl ContainerStatus {
    fn state(&self) -> Option<&State> {
        self.state.as_ref()
    }
    fn terminated(&self) -> Option<&Terminated> {
        self.state().and_then(|st| st.terminated.as_ref())
    }
    fn waiting_reason(&self) -> &str {
        self.state()
            .and_then(|st| st.waiting.as_ref())
            .map_or("", |w| s(&w.reason))
    }
    fn last_finished_at(&self) -> Option<&Time> {
        self.last_state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref())
    }
}

/// Keeps the later of two restart times, as upstream's `lastRestartDate.Before(...)`.
fn keep_latest<'t>(slot: &mut Option<&'t Time>, candidate: Option<&'t Time>) {
    if let Some(c) = candidate
        && slot.is_none_or(|cur| cur < c)
    {
        *slot = Some(c);
    }
}

pub(crate) fn render(bytes: &[u8], now: Timestamp) -> Result<(Head<'_>, Row), RenderError> {
    let pod: Pod<'_> = serde_json::from_slice(bytes)?;
    let head = pod.head();
    let meta = Meta::parse(head.metadata)?;
    let spec = pod.spec.unwrap_or_default();
    let status = pod.status.unwrap_or_default();
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let init_containers = spec.init_containers.as_deref().unwrap_or_default();
    let init_statuses = status
        .init_container_statuses
        .as_deref()
        .unwrap_or_default();
    let statuses = status.container_statuses.as_deref().unwrap_or_default();

    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total = spec.containers.as_ref().map_or(0, Vec::len);
    let mut ready = 0usize;
    let mut last_restart: Option<&Time> = None;
    let mut last_restartable_init_restart: Option<&Time> = None;

    let phase = s(&status.phase);
    let mut reason = match s(&status.reason) {
        "" => phase.to_owned(),
        r => r.to_owned(),
    };
    if conditions
        .iter()
        .any(|c| s(&c.type_) == "PodScheduled" && s(&c.reason) == SCHEDULING_GATED)
    {
        reason = SCHEDULING_GATED.to_owned();
    }

    // Sidecars (init containers with restartPolicy Always) count as containers. Upstream
    // looks them up in a map keyed by name, so the last spec entry of a name wins.
    let is_restartable = |name: &str| {
        init_containers
            .iter()
            .rev()
            .find(|c| s(&c.name) == name)
            .is_some_and(|c| s(&c.restart_policy) == "Always")
    };
    total += init_containers
        .iter()
        .filter(|c| s(&c.restart_policy) == "Always")
        .count();

    let mut initializing = false;
    for (i, cs) in init_statuses.iter().enumerate() {
        restarts += cs.restart_count.unwrap_or(0);
        keep_latest(&mut last_restart, cs.last_finished_at());
        let restartable = is_restartable(s(&cs.name));
        if restartable {
            restartable_init_restarts += cs.restart_count.unwrap_or(0);
            keep_latest(&mut last_restartable_init_restart, cs.last_finished_at());
        }
        let terminated = cs.terminated();
        if terminated.is_some_and(|t| t.exit_code.unwrap_or(0) == 0) {
            continue;
        }
        if restartable && cs.started == Some(true) {
            if cs.ready.unwrap_or(false) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match s(&t.reason) {
                "" if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                "" => format!("Init:ExitCode:{}", t.exit_code.unwrap_or(0)),
                r => format!("Init:{r}"),
            };
        } else if !matches!(cs.waiting_reason(), "" | "PodInitializing") {
            reason = format!("Init:{}", cs.waiting_reason());
        } else {
            reason = format!("Init:{i}/{}", init_containers.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| s(&c.type_) == "Initialized")
        .is_some_and(|c| s(&c.status) == "True");
    if !initializing || initialized {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        // Backwards, so the reason of the first container is the one that sticks.
        for cs in statuses.iter().rev() {
            restarts += cs.restart_count.unwrap_or(0);
            keep_latest(&mut last_restart, cs.last_finished_at());
            let waiting = cs.waiting_reason();
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if let Some(t) = cs.terminated() {
                reason = match s(&t.reason) {
                    "" if t.signal.unwrap_or(0) != 0 => format!("Signal:{}", t.signal.unwrap_or(0)),
                    "" => format!("ExitCode:{}", t.exit_code.unwrap_or(0)),
                    r => r.to_owned(),
                };
            } else if cs.ready.unwrap_or(false) && cs.state().is_some_and(|st| st.running.is_some())
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose first container completed while another still runs is not done.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| s(&c.type_) == "Ready" && s(&c.status) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
        }
    }

    let terminal = matches!(phase, "Succeeded" | "Failed");
    if meta.deletion_timestamp.is_some() && s(&status.reason) == NODE_LOST {
        reason = "Unknown".to_owned();
    } else if meta.deletion_timestamp.is_some() && !terminal {
        reason = "Terminating".to_owned();
    }

    let restarts_cell = match last_restart {
        Some(at) if restarts != 0 => format!("{restarts} ({} ago)", age_since(Some(at), now)),
        _ => restarts.to_string(),
    };

    // Upstream reads status.podIPs only; a v1 object with just podIP is converted into
    // podIPs before printing there, so fall back to it here.
    let pod_ip = status
        .pod_ips
        .as_deref()
        .and_then(|ips| ips.first())
        .map(|ip| s(&ip.ip))
        .filter(|ip| !ip.is_empty())
        .unwrap_or(s(&status.pod_ip));

    let readiness_gates = match spec.readiness_gates.as_deref() {
        None | Some([]) => "<none>".to_owned(),
        Some(gates) => {
            let true_conditions = gates
                .iter()
                .filter(|g| {
                    conditions
                        .iter()
                        .find(|c| s(&c.type_) == s(&g.condition_type))
                        .is_some_and(|c| s(&c.status) == "True")
                })
                .count();
            format!("{true_conditions}/{}", gates.len())
        }
    };

    let row = Row {
        cells: vec![
            meta.name().into(),
            format!("{ready}/{total}").into(),
            reason.into(),
            restarts_cell.into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
            or_none(pod_ip).into(),
            or_none(s(&spec.node_name)).into(),
            or_none(s(&status.nominated_node_name)).into(),
            readiness_gates.into(),
        ],
        conditions: match phase {
            "Succeeded" => Some(SUCCEEDED_CONDITIONS),
            "Failed" => Some(FAILED_CONDITIONS),
            _ => None,
        },
    };
    Ok((head, row))
}
