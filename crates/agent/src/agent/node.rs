//! The agent's Node: registration (labels and taints as given, like the kubelet's
//! `--node-labels` and `--register-with-taints`), the status it posts (capacity, allocatable,
//! addresses, its log endpoint's port, the Ready condition) and its Lease in kube-node-lease.
//! It records the kubelet's node events: `Starting` at each start, and the condition events of
//! upstream's node status setters ([`condition_events`]).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tracing::{debug, warn};

use super::{Error, Shared};
use crate::status::{node_lease, node_status_patch};

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// The Node object the agent registers.
pub fn node_object(
    name: &str,
    arch: &str,
    labels: &BTreeMap<String, String>,
    taints: &[Taint],
) -> Node {
    let mut all: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", arch),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    all.extend(labels.clone());
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(all),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!taints.is_empty()).then(|| taints.to_vec()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The kubelet's events for a status post over `old` (upstream's `nodestatus` setters): a
/// pressure condition that is new or leaves its pressure (`NodeHasSufficientMemory`,
/// `NodeHasNoDiskPressure`, `NodeHasSufficientPID`), and `NodeReady` when Ready was not True.
/// `starting`: the first post of this run, whose setters upstream runs on a fresh Node object
/// (`initialNode`), so every pressure condition counts as new.
pub fn condition_events(old: &Node, starting: bool) -> Vec<&'static str> {
    let status_of = |type_: &str| {
        old.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
            .map(|c| c.status.as_str())
    };
    let mut events: Vec<&'static str> = [
        ("MemoryPressure", "NodeHasSufficientMemory"),
        ("DiskPressure", "NodeHasNoDiskPressure"),
        ("PIDPressure", "NodeHasSufficientPID"),
    ]
    .into_iter()
    .filter(|(type_, _)| starting || status_of(type_) != Some("False"))
    .map(|(_, reason)| reason)
    .collect();
    if status_of("Ready") != Some("True") {
        events.push("NodeReady");
    }
    events
}

/// Posts the node's status over `old` and records the events of the conditions it changes.
async fn post_status_recorded(shared: &Shared, old: &Node, starting: bool) -> Result<(), Error> {
    post_status(shared, old).await?;
    let name = &shared.opts.node_name;
    for reason in condition_events(old, starting) {
        shared.recorder.node_event(
            name,
            super::events::NORMAL,
            reason,
            format!("Node {name} status is now: {reason}"),
        );
    }
    Ok(())
}

