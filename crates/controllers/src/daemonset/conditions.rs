//! Typed conditions in a DaemonSet's `status.conditions`. Upstream's DaemonSet controller
//! writes none (the field exists and stays empty); these follow Deployment's, so `kubectl wait
//! --for=condition=...` and `-o jsonpath` answer what a rollout is doing:
//!
//! - `Progressing`: `True`/`NewRevisionRollingOut` while pods are replaced, `True`/
//!   `RolloutComplete` once every desired node runs an available updated pod (or every node a
//!   partition releases does), `Unknown`/`RolloutPaused` while `pernode.io/paused` (as
//!   Deployment's `DeploymentPaused`), `False`/`ProgressDeadlineExceeded` once a rollout has
//!   gone `pernode.io/progress-deadline-seconds` (default 600) without progress, as
//!   Deployment's `ProgressDeadlineExceeded`, `False`/`HealthGateTripped` while the health gate
//!   stops the rollout (`super::health_gate`), naming the failed nodes and why.
//!   RollingUpdate only: OnDelete has no rollout.
//!   DaemonSetCondition has no `lastUpdateTime`, so Progressing's `lastTransitionTime` is when
//!   its message last changed: the last progress, which the deadline is counted from.
//! - `Available`: at least desired − maxUnavailable pods available (Deployment's
//!   `MinimumReplicasAvailable`).
//! - `NodesExcluded`: how many nodes the placement rules leave out, counted by rule
//!   ("3 nodes excluded: 2 by nodeSelector daemon=need, 1 by taint forbid=true:NoSchedule not
//!   tolerated"), so "why is DESIRED 0" has an answer.
//!
//! A condition's `lastTransitionTime` moves only when its status does. The exclusion summary
//! is computed with the placements (once per change of nodes or template), and the rest from
//! the counters the sync computes anyway, so a sync where nothing changed costs a comparison.

use std::collections::BTreeMap;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetCondition, DaemonSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use pernode_core::rollout::RolloutControls;

use super::status::Counts;
use super::update::{is_rolling_update, resolve_counts};
use super::waves::WaveStage;

/// The condition types written here.
pub const PROGRESSING: &str = "Progressing";
/// See the module doc.
pub const AVAILABLE: &str = "Available";
/// See the module doc.
pub const NODES_EXCLUDED: &str = "NodesExcluded";

/// Nodes left out of the desired set, counted by the rule that excludes them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExclusionSummary {
    /// How many nodes are excluded.
    pub total: usize,
    /// `(rule, nodes)`, most nodes first, then by rule.
    pub by_rule: Vec<(String, usize)>,
}

impl ExclusionSummary {
    /// Counts the rules (one per excluded node).
    pub fn of(rules: impl IntoIterator<Item = String>) -> ExclusionSummary {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for rule in rules {
            *counts.entry(rule).or_default() += 1;
        }
        let total = counts.values().sum();
        let mut by_rule: Vec<(String, usize)> = counts.into_iter().collect();
        by_rule.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ExclusionSummary { total, by_rule }
    }

    /// `3 nodes excluded: 2 by nodeSelector daemon=need, 1 by taint ... not tolerated`.
    pub fn message(&self) -> String {
        let nodes = |n: usize| if n == 1 { "node" } else { "nodes" };
        if self.total == 0 {
            return "0 nodes excluded".to_owned();
        }
        let parts: Vec<String> = self
            .by_rule
            .iter()
            .map(|(rule, n)| format!("{n} by {rule}"))
            .collect();
        format!(
            "{} {} excluded: {}",
            self.total,
            nodes(self.total),
            parts.join(", ")
        )
    }
}

/// What the conditions are computed from.
#[derive(Debug, Clone, Copy)]
pub struct RolloutFacts<'a> {
    /// The DaemonSet's name, for the messages.
    pub name: &'a str,
    /// The counters the status gets.
    pub counts: &'a Counts,
    /// Whether the strategy is RollingUpdate.
    pub rolling: bool,
    /// `pernode.io/paused`.
    pub paused: bool,
    /// Pods a partition keeps on the old revision.
    pub held: i32,
    /// maxUnavailable resolved against the desired count.
    pub max_unavailable: i32,
    /// The nodes placement leaves out.
    pub excluded: &'a ExclusionSummary,
    /// How long a rollout may go without progress.
    pub progress_deadline: Duration,
    /// The Progressing condition the status shows now.
    pub previous: Option<&'a DaemonSetCondition>,
    /// The time of this sync.
    pub now: Timestamp,
    /// Where the waves stand, if the DaemonSet has `pernode.io/rollout-waves`.
    pub waves: Option<&'a WaveStage>,
    /// What Progressing says while the health gate stops the rollout (`super::health_gate`).
    pub gate_stopped: Option<&'a str>,
}

