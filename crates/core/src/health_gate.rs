//! What the health gate (`pernode.io/max-failed-nodes`, see [`crate::rollout`]) counts as a
//! node that failed with an updated pod, judged from a few facts of the pod and its node so the
//! DaemonSet controller (from its compact cache) and `kubectl pernode why` (from full objects)
//! judge alike:
//!
//! - a container waiting with one of the reasons of [`PodFailure::of_waiting_reason`]
//!   (CrashLoopBackOff, ErrImagePull, ImagePullBackOff, CreateContainerConfigError);
//! - the pod not Ready `pernode.io/progress-deadline-seconds` after its creation (and its Ready
//!   condition unchanged since before then: a pod that was Ready in time and later is not, is
//!   not counted here);
//! - its node gone NotReady after the pod was created, within the progress deadline (a node
//!   that fails long after a rollout is not the rollout's doing). A node NotReady since before
//!   (or without a Ready condition at all, as a node that never reported) is skipped: its pod
//!   could not have started, and the rollout is not to blame.
//!
//! A container's waiting reason counts whenever it shows: a revision whose pods crash-loop an
//! hour in is as bad as one that never starts.
//!
//! ```
//! use std::time::Duration;
//! use pernode_core::health_gate::{judge, NodeReadiness, PodFacts, PodFailure, Verdict};
//! use k8s_openapi::jiff::Timestamp;
//! let t = |s| Timestamp::from_second(s).unwrap();
//! let pod = PodFacts {
//!     waiting: PodFailure::of_waiting_reason("ImagePullBackOff"),
//!     ready: false,
//!     ready_changed: None,
//!     created: Some(t(100)),
//! };
//! let node = Some(NodeReadiness { ready: true, since: Some(t(0)) });
//! let deadline = Duration::from_secs(600);
//! assert_eq!(judge(pod, node, deadline, t(110)), Verdict::Failed(PodFailure::ImagePullBackOff));
//! // Its node NotReady since before it got the pod: not the revision's fault.
//! let down = Some(NodeReadiness { ready: false, since: Some(t(50)) });
//! assert_eq!(judge(pod, down, deadline, t(110)), Verdict::Skipped);
//! ```

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

/// Why a node counts as failed. One byte: the controller keeps the waiting reasons per pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PodFailure {
    /// A container restarts over and over.
    CrashLoopBackOff,
    /// A container's image could not be pulled.
    ErrImagePull,
    /// ... and the kubelet backs off pulling it.
    ImagePullBackOff,
    /// A container's configuration (a ConfigMap or Secret it reads) is missing.
    CreateContainerConfigError,
    /// The pod was not Ready within the progress deadline.
    NotReadyInTime,
    /// The node went NotReady after it got the pod.
    NodeNotReady,
}

impl PodFailure {
    /// The failure a container's `state.waiting.reason` stands for, if any.
    pub fn of_waiting_reason(reason: &str) -> Option<PodFailure> {
        Some(match reason {
            "CrashLoopBackOff" => PodFailure::CrashLoopBackOff,
            "ErrImagePull" => PodFailure::ErrImagePull,
            "ImagePullBackOff" => PodFailure::ImagePullBackOff,
            "CreateContainerConfigError" => PodFailure::CreateContainerConfigError,
            _ => return None,
        })
    }

    /// The reason as messages (and the fleet page) name it.
    pub fn as_str(self) -> &'static str {
        match self {
            PodFailure::CrashLoopBackOff => "CrashLoopBackOff",
            PodFailure::ErrImagePull => "ErrImagePull",
            PodFailure::ImagePullBackOff => "ImagePullBackOff",
            PodFailure::CreateContainerConfigError => "CreateContainerConfigError",
            PodFailure::NotReadyInTime => "not Ready within the progress deadline",
            PodFailure::NodeNotReady => "node NotReady",
        }
    }
}

/// What is judged of an updated pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodFacts {
    /// The failure one of its containers waits with, if any.
    pub waiting: Option<PodFailure>,
    /// Its Ready condition is True.
    pub ready: bool,
    /// Its Ready condition's `lastTransitionTime`.
    pub ready_changed: Option<Timestamp>,
    /// Its creation.
    pub created: Option<Timestamp>,
}

/// A node's Ready condition: its status is True, and since when it has that status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeReadiness {
    /// `status: "True"`.
    pub ready: bool,
    /// Its `lastTransitionTime`.
    pub since: Option<Timestamp>,
}

/// The verdict on one updated pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Ready, or not Ready yet within the deadline.
    Healthy,
    /// Not Ready yet: it fails at `deadline` unless it becomes Ready.
    Pending {
        /// When the progress deadline passes.
        deadline: Timestamp,
    },
    /// Counted by the gate.
    Failed(PodFailure),
    /// Its node was NotReady before it got the pod (or never reported): not counted.
    Skipped,
}

