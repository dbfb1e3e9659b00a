//! Node health, as upstream's `tryUpdateNodeHealth` and `handleDisruption`: when did we last hear
//! from a node (its Lease renewals and its Ready condition's heartbeats), what its conditions
//! become once it is silent for longer than the grace period, and how healthy each zone is.
//!
//! Heartbeats are compared by *change*, and the moment a change is observed is what counts
//! (not the time the kubelet wrote): clocks of nodes and control plane need not agree, and a
//! controller that restarts gives every node a full grace period instead of judging it by
//! stale timestamps.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeCondition};

use crate::trim::{ConditionView, ConditionsView, NodeView};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Reason set on conditions of a node that went silent.
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
/// Message set on conditions of a node that went silent.
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
/// Reason set on conditions a node never reported.
pub const REASON_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
/// Message set on conditions a node never reported.
pub const MESSAGE_NEVER_UPDATED: &str = "Kubelet never posted node status.";
/// Nodes with this label are left out of the zone health counts.
pub const LABEL_EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

/// The conditions turned Unknown when a node goes silent; NetworkUnavailable is left alone as
/// upstream does (it belongs to the network plugin, not the kubelet).
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller remembers about one node's heartbeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeHealth {
    /// When we last observed a sign of life (or the node's creation, if it never reported).
    pub probe: Timestamp,
    /// Ready condition's lastHeartbeatTime as last seen; `None` with `has_ready` false when the
    /// node has no Ready condition.
    heartbeat: Option<Timestamp>,
    /// Whether the node had a Ready condition when last seen.
    pub has_ready: bool,
    /// Lease renewTime as last seen, and whether a lease was seen at all.
    lease_renew: Option<Timestamp>,
    lease_seen: bool,
    /// Ready status as last judged by the controller (for transition events).
    pub last_ready: Option<String>,
}

/// The node's condition of this type.
pub fn condition<'a>(node: &'a impl ConditionsView, type_: &str) -> Option<ConditionView<'a>> {
    node.conditions().find(|c| c.type_ == type_)
}

/// The status of the node's Ready condition, if it has one.
pub fn ready_status(node: &impl ConditionsView) -> Option<&str> {
    condition(node, "Ready").map(|c| c.status)
}

fn heartbeat_of(node: &impl ConditionsView) -> Option<Timestamp> {
    condition(node, "Ready").and_then(|c| c.heartbeat)
}

impl NodeHealth {
    /// First sight of a node. A node that never reported counts from its creation time;
    /// otherwise from now.
    pub fn first_seen(node: &impl ConditionsView, now: Timestamp) -> NodeHealth {
        let has_ready = condition(node, "Ready").is_some();
        let probe = if has_ready {
            now
        } else {
            node.created().map(|t| t.min(now)).unwrap_or(now)
        };
        NodeHealth {
            probe,
            heartbeat: heartbeat_of(node),
            has_ready,
            lease_renew: None,
            lease_seen: false,
            last_ready: None,
        }
    }

    /// A newer version of the node: a Ready heartbeat that changed (or a Ready condition
    /// that appeared or vanished) is a sign of life.
    pub fn observe_node(&mut self, node: &impl ConditionsView, now: Timestamp) {
        let has_ready = condition(node, "Ready").is_some();
        let heartbeat = heartbeat_of(node);
        match (self.has_ready, has_ready) {
            (false, false) => {}
            (true, true) if self.heartbeat == heartbeat => {}
            _ => self.probe = now,
        }
        self.has_ready = has_ready;
        self.heartbeat = heartbeat;
    }

    /// The node's Lease: the first one seen, or a later renewTime, is a sign of life.
    pub fn observe_lease(&mut self, renew: Option<Timestamp>, now: Timestamp) {
        let newer = match (self.lease_renew, renew) {
            (Some(saved), Some(seen)) => seen > saved,
            (None, Some(_)) => true,
            _ => false,
        };
        if !self.lease_seen || newer {
            self.probe = now;
        }
        self.lease_seen = true;
        if newer || self.lease_renew.is_none() {
            self.lease_renew = renew;
        }
    }

