//! Typed conditions in a DaemonSet's `status.conditions`. Upstream's DaemonSet controller
//! writes none (the field exists and stays empty); these follow Deployment's, so `kubectl wait
//! --for=condition=...` and `-o jsonpath` answer what a rollout is doing:
//!
//! - `Progressing`: `True`/`NewRevisionRollingOut` while pods are replaced, `True`/
//!   `RolloutComplete` once every desired node runs an available updated pod (or every node a
//!   partition releases does), `Unknown`/`RolloutPaused` while `pernode.io/paused` (as
//!   Deployment's `DeploymentPaused`). RollingUpdate only: OnDelete has no rollout.
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

use k8s_openapi::api::apps::v1::{DaemonSetCondition, DaemonSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::status::Counts;

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
        let to_update = (c.desired - f.held).max(0);
        let progressing = if f.paused {
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
            let held = if f.held > 0 {
                format!(
                    "; {} held on the old revision by pernode.io/partition",
                    c.desired - c.updated
                )
            } else {
                String::new()
            };
            condition(
                PROGRESSING,
                "True",
                "RolloutComplete",
                format!("DaemonSet {:?} has successfully progressed{held}.", f.name),
            )
        } else {
            condition(
                PROGRESSING,
                "True",
                "NewRevisionRollingOut",
                format!(
                    "DaemonSet {:?} is progressing: {} of {} pods updated, {} available",
                    f.name, c.updated, to_update, c.available
                ),
            )
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
/// changes.
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
            .find(|c| c.type_ == w.type_ && c.status == w.status)
            .and_then(|c| c.last_transition_time.clone())
            .or(Some(Time(now)));
        out.push(w);
    }
    Some(out)
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
            Some(Time(t0)),
            "True to True keeps its time"
        );
        assert_eq!(progressing.reason.as_deref(), Some("RolloutComplete"));
    }
}