/// Reasons of Progressing while a rollout runs.
const ROLLING_OUT: &str = "NewRevisionRollingOut";
/// Reason of Progressing while finished waves soak (no progress is expected meanwhile, so
/// the progress deadline does not run).
pub const WAVE_SOAKING: &str = "WaveSoaking";
/// Reason of Progressing False while a rollout annotation does not parse.
pub const INVALID_ANNOTATION: &str = "InvalidAnnotation";
const DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// When the previous Progressing condition last saw progress, if the rollout has made none
/// since (its counts, the end of its message, are the same) and was rolling out then.
fn no_progress_since(previous: Option<&DaemonSetCondition>, progress: &str) -> Option<Timestamp> {
    let p = previous?;
    let rolling = matches!(
        p.reason.as_deref(),
        Some(ROLLING_OUT) | Some(DEADLINE_EXCEEDED)
    );
    (rolling && p.message.as_deref().is_some_and(|m| m.ends_with(progress)))
        .then(|| p.last_transition_time.as_ref().map(|t| t.0))
        .flatten()
}

/// How long until the rollout's progress deadline passes, if it is rolling out without
/// having exceeded it: the sync to run then.
pub fn deadline_requeue(
    facts: &RolloutFacts<'_>,
    wanted: &[DaemonSetCondition],
) -> Option<Duration> {
    let progressing = wanted.iter().find(|c| c.type_ == PROGRESSING)?;
    if progressing.reason.as_deref() != Some(ROLLING_OUT) {
        return None;
    }
    let since = facts
        .previous
        .filter(|p| p.message == progressing.message)
        .and_then(|p| p.last_transition_time.as_ref().map(|t| t.0))
        .unwrap_or(facts.now);
    let elapsed = facts.now.duration_since(since).unsigned_abs();
    Some(facts.progress_deadline.saturating_sub(elapsed) + Duration::from_secs(1))
}

fn condition(type_: &str, status: &str, reason: &str, message: String) -> DaemonSetCondition {
    DaemonSetCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_transition_time: None,
    }
}