    /// Whether the node has been silent for longer than its grace period: `startup_grace` for
    /// a node that never posted a Ready condition, `grace` otherwise.
    pub fn is_silent(&self, grace: Duration, startup_grace: Duration, now: Timestamp) -> bool {
        let period = if self.has_ready { grace } else { startup_grace };
        let period = SignedDuration::try_from(period).unwrap_or(SignedDuration::MAX);
        match self.probe.checked_add(period) {
            Ok(deadline) => now > deadline,
            Err(_) => false,
        }
    }

    /// When the node turns silent if nothing more is heard from it.
    pub fn silent_after(
        &self,
        grace: Duration,
        startup_grace: Duration,
        now: Timestamp,
    ) -> Duration {
        let period = if self.has_ready { grace } else { startup_grace };
        let elapsed = now.duration_since(self.probe);
        let left = SignedDuration::try_from(period)
            .unwrap_or(SignedDuration::MAX)
            .saturating_sub(elapsed);
        Duration::try_from(left).unwrap_or(Duration::ZERO)
    }
}

/// Whether a silent node's conditions are to be turned Unknown: unless its Ready condition
/// already is (upstream writes only when the Ready condition changes).
pub fn marks_unknown(node: &impl ConditionsView) -> bool {
    ready_status(node) != Some("Unknown")
}

/// The conditions of a silent node: Ready, MemoryPressure, DiskPressure and PIDPressure set to
/// Unknown (`NodeStatusUnknown`, "Kubelet stopped posting node status.") with a new
/// lastTransitionTime, and added as `NodeStatusNeverUpdated` where missing; heartbeats are left
/// as they are; other conditions are kept. `None` when Ready is already Unknown (upstream
/// writes only when the Ready condition changes).
pub fn silent_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    if !marks_unknown(node) {
        return None;
    }
    let mut conditions: Vec<NodeCondition> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for type_ in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != "Unknown" {
                    c.status = "Unknown".to_string();
                    c.reason = Some(REASON_UNKNOWN.to_string());
                    c.message = Some(MESSAGE_UNKNOWN.to_string());
                    c.last_transition_time = Some(Time(now));
                }
            }
            None => conditions.push(NodeCondition {
                type_: type_.to_string(),
                status: "Unknown".to_string(),
                reason: Some(REASON_NEVER_UPDATED.to_string()),
                message: Some(MESSAGE_NEVER_UPDATED.to_string()),
                last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                last_transition_time: Some(Time(now)),
            }),
        }
    }
    Some(conditions)
}

/// A zone's health, as upstream's ZoneState.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    /// Not judged yet.
    Initial,
    /// Evict at the normal rate.
    Normal,
    /// Many nodes are down: slow down (or stop, in small clusters).
    PartialDisruption,
    /// Every node is down.
    FullDisruption,
}

/// The zone key of a node, as `nodetopology.GetZoneKey`: region and zone labels (current or
/// legacy), empty when it has neither.
pub fn zone_key(node: &impl NodeView) -> String {
    let get = |a: &str, b: &str| node.label(a).or_else(|| node.label(b)).unwrap_or("");
    let region = get(
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/region",
    );
    let zone = get(
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    );
    if region.is_empty() && zone.is_empty() {
        return String::new();
    }
    format!("{region}:\u{0}:{zone}")
}

/// Whether the node counts in its zone's health.
pub fn counts_for_disruption(node: &impl NodeView) -> bool {
    node.label(LABEL_EXCLUDE_DISRUPTION).is_none()
}