/// Registers the node (or finds it registered) and posts its first status. Retries until the
/// API server answers.
pub(crate) async fn register(shared: &Shared) -> Result<Node, Error> {
    shared.recorder.node_event(
        &shared.opts.node_name,
        super::events::NORMAL,
        "Starting",
        "Starting kubelet.".into(),
    );
    let api: Api<Node> = Api::all(shared.client.clone());
    let opts = &shared.opts;
    let node = node_object(
        &opts.node_name,
        &shared.profile.architecture,
        &opts.labels,
        &opts.taints,
    );
    let mut delay = Duration::from_millis(200);
    loop {
        let created = match api.create(&PostParams::default(), &node).await {
            Ok(n) => Ok(n),
            // Registered before (an earlier run): keep it as it is, as the kubelet does.
            Err(e) if is_status(&e, 409) => api.get(&opts.node_name).await,
            Err(e) => Err(e),
        };
        match created {
            Ok(n) => {
                post_status_recorded(shared, &n, true).await?;
                return Ok(n);
            }
            Err(kube::Error::Api(s)) if s.code < 500 && s.code != 429 => {
                return Err(Error::Kube(kube::Error::Api(s)));
            }
            Err(e) => {
                warn!(error = %e, "node registration failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Posts the node's status (conditions patched by type: others' conditions survive).
pub(crate) async fn post_status(shared: &Shared, node: &Node) -> Result<(), Error> {
    let api: Api<Node> = Api::all(shared.client.clone());
    let body = node_status_patch(node, &shared.profile, shared.node_ip, Timestamp::now());
    api.patch_status(
        &shared.opts.node_name,
        &PatchParams::default(),
        &Patch::Strategic(body),
    )
    .await?;
    Ok(())
}

/// Renews (creating when missing) the node's lease.
pub(crate) async fn renew_lease(shared: &Shared, node_uid: &str) -> Result<(), kube::Error> {
    let opts = &shared.opts;
    let api: Api<Lease> = Api::namespaced(shared.client.clone(), &opts.lease_namespace);
    let lease = node_lease(
        &opts.node_name,
        node_uid,
        &opts.lease_namespace,
        opts.lease_duration_seconds,
        Timestamp::now(),
    );
    let patch = json!({"spec": lease["spec"].clone()});
    match api
        .patch(
            &opts.node_name,
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => {
            let obj: Lease = serde_json::from_value(lease).map_err(kube::Error::SerdeError)?;
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => Ok(()),
                Err(e) if is_status(&e, 409) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Keeps the lease and the node status fresh.
pub(crate) async fn heartbeats(
    shared: std::sync::Arc<Shared>,
    mut node: Node,
) -> Result<(), Error> {
    let api: Api<Node> = Api::all(shared.client.clone());
    let mut lease_tick = tokio::time::interval(shared.opts.lease_interval);
    let mut status_tick = tokio::time::interval(shared.opts.node_status_interval);
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = lease_tick.tick() => {
                let Some(uid) = node.metadata.uid.clone() else { continue };
                if let Err(e) = renew_lease(&shared, &uid).await {
                    debug!(error = %e, "lease renewal failed");
                }
            }
            _ = status_tick.tick() => {
                match api.get(&shared.opts.node_name).await {
                    Ok(n) => {
                        node = n;
                        if let Err(e) = post_status_recorded(&shared, &node, false).await {
                            debug!(error = %e, "node status update failed");
                        }
                    }
                    // As the kubelet, a deleted node is not registered again until the agent
                    // restarts: whoever deleted it meant it to go (its pods are cleaned up).
                    Err(e) if is_status(&e, 404) => {
                        if node.metadata.uid.take().is_some() {
                            warn!(node = %shared.opts.node_name, "node was deleted; restart the agent to register it again");
                        }
                    }
                    Err(e) => debug!(error = %e, "node status read failed"),
                }
            }
        }
    }
}

/// Parses `k=v,k2=v2`.
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("label {p:?} is not key=value"))?;
            let (k, v) = (k.trim(), v.trim());
            let key_errors = pernode_core::names::is_qualified_name(k);
            if !key_errors.is_empty() {
                return Err(format!("label key {k:?}: {}", key_errors.join("; ")));
            }
            let value_errors = pernode_core::names::is_valid_label_value(v);
            if !value_errors.is_empty() {
                return Err(format!("label value {v:?}: {}", value_errors.join("; ")));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Parses `k=v:Effect,k2:Effect` (as `kubectl taint` and `--register-with-taints`).
pub fn parse_taints(s: &str) -> Result<Vec<Taint>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (kv, effect) = p
                .trim()
                .rsplit_once(':')
                .ok_or_else(|| format!("taint {p:?} is not key[=value]:Effect"))?;
            if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                return Err(format!(
                    "taint {p:?}: effect must be NoSchedule, PreferNoSchedule or NoExecute"
                ));
            }
            let (key, value) = match kv.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (kv, None),
            };
            if key.is_empty() {
                return Err(format!("taint {p:?} has no key"));
            }
            Ok(Taint {
                key: key.to_string(),
                value,
                effect: effect.to_string(),
                time_added: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_events_are_the_setters_transitions() {
        let node = |conditions: &[(&str, &str)]| -> Node {
            serde_json::from_value(json!({"metadata": {"name": "n"}, "status": {"conditions":
                conditions.iter().map(|(t, s)| json!({"type": t, "status": s})).collect::<Vec<_>>()
            }}))
            .expect("node literal")
        };
        let all = [
            "NodeHasSufficientMemory",
            "NodeHasNoDiskPressure",
            "NodeHasSufficientPID",
            "NodeReady",
        ];
        // A new node: every condition is new.
        assert_eq!(condition_events(&node(&[]), true), all);
        let healthy = node(&[
            ("MemoryPressure", "False"),
            ("DiskPressure", "False"),
            ("PIDPressure", "False"),
            ("Ready", "True"),
        ]);
        // Restarted on a healthy node: the pressure conditions again (initialNode), not Ready.
        assert_eq!(condition_events(&healthy, true), &all[..3]);
        assert!(condition_events(&healthy, false).is_empty());
        // Back after the node controller marked it Unknown.
        let unknown = node(&[
            ("MemoryPressure", "Unknown"),
            ("DiskPressure", "Unknown"),
            ("PIDPressure", "Unknown"),
            ("Ready", "Unknown"),
        ]);
        assert_eq!(condition_events(&unknown, false), all);
    }

    #[test]
    fn labels_and_taints_parse_like_the_kubelet_flags() {
        let l = parse_labels("disk=ssd, zone=a").expect("labels");
        assert_eq!(l.get("disk").map(String::as_str), Some("ssd"));
        assert_eq!(l.len(), 2);
        assert!(parse_labels("novalue").is_err());
        assert!(parse_labels("bad key=x").is_err());
        let t = parse_taints("dedicated=gpu:NoSchedule,maint:NoExecute").expect("taints");
        assert_eq!(t[0].key, "dedicated");
        assert_eq!(t[0].value.as_deref(), Some("gpu"));
        assert_eq!(t[1].value, None);
        assert_eq!(t[1].effect, "NoExecute");
        assert!(parse_taints("x=y:Sometimes").is_err());
        assert!(parse_taints("x=y").is_err());
        let n = node_object("n1", "amd64", &l, &t);
        let labels = n.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("kubernetes.io/hostname").map(String::as_str),
            Some("n1")
        );
        assert_eq!(labels.get("disk").map(String::as_str), Some("ssd"));
        assert_eq!(n.spec.and_then(|s| s.taints).map(|t| t.len()), Some(2));
    }
}