/// The conditions the facts call for, without times.
pub fn wanted(f: &RolloutFacts<'_>) -> Vec<DaemonSetCondition> {
    let c = f.counts;
    let mut out = Vec::with_capacity(3);
    if f.rolling {
        let unmatched = f.waves.map_or(0, WaveStage::unmatched);
        let unmatched_pods = i32::try_from(unmatched).unwrap_or(i32::MAX);
        let to_update = (c.desired - f.held).saturating_sub(unmatched_pods).max(0);
        let wave = match f.waves {
            Some(WaveStage::Rolling {
                number,
                count,
                selector,
            }) => format!("wave {number}/{count} ({selector}): "),
            _ => String::new(),
        };
        let progressing = if let Some(WaveStage::Invalid(why)) = f.waves {
            condition(
                PROGRESSING,
                "False",
                INVALID_ANNOTATION,
                format!("DaemonSet {:?} is not rolled further: {why}", f.name),
            )
        } else if let Some(message) = f.gate_stopped {
            condition(
                PROGRESSING,
                "False",
                super::health_gate::HEALTH_GATE_TRIPPED,
                message.to_owned(),
            )
        } else if f.paused {
            condition(
                PROGRESSING,
                "Unknown",
                "RolloutPaused",
                format!(
                    "DaemonSet {:?} is paused (pernode.io/paused): {} of {} pods updated",
                    f.name, c.updated, c.desired
                ),
            )
        } else if c.updated >= to_update && c.available >= c.desired {
            let mut held = if f.held > 0 {
                format!(
                    "; {} held on the old revision by pernode.io/partition",
                    c.desired - c.updated
                )
            } else {
                String::new()
            };
            if unmatched > 0 {
                let nodes = if unmatched == 1 { "node" } else { "nodes" };
                held.push_str(&format!(
                    "; {unmatched} {nodes} in no wave of pernode.io/rollout-waves not updated"
                ));
            }
            condition(
                PROGRESSING,
                "True",
                "RolloutComplete",
                format!("DaemonSet {:?} has successfully progressed{held}.", f.name),
            )
        } else if let Some(WaveStage::Soaking {
            number,
            count,
            selector,
            until,
        }) = f.waves
        {
            condition(
                PROGRESSING,
                "True",
                WAVE_SOAKING,
                format!(
                    "DaemonSet {:?} soaks (pernode.io/wave-soak) until {until} before wave {number}/{count} ({selector}): {} of {} pods updated, {} available",
                    f.name, c.updated, to_update, c.available
                ),
            )
        } else {
            let progress = format!(
                "{} of {} pods updated, {} available",
                c.updated, to_update, c.available
            );
            let exceeded = no_progress_since(f.previous, &progress).is_some_and(|since| {
                f.previous.and_then(|p| p.reason.as_deref()) == Some(DEADLINE_EXCEEDED)
                    || f.now.duration_since(since).unsigned_abs() >= f.progress_deadline
            });
            if exceeded {
                condition(
                    PROGRESSING,
                    "False",
                    DEADLINE_EXCEEDED,
                    format!(
                        "DaemonSet {:?} has timed out progressing: {wave}{progress}",
                        f.name
                    ),
                )
            } else {
                condition(
                    PROGRESSING,
                    "True",
                    ROLLING_OUT,
                    format!("DaemonSet {:?} is progressing: {wave}{progress}", f.name),
                )
            }
        };
        out.push(progressing);
    }
    let minimum = (c.desired - f.max_unavailable).max(0);
    out.push(if c.available >= minimum {
        condition(
            AVAILABLE,
            "True",
            "MinimumPodsAvailable",
            format!(
                "DaemonSet has minimum availability: {} of {} pods available",
                c.available, c.desired
            ),
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            "MinimumPodsUnavailable",
            format!(
                "DaemonSet does not have minimum availability: {} of {} pods available, {} needed",
                c.available, c.desired, minimum
            ),
        )
    });
    out.push(if f.excluded.total > 0 {
        condition(
            NODES_EXCLUDED,
            "True",
            "ExcludedByPlacement",
            f.excluded.message(),
        )
    } else {
        condition(
            NODES_EXCLUDED,
            "False",
            "AllNodesEligible",
            f.excluded.message(),
        )
    });
    out
}

/// The status's conditions with `wanted` in place of ours (others are kept), or `None` when
/// they already say the same. A condition keeps its `lastTransitionTime` unless its status
/// changes, and Progressing also unless its message does (see the module doc).
pub fn merged(
    status: Option<&DaemonSetStatus>,
    wanted: Vec<DaemonSetCondition>,
    now: Timestamp,
) -> Option<Vec<DaemonSetCondition>> {
    let current: &[DaemonSetCondition] =
        status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let ours = |t: &str| t == PROGRESSING || t == AVAILABLE || t == NODES_EXCLUDED;
    let same = wanted.len() == current.iter().filter(|c| ours(&c.type_)).count()
        && wanted.iter().all(|w| {
            current.iter().any(|c| {
                c.type_ == w.type_
                    && c.status == w.status
                    && c.reason == w.reason
                    && c.message == w.message
            })
        });
    if same {
        return None;
    }
    let mut out: Vec<DaemonSetCondition> = current
        .iter()
        .filter(|c| !ours(&c.type_))
        .cloned()
        .collect();
    for mut w in wanted {
        w.last_transition_time = current
            .iter()
            .find(|c| {
                c.type_ == w.type_
                    && c.status == w.status
                    && (c.type_ != PROGRESSING || c.message == w.message)
            })
            .and_then(|c| c.last_transition_time.clone())
            .or(Some(Time(now)));
        out.push(w);
    }
    Some(out)
}

/// The message of `next`'s `NodesExcluded` when nodes are excluded and the message differs
/// from the status's: what the `NodesExcluded` event says.
pub fn newly_excluded(
    status: Option<&DaemonSetStatus>,
    next: &[DaemonSetCondition],
) -> Option<String> {
    let find = |c: &[DaemonSetCondition]| {
        c.iter()
            .find(|c| c.type_ == NODES_EXCLUDED)
            .map(|c| (c.status.clone(), c.message.clone()))
    };
    let (status_now, message) = find(next)?;
    let before = status.and_then(|s| s.conditions.as_deref()).and_then(find);
    (status_now == "True" && before.is_none_or(|(_, m)| m != message))
        .then_some(message)
        .flatten()
}