/// Upstream's ComputeZoneState: Full when no node is ready, Partial when more than two are not
/// ready and they are at least `unhealthy_threshold` of the zone.
pub fn compute_zone_state(ready: usize, not_ready: usize, unhealthy_threshold: f32) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f32 / (ready + not_ready) as f32 >= unhealthy_threshold
    {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// A token bucket with burst 1, as client-go's flowcontrol limiter that paces NoExecute
/// tainting per zone; qps 0 never accepts.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    qps: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(qps: f64) -> TokenBucket {
        TokenBucket::new_at(qps, Instant::now())
    }

    fn new_at(qps: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            qps,
            tokens: 1.0,
            last: now,
        }
    }

    /// Take a token if one is there.
    pub fn try_accept(&mut self) -> bool {
        self.try_accept_at(Instant::now())
    }

    fn try_accept_at(&mut self, now: Instant) -> bool {
        if self.qps <= 0.0 {
            return false;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.qps).min(1.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Upstream's SwapLimiter: a new rate; if the old bucket was empty, so is the new one.
    pub fn swap(&mut self, qps: f64) {
        self.swap_at(qps, Instant::now());
    }

    fn swap_at(&mut self, qps: f64, now: Instant) {
        if (qps - self.qps).abs() < f64::EPSILON {
            return;
        }
        let was_waiting = !self.try_accept_at(now);
        let mut next = TokenBucket::new_at(qps, now);
        if was_waiting {
            next.try_accept_at(now);
        }
        *self = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trim::{LifecycleNode, kept_as};
    use serde_json::json;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("ts")
    }

    fn node(v: serde_json::Value) -> Node {
        let node: Node = serde_json::from_value(v).expect("node literal");
        // The controller's cached record of it is judged alike.
        let record = kept_as::<LifecycleNode>(&node);
        assert_eq!(ready_status(&record), ready_status(&node));
        assert_eq!(marks_unknown(&record), marks_unknown(&node));
        assert_eq!(zone_key(&record), zone_key(&node));
        assert_eq!(counts_for_disruption(&record), counts_for_disruption(&node));
        let mut from_record = NodeHealth::first_seen(&record, ts(5));
        let mut from_node = NodeHealth::first_seen(&node, ts(5));
        assert_eq!(from_record, from_node);
        from_record.observe_node(&record, ts(6));
        from_node.observe_node(&node, ts(6));
        assert_eq!(from_record, from_node);
        node
    }

    fn ready_node(heartbeat: i64) -> Node {
        node(json!({
            "metadata": {"name": "n", "creationTimestamp": "1970-01-01T00:00:10Z"},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "lastHeartbeatTime": ts(heartbeat).to_string(),
                 "lastTransitionTime": "1970-01-01T00:00:10Z"},
                {"type": "MemoryPressure", "status": "False",
                 "lastHeartbeatTime": ts(heartbeat).to_string()},
                {"type": "NetworkUnavailable", "status": "False"},
            ]},
        }))
    }

    const GRACE: Duration = Duration::from_secs(40);

    #[test]
    fn heartbeat_changes_keep_a_node_alive() {
        let mut h = NodeHealth::first_seen(&ready_node(100), ts(1000));
        assert_eq!(
            h.probe,
            ts(1000),
            "first sight counts from now, not from old heartbeats"
        );
        assert!(!h.is_silent(GRACE, GRACE, ts(1040)));
        assert!(h.is_silent(GRACE, GRACE, ts(1041)));
        // Same heartbeat seen again: no sign of life.
        h.observe_node(&ready_node(100), ts(1030));
        assert_eq!(h.probe, ts(1000));
        // A new heartbeat: alive as of its observation.
        h.observe_node(&ready_node(1035), ts(1036));
        assert_eq!(h.probe, ts(1036));
        assert!(!h.is_silent(GRACE, GRACE, ts(1070)));
        assert_eq!(
            h.silent_after(GRACE, GRACE, ts(1070)),
            Duration::from_secs(6)
        );
    }

    #[test]
    fn lease_renewals_keep_a_node_alive() {
        let mut h = NodeHealth::first_seen(&ready_node(100), ts(1000));
        h.observe_lease(Some(ts(900)), ts(1010));
        assert_eq!(h.probe, ts(1010), "the first lease seen counts");
        h.observe_lease(Some(ts(900)), ts(1020));
        assert_eq!(h.probe, ts(1010), "an unchanged lease does not");
        h.observe_lease(Some(ts(899)), ts(1025));
        assert_eq!(h.probe, ts(1010), "nor does one going back in time");
        h.observe_lease(Some(ts(1030)), ts(1031));
        assert_eq!(h.probe, ts(1031));
        assert!(h.is_silent(GRACE, GRACE, ts(1072)));
    }

    #[test]
    fn a_node_that_never_reported_counts_from_its_creation() {
        let n =
            node(json!({"metadata": {"name": "n", "creationTimestamp": "1970-01-01T00:16:40Z"}}));
        let h = NodeHealth::first_seen(&n, ts(1030));
        assert_eq!(h.probe, ts(1000));
        assert!(!h.has_ready);
        let startup = Duration::from_secs(60);
        assert!(
            !h.is_silent(GRACE, startup, ts(1050)),
            "startup grace applies"
        );
        assert!(h.is_silent(GRACE, startup, ts(1061)));
        // It reports: now it counts from that observation.
        let mut h2 = h.clone();
        h2.observe_node(&ready_node(1070), ts(1070));
        assert_eq!(h2.probe, ts(1070));
        assert!(h2.has_ready);
    }

    #[test]
    fn silent_nodes_get_unknown_conditions() {
        let n = ready_node(100);
        let cs = silent_conditions(&n, ts(2000)).expect("changes");
        let get = |t: &str| cs.iter().find(|c| c.type_ == t).expect(t).clone();
        let ready = get("Ready");
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some(REASON_UNKNOWN));
        assert_eq!(ready.message.as_deref(), Some(MESSAGE_UNKNOWN));
        assert_eq!(ready.last_transition_time, Some(Time(ts(2000))));
        assert_eq!(
            ready.last_heartbeat_time,
            Some(Time(ts(100))),
            "heartbeat kept"
        );
        assert_eq!(get("MemoryPressure").status, "Unknown");
        let disk = get("DiskPressure");
        assert_eq!(disk.status, "Unknown");
        assert_eq!(disk.reason.as_deref(), Some(REASON_NEVER_UPDATED));
        assert_eq!(get("PIDPressure").status, "Unknown");
        assert_eq!(
            get("NetworkUnavailable").status,
            "False",
            "not the kubelet's"
        );
        // Once Ready is Unknown there is nothing more to write.
        let mut n2 = n.clone();
        if let Some(s) = n2.status.as_mut() {
            s.conditions = Some(cs);
        }
        assert_eq!(silent_conditions(&n2, ts(3000)), None);
    }

    #[test]
    fn zone_states() {
        assert_eq!(compute_zone_state(0, 1, 0.55), ZoneState::FullDisruption);
        assert_eq!(compute_zone_state(2, 1, 0.55), ZoneState::Normal);
        assert_eq!(
            compute_zone_state(2, 2, 0.55),
            ZoneState::Normal,
            "two down is normal"
        );
        assert_eq!(compute_zone_state(2, 3, 0.55), ZoneState::PartialDisruption);
        assert_eq!(compute_zone_state(10, 3, 0.55), ZoneState::Normal);
        assert_eq!(compute_zone_state(0, 0, 0.55), ZoneState::Normal);
        let n = node(json!({"metadata": {"name": "n", "labels": {
            "topology.kubernetes.io/region": "r", "topology.kubernetes.io/zone": "z"}}}));
        assert_eq!(zone_key(&n), "r:\u{0}:z");
        assert_eq!(zone_key(&ready_node(1)), "");
    }

    #[test]
    fn token_bucket_paces_and_zero_stops() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(0.1, t0);
        assert!(b.try_accept_at(t0), "starts full");
        assert!(!b.try_accept_at(t0 + Duration::from_secs(5)));
        assert!(b.try_accept_at(t0 + Duration::from_secs(10)));
        b.swap_at(0.0, t0 + Duration::from_secs(11));
        assert!(!b.try_accept_at(t0 + Duration::from_secs(100)));
        // Back to a rate while waiting: the new bucket starts empty.
        let mut c = TokenBucket::new_at(0.1, t0);
        assert!(c.try_accept_at(t0));
        c.swap_at(1.0, t0);
        assert!(!c.try_accept_at(t0));
        assert!(c.try_accept_at(t0 + Duration::from_secs(1)));
    }
}