/// Judges an updated pod on a node whose Ready condition is `node` (`None`: none yet).
pub fn judge(
    pod: PodFacts,
    node: Option<NodeReadiness>,
    deadline: Duration,
    now: Timestamp,
) -> Verdict {
    let due = pod.created.and_then(|c| c.checked_add(deadline).ok());
    match node {
        None => return Verdict::Skipped,
        Some(n) if !n.ready => {
            // NotReady since it got the pod (the same second counts as before: the benefit of
            // the doubt goes to the revision), and within the deadline.
            let after = matches!((n.since, pod.created), (Some(s), Some(c)) if s > c);
            let in_time = matches!((n.since, due), (Some(s), Some(d)) if s <= d);
            return match (after, in_time) {
                (true, true) => Verdict::Failed(PodFailure::NodeNotReady),
                (true, false) => Verdict::Healthy,
                _ => Verdict::Skipped,
            };
        }
        Some(_) => {}
    }
    if let Some(f) = pod.waiting {
        return Verdict::Failed(f);
    }
    let Some(due) = due.filter(|_| !pod.ready) else {
        return Verdict::Healthy;
    };
    if now < due {
        Verdict::Pending { deadline: due }
    } else if pod.ready_changed.is_none_or(|t| t < due) {
        Verdict::Failed(PodFailure::NotReadyInTime)
    } else {
        // Ready in time, unready since: not a rollout failure by this rule.
        Verdict::Healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    const READY: Option<NodeReadiness> = Some(NodeReadiness {
        ready: true,
        since: None,
    });

    fn pod(waiting: Option<&str>, ready: bool) -> PodFacts {
        PodFacts {
            waiting: waiting.and_then(PodFailure::of_waiting_reason),
            ready,
            ready_changed: Some(t(101)),
            created: Some(t(100)),
        }
    }

    fn not_ready_since(s: i64) -> Option<NodeReadiness> {
        Some(NodeReadiness {
            ready: false,
            since: Some(t(s)),
        })
    }

    const DEADLINE: Duration = Duration::from_secs(60);

    #[test]
    fn waiting_reasons_fail_the_pod_others_do_not() {
        for r in [
            "CrashLoopBackOff",
            "ErrImagePull",
            "ImagePullBackOff",
            "CreateContainerConfigError",
        ] {
            let v = judge(pod(Some(r), false), READY, DEADLINE, t(101));
            assert_eq!(
                v,
                Verdict::Failed(PodFailure::of_waiting_reason(r).unwrap())
            );
            assert_eq!(PodFailure::of_waiting_reason(r).unwrap().as_str(), r);
        }
        assert_eq!(PodFailure::of_waiting_reason("ContainerCreating"), None);
        assert_eq!(
            judge(
                pod(Some("ContainerCreating"), false),
                READY,
                DEADLINE,
                t(101)
            ),
            Verdict::Pending { deadline: t(160) }
        );
        assert_eq!(
            judge(pod(None, true), READY, DEADLINE, t(1000)),
            Verdict::Healthy
        );
    }

    #[test]
    fn a_pod_not_ready_by_the_deadline_fails() {
        assert_eq!(
            judge(pod(None, false), READY, DEADLINE, t(159)),
            Verdict::Pending { deadline: t(160) }
        );
        assert_eq!(
            judge(pod(None, false), READY, DEADLINE, t(160)),
            Verdict::Failed(PodFailure::NotReadyInTime)
        );
        // Ready in time, unready later: not this rule's.
        let later = PodFacts {
            ready_changed: Some(t(300)),
            ..pod(None, false)
        };
        assert_eq!(judge(later, READY, DEADLINE, t(400)), Verdict::Healthy);
    }

    #[test]
    fn a_node_counts_only_if_it_went_not_ready_after_getting_the_pod() {
        assert_eq!(
            judge(pod(None, false), not_ready_since(150), DEADLINE, t(151)),
            Verdict::Failed(PodFailure::NodeNotReady)
        );
        // NotReady before, or at the same second: skipped, even with a failing container.
        for since in [50, 100] {
            assert_eq!(
                judge(
                    pod(Some("ErrImagePull"), false),
                    not_ready_since(since),
                    DEADLINE,
                    t(500)
                ),
                Verdict::Skipped
            );
        }
        // Long after the pod came: not the rollout's doing.
        assert_eq!(
            judge(pod(None, true), not_ready_since(1000), DEADLINE, t(1001)),
            Verdict::Healthy
        );
        // A node that never reported.
        assert_eq!(
            judge(pod(None, false), None, DEADLINE, t(500)),
            Verdict::Skipped
        );
    }
}