/// The message of `next`'s Progressing when it says the rollout is stopped by an annotation
/// it cannot read and the status did not say so already: what the `InvalidAnnotation` event
/// says.
pub fn newly_stopped(
    status: Option<&DaemonSetStatus>,
    next: &[DaemonSetCondition],
) -> Option<String> {
    let progressing = |c: &[DaemonSetCondition]| {
        c.iter()
            .find(|c| c.type_ == PROGRESSING)
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let (reason, message) = progressing(next)?;
    let before = status
        .and_then(|s| s.conditions.as_deref())
        .and_then(progressing);
    (reason.as_deref() == Some(INVALID_ANNOTATION) && before.is_none_or(|(_, m)| m != message))
        .then_some(message)
        .flatten()
}

/// The conditions for a DaemonSet with these counters, or `None` when its status has them
/// already; and when to sync again for the progress deadline.
pub fn for_daemonset(
    ds: &DaemonSet,
    counts: &Counts,
    excluded: &ExclusionSummary,
    waves: Option<&WaveStage>,
    gate_stopped: Option<&str>,
    now: Timestamp,
) -> (Option<Vec<DaemonSetCondition>>, Option<Duration>) {
    let controls = RolloutControls::of(ds.metadata.annotations.as_ref());
    let previous = ds
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == PROGRESSING));
    let facts = RolloutFacts {
        name: ds.metadata.name.as_deref().unwrap_or(""),
        counts,
        rolling: is_rolling_update(ds),
        paused: controls.paused,
        held: controls.partition.map_or(0, |p| p.resolve(counts.desired)),
        max_unavailable: resolve_counts(ds, counts.desired).map_or(1, |(_, u)| u),
        excluded,
        progress_deadline: Duration::from_secs(u64::from(controls.progress_deadline_seconds)),
        previous,
        now,
        waves,
        gate_stopped,
    };
    let wanted = wanted(&facts);
    let requeue = deadline_requeue(&facts, &wanted);
    (merged(ds.status.as_ref(), wanted, now), requeue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(desired: i32, updated: i32, available: i32) -> Counts {
        Counts {
            desired,
            current: desired,
            updated,
            available,
            ready: available,
            unavailable: desired - available,
            misscheduled: 0,
        }
    }

    fn facts<'a>(c: &'a Counts, excluded: &'a ExclusionSummary) -> RolloutFacts<'a> {
        RolloutFacts {
            name: "x",
            counts: c,
            rolling: true,
            paused: false,
            held: 0,
            max_unavailable: 1,
            excluded,
            progress_deadline: Duration::from_secs(600),
            previous: None,
            now: Timestamp::from_second(1_000).unwrap(),
            waves: None,
            gate_stopped: None,
        }
    }

    fn reason<'a>(conds: &'a [DaemonSetCondition], type_: &str) -> (&'a str, &'a str) {
        let c = conds.iter().find(|c| c.type_ == type_).expect(type_);
        (c.status.as_str(), c.reason.as_deref().unwrap_or(""))
    }

    #[test]
    fn the_exclusion_message_counts_nodes_by_rule() {
        let s = ExclusionSummary::of(
            [
                "taint forbid=true:NoSchedule not tolerated",
                "nodeSelector daemon=need",
                "nodeSelector daemon=need",
            ]
            .map(String::from),
        );
        assert_eq!(
            s.message(),
            "3 nodes excluded: 2 by nodeSelector daemon=need, 1 by taint forbid=true:NoSchedule not tolerated"
        );
        let one = ExclusionSummary::of(["nodeName n2".to_string()]);
        assert_eq!(one.message(), "1 node excluded: 1 by nodeName n2");
        assert_eq!(ExclusionSummary::default().message(), "0 nodes excluded");
    }

    #[test]
    fn progressing_follows_the_rollout() {
        let none = ExclusionSummary::default();
        let rolling = counts(5, 2, 4);
        let conds = wanted(&facts(&rolling, &none));
        assert_eq!(
            reason(&conds, PROGRESSING),
            ("True", "NewRevisionRollingOut")
        );
        assert_eq!(reason(&conds, AVAILABLE), ("True", "MinimumPodsAvailable"));
        assert_eq!(
            reason(&conds, NODES_EXCLUDED),
            ("False", "AllNodesEligible")
        );

        let done = counts(5, 5, 5);
        let conds = wanted(&facts(&done, &none));
        assert_eq!(reason(&conds, PROGRESSING), ("True", "RolloutComplete"));

        let mut paused = facts(&rolling, &none);
        paused.paused = true;
        let conds = wanted(&paused);
        assert_eq!(reason(&conds, PROGRESSING), ("Unknown", "RolloutPaused"));
        assert!(
            conds[0]
                .message
                .as_deref()
                .is_some_and(|m| m.ends_with("2 of 5 pods updated")),
            "{conds:?}"
        );

        // A partition of 3 is complete at 2 updated.
        let partitioned = counts(5, 2, 5);
        let mut held = facts(&partitioned, &none);
        held.held = 3;
        let conds = wanted(&held);
        assert_eq!(reason(&conds, PROGRESSING), ("True", "RolloutComplete"));

        let short = counts(5, 5, 3);
        let conds = wanted(&facts(&short, &none));
        assert_eq!(
            reason(&conds, AVAILABLE),
            ("False", "MinimumPodsUnavailable")
        );

        let mut on_delete = facts(&done, &none);
        on_delete.rolling = false;
        assert!(wanted(&on_delete).iter().all(|c| c.type_ != PROGRESSING));
    }

    #[test]
    fn a_rollout_without_progress_past_its_deadline_is_reported() {
        let none = ExclusionSummary::default();
        let stuck = counts(5, 1, 4);
        let t0 = Timestamp::from_second(1_000).unwrap();
        let first = merged(None, wanted(&facts(&stuck, &none)), t0).unwrap();
        let previous = first.iter().find(|c| c.type_ == PROGRESSING).cloned();
        let mut later = facts(&stuck, &none);
        later.previous = previous.as_ref();
        later.now = Timestamp::from_second(1_000 + 599).unwrap();
        let conds = wanted(&later);
        assert_eq!(
            reason(&conds, PROGRESSING),
            ("True", "NewRevisionRollingOut")
        );
        assert_eq!(
            deadline_requeue(&later, &conds),
            Some(Duration::from_secs(2)),
            "a sync just after the deadline"
        );
        later.now = Timestamp::from_second(1_000 + 600).unwrap();
        let conds = wanted(&later);
        assert_eq!(
            reason(&conds, PROGRESSING),
            ("False", "ProgressDeadlineExceeded")
        );
        assert_eq!(deadline_requeue(&later, &conds), None);
        // Exceeded stays exceeded until progress is made.
        let status = DaemonSetStatus {
            conditions: merged(None, conds, later.now),
            ..DaemonSetStatus::default()
        };
        let exceeded = status.conditions.as_ref().unwrap()[0].clone();
        later.previous = Some(&exceeded);
        later.now = Timestamp::from_second(1_000 + 601).unwrap();
        assert_eq!(
            reason(&wanted(&later), PROGRESSING),
            ("False", "ProgressDeadlineExceeded")
        );
        let progressed = counts(5, 2, 4);
        let mut moving = facts(&progressed, &none);
        moving.previous = Some(&exceeded);
        moving.now = later.now;
        assert_eq!(
            reason(&wanted(&moving), PROGRESSING),
            ("True", "NewRevisionRollingOut")
        );
    }

    fn message(conds: &[DaemonSetCondition]) -> &str {
        conds
            .iter()
            .find(|c| c.type_ == PROGRESSING)
            .and_then(|c| c.message.as_deref())
            .unwrap_or("")
    }

    #[test]
    fn progressing_names_the_wave_its_soak_and_the_nodes_in_none() {
        let none = ExclusionSummary::default();
        let rolling = counts(5, 1, 4);
        let wave = WaveStage::Rolling {
            number: 2,
            count: 3,
            selector: "zone=a".into(),
        };
        let mut f = facts(&rolling, &none);
        f.waves = Some(&wave);
        let conds = wanted(&f);
        assert_eq!(reason(&conds, PROGRESSING), ("True", ROLLING_OUT));
        assert_eq!(
            message(&conds),
            "DaemonSet \"x\" is progressing: wave 2/3 (zone=a): 1 of 5 pods updated, 4 available"
        );

        // Soaking makes no progress, and no deadline runs.
        let soaking = WaveStage::Soaking {
            number: 2,
            count: 3,
            selector: "zone=a".into(),
            until: Timestamp::from_second(2_000).unwrap(),
        };
        let soaked = counts(5, 1, 5);
        let mut f = facts(&soaked, &none);
        f.waves = Some(&soaking);
        let conds = wanted(&f);
        assert_eq!(reason(&conds, PROGRESSING), ("True", WAVE_SOAKING));
        assert_eq!(
            message(&conds),
            "DaemonSet \"x\" soaks (pernode.io/wave-soak) until 1970-01-01T00:33:20Z before wave 2/3 (zone=a): 1 of 5 pods updated, 5 available"
        );
        assert_eq!(deadline_requeue(&f, &conds), None);

        // Every wave done, two nodes in none: complete without them.
        let done = WaveStage::Done { unmatched: 2 };
        let mut f = facts(&soaked, &none);
        let three = counts(5, 3, 5);
        f.counts = &three;
        f.waves = Some(&done);
        let conds = wanted(&f);
        assert_eq!(reason(&conds, PROGRESSING), ("True", "RolloutComplete"));
        assert_eq!(
            message(&conds),
            "DaemonSet \"x\" has successfully progressed; 2 nodes in no wave of pernode.io/rollout-waves not updated."
        );

        // Waves that do not parse stop the rollout, said once as an event.
        let invalid = WaveStage::Invalid("pernode.io/rollout-waves \"\": wave 1 is empty".into());
        let mut f = facts(&rolling, &none);
        f.waves = Some(&invalid);
        f.paused = true;
        let conds = wanted(&f);
        assert_eq!(reason(&conds, PROGRESSING), ("False", INVALID_ANNOTATION));
        let t0 = Timestamp::from_second(1_000).unwrap();
        let next = merged(None, conds, t0).unwrap();
        assert_eq!(
            newly_stopped(None, &next).as_deref(),
            Some(
                "DaemonSet \"x\" is not rolled further: pernode.io/rollout-waves \"\": wave 1 is empty"
            )
        );
        let status = DaemonSetStatus {
            conditions: Some(next.clone()),
            ..DaemonSetStatus::default()
        };
        assert_eq!(newly_stopped(Some(&status), &next), None, "said already");
    }

    #[test]
    fn a_tripped_health_gate_is_progressing_false_over_a_pause() {
        let none = ExclusionSummary::default();
        let rolling = counts(5, 1, 4);
        let mut f = facts(&rolling, &none);
        f.paused = true;
        f.gate_stopped = Some("stopped: 1 node failed: n1 (ImagePullBackOff)");
        let conds = wanted(&f);
        assert_eq!(
            reason(&conds, PROGRESSING),
            ("False", super::super::health_gate::HEALTH_GATE_TRIPPED)
        );
        assert_eq!(
            message(&conds),
            "stopped: 1 node failed: n1 (ImagePullBackOff)"
        );
        // No deadline runs while stopped.
        assert_eq!(deadline_requeue(&f, &conds), None);
    }

    #[test]
    fn a_new_exclusion_count_is_an_event() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let two = ExclusionSummary::of(["nodeName n2".to_string(), "nodeName n2".to_string()]);
        let c = counts(1, 1, 1);
        let first = merged(None, wanted(&facts(&c, &two)), t0).unwrap();
        assert_eq!(
            newly_excluded(None, &first).as_deref(),
            Some("2 nodes excluded: 2 by nodeName n2")
        );
        let status = DaemonSetStatus {
            conditions: Some(first.clone()),
            ..DaemonSetStatus::default()
        };
        assert_eq!(newly_excluded(Some(&status), &first), None, "unchanged");
        let none = ExclusionSummary::default();
        let cleared = merged(Some(&status), wanted(&facts(&c, &none)), t0).unwrap();
        assert_eq!(
            newly_excluded(Some(&status), &cleared),
            None,
            "none excluded"
        );
    }

    #[test]
    fn merging_keeps_times_and_skips_unchanged_conditions() {
        let none = ExclusionSummary::default();
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let first = merged(None, wanted(&facts(&counts(5, 2, 4), &none)), t0).unwrap();
        let status = DaemonSetStatus {
            conditions: Some(first.clone()),
            ..DaemonSetStatus::default()
        };
        assert_eq!(
            merged(Some(&status), wanted(&facts(&counts(5, 2, 4), &none)), t1),
            None,
            "nothing changed: nothing to write"
        );
        let next = merged(Some(&status), wanted(&facts(&counts(5, 5, 5), &none)), t1).unwrap();
        let progressing = next.iter().find(|c| c.type_ == PROGRESSING).unwrap();
        assert_eq!(
            progressing.last_transition_time,
            Some(Time(t1)),
            "Progressing's time is its last change of message (progress)"
        );
        assert_eq!(progressing.reason.as_deref(), Some("RolloutComplete"));
        let available = next.iter().find(|c| c.type_ == AVAILABLE).unwrap();
        assert_eq!(
            available.last_transition_time,
            Some(Time(t0)),
            "True to True keeps its time"
        );
    }
}
