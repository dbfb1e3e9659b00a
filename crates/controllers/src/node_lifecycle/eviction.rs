//! Taint eviction decisions, as upstream's `pkg/controller/tainteviction` (`processPodOnNode`,
//! `GetMatchingTolerations`, `getMinTolerationTime`): given a node's NoExecute taints and a
//! pod's tolerations, when (if ever) the pod must go.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Taint, Toleration};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use pernode_core::scheduling::toleration_tolerates_taint;

/// What to do with one pod on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// No eviction (no NoExecute taint, or every one tolerated forever): cancel any pending one.
    Cancel,
    /// Delete the pod at once: some NoExecute taint is not tolerated.
    EvictNow,
    /// Delete the pod `after` the timer start unless the taints go or the pod gains
    /// tolerations.
    EvictAfter {
        /// When the timer started: the earliest timeAdded of the taints (never before the pod
        /// existed, never in the future), else the moment the taints were observed.
        start: Timestamp,
        /// The smallest tolerationSeconds among the tolerations used.
        after: Duration,
    },
}

/// For each taint, the first toleration that tolerates it; `None` if some taint is not
/// tolerated at all.
pub fn matching_tolerations<'a>(
    taints: &[Taint],
    tolerations: &'a [Toleration],
) -> Option<Vec<&'a Toleration>> {
    taints
        .iter()
        .map(|t| {
            tolerations
                .iter()
                .find(|tol| toleration_tolerates_taint(tol, t))
        })
        .collect()
}

/// The smallest tolerationSeconds among `used` (≤ 0 counts as 0); `None` when none of them has
/// tolerationSeconds (tolerated forever). No tolerations used at all means no taints: zero.
pub fn min_toleration(used: &[&Toleration]) -> Option<Duration> {
    if used.is_empty() {
        return Some(Duration::ZERO);
    }
    used.iter()
        .filter_map(|t| t.toleration_seconds)
        .map(|s| Duration::from_secs(s.max(0).unsigned_abs()))
        .min()
}

/// The plan for a pod with `tolerations` on a node with `taints` (its NoExecute taints),
/// observed at `now`; `pod_created` bounds the timer start from below.
pub fn plan(
    taints: &[Taint],
    tolerations: &[Toleration],
    pod_created: Option<Timestamp>,
    now: Timestamp,
) -> Plan {
    if taints.is_empty() {
        return Plan::Cancel;
    }
    let Some(used) = matching_tolerations(taints, tolerations) else {
        return Plan::EvictNow;
    };
    let Some(after) = min_toleration(&used) else {
        return Plan::Cancel;
    };
    if after.is_zero() {
        return Plan::EvictNow;
    }
    let mut start = taints
        .iter()
        .filter_map(|t| t.time_added.as_ref().map(|t| t.0))
        .min()
        .unwrap_or(now)
        .min(now);
    if let Some(created) = pod_created {
        start = start.max(created.min(now));
    }
    Plan::EvictAfter { start, after }
}

/// `start + after`, saturating.
pub fn fire_time(start: Timestamp, after: Duration) -> Timestamp {
    let after = SignedDuration::try_from(after).unwrap_or(SignedDuration::MAX);
    start.checked_add(after).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).expect("ts")
    }

    fn taint(key: &str, added: Option<i64>) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            value: None,
            time_added: added.map(|s| Time(ts(s))),
        }
    }

    fn tols(v: serde_json::Value) -> Vec<Toleration> {
        serde_json::from_value(v).expect("tolerations")
    }

    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
    const NOT_READY: &str = "node.kubernetes.io/not-ready";

    #[test]
    fn untolerated_taints_evict_at_once() {
        let t = [taint(UNREACHABLE, None), taint("maintenance", None)];
        let p = tols(json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]));
        assert_eq!(plan(&t, &p, None, ts(100)), Plan::EvictNow);
        assert_eq!(plan(&t, &[], None, ts(100)), Plan::EvictNow);
    }

    #[test]
    fn no_taints_or_forever_tolerations_cancel() {
        assert_eq!(plan(&[], &[], None, ts(1)), Plan::Cancel);
        // Daemon pods: not-ready and unreachable tolerated without tolerationSeconds.
        let daemon = tols(json!([
            {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"},
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
        ]));
        assert_eq!(
            plan(&[taint(UNREACHABLE, Some(1))], &daemon, None, ts(100)),
            Plan::Cancel
        );
        // An empty-key Exists toleration tolerates everything forever.
        let all = tols(json!([{"operator": "Exists"}]));
        assert_eq!(plan(&[taint("x", None)], &all, None, ts(1)), Plan::Cancel);
    }

    #[test]
    fn smallest_toleration_seconds_of_the_used_tolerations_wins() {
        let t = [taint(UNREACHABLE, None), taint("maintenance", None)];
        let p = tols(json!([
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "maintenance", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
            // Not used (a later match for a taint already tolerated): ignored.
            {"operator": "Exists", "tolerationSeconds": 1},
        ]));
        assert_eq!(
            plan(&t, &p, None, ts(100)),
            Plan::EvictAfter {
                start: ts(100),
                after: Duration::from_secs(60)
            }
        );
        // A used toleration without seconds does not make the others infinite.
        let p2 = tols(json!([
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
            {"key": "maintenance", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
        ]));
        assert_eq!(
            plan(&t, &p2, None, ts(100)),
            Plan::EvictAfter {
                start: ts(100),
                after: Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn zero_or_negative_toleration_seconds_mean_now() {
        let t = [taint(UNREACHABLE, None)];
        for secs in [0, -5] {
            let p = tols(json!([{"key": UNREACHABLE, "operator": "Exists",
                                 "effect": "NoExecute", "tolerationSeconds": secs}]));
            assert_eq!(plan(&t, &p, None, ts(100)), Plan::EvictNow);
        }
    }

    #[test]
    fn timer_starts_at_time_added_bounded_by_pod_creation_and_now() {
        let p = tols(json!([{"key": UNREACHABLE, "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 30}]));
        let after = Duration::from_secs(30);
        assert_eq!(
            plan(&[taint(UNREACHABLE, Some(80))], &p, None, ts(100)),
            Plan::EvictAfter {
                start: ts(80),
                after
            }
        );
        assert_eq!(
            plan(&[taint(UNREACHABLE, Some(80))], &p, Some(ts(90)), ts(100)),
            Plan::EvictAfter {
                start: ts(90),
                after
            },
            "a pod created after the taint gets its full toleration"
        );
        assert_eq!(
            plan(&[taint(UNREACHABLE, Some(500))], &p, None, ts(100)),
            Plan::EvictAfter {
                start: ts(100),
                after
            },
            "a timeAdded in the future counts as now"
        );
        assert_eq!(fire_time(ts(80), after), ts(110));
    }
}
