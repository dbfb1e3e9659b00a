//! Pod readiness and availability, as upstream's `podutil.IsPodReady` / `IsPodAvailable`.
//! These drive DaemonSet status (numberReady, numberAvailable) and rolling updates.

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The pod's `Ready` condition, if any.
pub fn pod_ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// Ready: the `Ready` condition has status `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod_ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// Available at `now`: Ready, and either `min_ready_seconds` is 0 or the Ready condition's
/// lastTransitionTime is set and lastTransitionTime + minReadySeconds is strictly before `now`.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    pod_ready_condition(pod).is_some_and(|c| {
        ready_condition_available(
            c.status == "True",
            c.last_transition_time.as_ref().map(|t| t.0),
            min_ready_seconds,
            now,
        )
    })
}

/// [`is_pod_available`] on the parts of the Ready condition it reads (its status is `True`:
/// `ready`; its lastTransitionTime: `since`), for callers that keep only those.
pub fn ready_condition_available(
    ready: bool,
    since: Option<Timestamp>,
    min_ready_seconds: i32,
    now: Timestamp,
) -> bool {
    if !ready {
        return false;
    }
    if min_ready_seconds == 0 {
        return true;
    }
    let Some(since) = since else {
        return false;
    };
    since
        .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
        .is_ok_and(|ready_at| ready_at < now)
}

/// Terminal: phase `Succeeded` or `Failed`.
pub fn is_pod_terminal(pod: &Pod) -> bool {
    is_terminal_phase(pod.status.as_ref().and_then(|s| s.phase.as_deref()))
}

/// [`is_pod_terminal`] on the phase alone.
pub fn is_terminal_phase(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded" | "Failed"))
}

/// Terminating: `metadata.deletionTimestamp` is set.
pub fn is_pod_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::serde_json::{self, json};

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    fn ready_pod(status: &str, ltt: Option<&str>) -> Pod {
        let mut cond = json!({"type": "Ready", "status": status});
        if let Some(t) = ltt {
            cond["lastTransitionTime"] = json!(t);
        }
        pod(
            json!({"metadata": {"name": "p"}, "status": {"phase": "Running", "conditions": [
                {"type": "PodScheduled", "status": "True"}, cond
            ]}}),
        )
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn readiness() {
        assert!(is_pod_ready(&ready_pod("True", None)));
        assert!(!is_pod_ready(&ready_pod("False", None)));
        assert!(!is_pod_ready(&ready_pod("Unknown", None)));
        assert!(!is_pod_ready(&pod(json!({"metadata": {"name": "p"}}))));
        assert_eq!(
            pod_ready_condition(&ready_pod("False", None)).map(|c| c.status.as_str()),
            Some("False")
        );
    }

    #[test]
    fn availability() {
        let now = ts("2024-01-01T00:00:10Z");
        let p = ready_pod("True", Some("2024-01-01T00:00:00Z"));
        assert!(is_pod_available(&p, 0, now));
        assert!(is_pod_available(&p, 9, now));
        assert!(!is_pod_available(&p, 10, now), "strictly before");
        assert!(!is_pod_available(&p, 11, now));
        assert!(is_pod_available(&ready_pod("True", None), 0, now));
        assert!(!is_pod_available(&ready_pod("True", None), 5, now));
        assert!(!is_pod_available(
            &ready_pod("False", Some("2020-01-01T00:00:00Z")),
            0,
            now
        ));
    }

    #[test]
    fn terminal() {
        for (phase, want) in [
            ("Succeeded", true),
            ("Failed", true),
            ("Running", false),
            ("Pending", false),
            ("Unknown", false),
        ] {
            let p = pod(json!({"metadata": {"name": "p"}, "status": {"phase": phase}}));
            assert_eq!(is_pod_terminal(&p), want, "{phase}");
        }
        assert!(!is_pod_terminal(&pod(json!({"metadata": {"name": "p"}}))));
        let p =
            pod(json!({"metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"}}));
        assert!(is_pod_terminating(&p));
    }
}
