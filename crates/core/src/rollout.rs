//! pernode's rollout controls on a plain apps/v1 DaemonSet: annotations, so that the same
//! control is available from `kubectl pernode`, YAML and GitOps alike.
//!
//! - `pernode.io/paused: "true"`: the rolling update replaces no more pods.
//! - `pernode.io/partition: "N"` or `"N%"`: that many pods, on the nodes with the lowest names,
//!   stay on their old revision (a percentage of the desired nodes, rounded up as upstream
//!   rounds `maxUnavailable`).
//! - `pernode.io/progress-deadline-seconds: "N"` (default 600, Deployment's
//!   `progressDeadlineSeconds`): a rollout that makes no progress for that long is reported
//!   as `ProgressDeadlineExceeded`; the health gate's bound on how long an updated pod may take
//!   to become Ready.
//! - `pernode.io/max-failed-nodes: "N"` or `"N%"` (of the desired nodes, rounded up as
//!   `maxUnavailable`): the health gate; the rollout stops by itself once that many nodes got an
//!   updated pod that fails (see `crate::health_gate`), and records the revision it stopped in
//!   `pernode.io/health-gate-tripped`, so that nothing resumes it but `kubectl pernode resume`.
//! - `pernode.io/auto-rollback: "true"`: at the gate, roll back to the previous revision instead.
//!
//! The API server refuses values that do not parse ([`validate`]); the controller reads them
//! with the same parsers.
//!
//! ```
//! use pernode_core::rollout::{Partition, parse_partition};
//! assert_eq!(parse_partition("2").unwrap().resolve(5), 2);
//! assert_eq!(parse_partition("50%").unwrap(), Partition::Percent(50));
//! assert_eq!(parse_partition("50%").unwrap().resolve(5), 3);
//! assert!(parse_partition("-1").is_err());
//! ```

use std::collections::BTreeMap;

/// The annotation that pauses a DaemonSet's rollout.
pub const PAUSED_ANNOTATION: &str = "pernode.io/paused";
/// The annotation that keeps the lowest-named nodes' pods on the old revision.
pub const PARTITION_ANNOTATION: &str = "pernode.io/partition";

/// The annotation bounding how long a rollout may go without progress.
pub const PROGRESS_DEADLINE_ANNOTATION: &str = "pernode.io/progress-deadline-seconds";
/// Deployment's default `progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: u32 = 600;

/// The health gate: how many nodes may fail with an updated pod before the rollout stops.
pub const MAX_FAILED_NODES_ANNOTATION: &str = "pernode.io/max-failed-nodes";
/// At the health gate, roll back to the previous revision instead of stopping.
pub const AUTO_ROLLBACK_ANNOTATION: &str = "pernode.io/auto-rollback";
/// The hash of the revision the health gate stopped (or rolled back), written by the controller
/// and removed by `kubectl pernode resume`: while it names the current revision, the rollout
/// replaces no pods, whatever the pods do meanwhile.
pub const HEALTH_GATE_TRIPPED_ANNOTATION: &str = "pernode.io/health-gate-tripped";

/// A rollout annotation whose value does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    /// `pernode.io/paused` other than `"true"` or `"false"`.
    #[error("must be \"true\" or \"false\"")]
    Paused,
    /// `pernode.io/partition` other than a non-negative integer or percentage.
    #[error("must be a non-negative integer or a percentage (e.g. \"2\" or \"20%\")")]
    Partition,
    /// `pernode.io/progress-deadline-seconds` other than a positive integer.
    #[error("must be a positive integer (seconds)")]
    ProgressDeadline,
    /// `pernode.io/max-failed-nodes` other than a positive integer or percentage.
    #[error("must be a positive integer or percentage (e.g. \"1\" or \"10%\")")]
    MaxFailedNodes,
    /// `pernode.io/auto-rollback` other than `"true"` or `"false"`.
    #[error("must be \"true\" or \"false\"")]
    AutoRollback,
}

/// How many pods a partition keeps on the old revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// This many pods.
    Count(u32),
    /// This percentage of the desired nodes, rounded up.
    Percent(u32),
}

impl Partition {
    /// The number of pods held back out of `desired`: a count as given, a percentage rounded
    /// up (as `GetScaledValueFromIntOrPercent` with rounding up); never more than `desired`.
    pub fn resolve(self, desired: i32) -> i32 {
        let desired = desired.max(0);
        let held = match self {
            Partition::Count(n) => i64::from(n),
            Partition::Percent(p) => (i64::from(p) * i64::from(desired) + 99) / 100,
        };
        i32::try_from(held.min(i64::from(desired))).unwrap_or(desired)
    }
}

/// Reads `pernode.io/paused`.
pub fn parse_paused(value: &str) -> Result<bool, AnnotationError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AnnotationError::Paused),
    }
}

/// Reads `pernode.io/partition`: digits, optionally followed by `%`.
pub fn parse_partition(value: &str) -> Result<Partition, AnnotationError> {
    let (digits, percent) = match value.strip_suffix('%') {
        Some(d) => (d, true),
        None => (value, false),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AnnotationError::Partition);
    }
    let n: u32 = digits.parse().map_err(|_| AnnotationError::Partition)?;
    Ok(if percent {
        Partition::Percent(n)
    } else {
        Partition::Count(n)
    })
}

/// Reads `pernode.io/max-failed-nodes`: as a partition, but never zero (a gate that trips
/// before anything failed would stop every rollout).
pub fn parse_max_failed_nodes(value: &str) -> Result<Partition, AnnotationError> {
    match parse_partition(value) {
        Ok(Partition::Count(0) | Partition::Percent(0)) | Err(_) => {
            Err(AnnotationError::MaxFailedNodes)
        }
        Ok(p) => Ok(p),
    }
}

/// The revision hash `pernode.io/health-gate-tripped` names, if any.
pub fn tripped_revision(annotations: Option<&BTreeMap<String, String>>) -> Option<&str> {
    annotations?
        .get(HEALTH_GATE_TRIPPED_ANNOTATION)
        .map(String::as_str)
}

/// Reads `pernode.io/progress-deadline-seconds`: a positive number of seconds.
pub fn parse_progress_deadline(value: &str) -> Result<u32, AnnotationError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AnnotationError::ProgressDeadline);
    }
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(AnnotationError::ProgressDeadline),
    }
}

/// The rollout controls of one DaemonSet, read from its annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutControls {
    /// `pernode.io/paused: "true"`.
    pub paused: bool,
    /// `pernode.io/partition`, if set.
    pub partition: Option<Partition>,
    /// `pernode.io/progress-deadline-seconds`, 600 when unset.
    pub progress_deadline_seconds: u32,
    /// `pernode.io/max-failed-nodes`, if set: the health gate.
    pub max_failed_nodes: Option<Partition>,
    /// `pernode.io/auto-rollback: "true"`.
    pub auto_rollback: bool,
}

impl RolloutControls {
    /// The health gate's threshold among `desired` nodes: at least 1 (a percentage of a small
    /// fleet rounds up). `None` without a gate.
    pub fn max_failed(&self, desired: i32) -> Option<usize> {
        let p = self.max_failed_nodes?;
        let n = match p {
            // Not capped at the desired count, as a partition is: a gate of 3 on 2 nodes never
            // trips.
            Partition::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Partition::Percent(_) => usize::try_from(p.resolve(desired)).unwrap_or(0),
        };
        Some(n.max(1))
    }
}

impl Default for RolloutControls {
    fn default() -> Self {
        RolloutControls {
            paused: false,
            partition: None,
            progress_deadline_seconds: DEFAULT_PROGRESS_DEADLINE_SECONDS,
            max_failed_nodes: None,
            auto_rollback: false,
        }
    }
}

impl RolloutControls {
    /// Reads the controls. A value that does not parse (only possible on an object stored
    /// before validation refused it) holds the rollout: a paused rollout for a bad `paused`,
    /// every pod held back for a bad `partition`, a gate of one node for a bad
    /// `max-failed-nodes`, no rollback for a bad `auto-rollback` (and the default deadline for a
    /// bad deadline). Stopping is the safe reading of a control whose meaning is unknown.
    pub fn of(annotations: Option<&BTreeMap<String, String>>) -> RolloutControls {
        let Some(annotations) = annotations else {
            return RolloutControls::default();
        };
        RolloutControls {
            paused: annotations
                .get(PAUSED_ANNOTATION)
                .is_some_and(|v| parse_paused(v).unwrap_or(true)),
            partition: annotations
                .get(PARTITION_ANNOTATION)
                .map(|v| parse_partition(v).unwrap_or(Partition::Percent(100))),
            progress_deadline_seconds: annotations
                .get(PROGRESS_DEADLINE_ANNOTATION)
                .and_then(|v| parse_progress_deadline(v).ok())
                .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS),
            max_failed_nodes: annotations
                .get(MAX_FAILED_NODES_ANNOTATION)
                .map(|v| parse_max_failed_nodes(v).unwrap_or(Partition::Count(1))),
            auto_rollback: annotations
                .get(AUTO_ROLLBACK_ANNOTATION)
                .is_some_and(|v| parse_paused(v).unwrap_or(false)),
        }
    }
}

/// The rollout annotations among `annotations` whose values do not parse: `(key, value,
/// why)`, for admission to refuse.
pub fn validate(
    annotations: Option<&BTreeMap<String, String>>,
) -> Vec<(&'static str, String, AnnotationError)> {
    let mut errors = Vec::new();
    let Some(annotations) = annotations else {
        return errors;
    };
    if let Some(v) = annotations.get(PAUSED_ANNOTATION)
        && let Err(e) = parse_paused(v)
    {
        errors.push((PAUSED_ANNOTATION, v.clone(), e));
    }
    if let Some(v) = annotations.get(PARTITION_ANNOTATION)
        && let Err(e) = parse_partition(v)
    {
        errors.push((PARTITION_ANNOTATION, v.clone(), e));
    }
    if let Some(v) = annotations.get(PROGRESS_DEADLINE_ANNOTATION)
        && let Err(e) = parse_progress_deadline(v)
    {
        errors.push((PROGRESS_DEADLINE_ANNOTATION, v.clone(), e));
    }
    if let Some(v) = annotations.get(MAX_FAILED_NODES_ANNOTATION)
        && let Err(e) = parse_max_failed_nodes(v)
    {
        errors.push((MAX_FAILED_NODES_ANNOTATION, v.clone(), e));
    }
    if let Some(v) = annotations.get(AUTO_ROLLBACK_ANNOTATION)
        && parse_paused(v).is_err()
    {
        errors.push((
            AUTO_ROLLBACK_ANNOTATION,
            v.clone(),
            AnnotationError::AutoRollback,
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_counts_and_percentages() {
        assert_eq!(parse_partition("0"), Ok(Partition::Count(0)));
        assert_eq!(parse_partition("12"), Ok(Partition::Count(12)));
        assert_eq!(parse_partition("40%"), Ok(Partition::Percent(40)));
        for bad in ["", "%", "-1", "+1", "1.5", "x", "1%%", " 1", "99999999999"] {
            assert_eq!(
                parse_partition(bad),
                Err(AnnotationError::Partition),
                "{bad}"
            );
        }
    }

    #[test]
    fn partitions_resolve_against_desired() {
        assert_eq!(Partition::Count(2).resolve(5), 2);
        assert_eq!(Partition::Count(9).resolve(5), 5, "never more than desired");
        assert_eq!(Partition::Percent(40).resolve(5), 2);
        assert_eq!(Partition::Percent(41).resolve(5), 3, "rounded up");
        assert_eq!(Partition::Percent(0).resolve(5), 0);
        assert_eq!(Partition::Percent(300).resolve(5), 5);
        assert_eq!(Partition::Count(3).resolve(0), 0);
    }

    #[test]
    fn paused_is_true_or_false() {
        assert_eq!(parse_paused("true"), Ok(true));
        assert_eq!(parse_paused("false"), Ok(false));
        assert_eq!(parse_paused("yes"), Err(AnnotationError::Paused));
    }

    #[test]
    fn progress_deadlines_are_positive_seconds() {
        assert_eq!(parse_progress_deadline("30"), Ok(30));
        for bad in ["0", "", "-5", "5s", "1.5"] {
            assert!(parse_progress_deadline(bad).is_err(), "{bad}");
        }
        let a: BTreeMap<String, String> =
            [(PROGRESS_DEADLINE_ANNOTATION.to_string(), "45".to_string())].into();
        assert_eq!(RolloutControls::of(Some(&a)).progress_deadline_seconds, 45);
        assert_eq!(RolloutControls::of(None).progress_deadline_seconds, 600);
    }

    #[test]
    fn the_health_gate_reads_counts_and_percentages_never_zero() {
        assert_eq!(parse_max_failed_nodes("1"), Ok(Partition::Count(1)));
        assert_eq!(parse_max_failed_nodes("10%"), Ok(Partition::Percent(10)));
        for bad in ["0", "0%", "", "-1", "x"] {
            assert_eq!(
                parse_max_failed_nodes(bad),
                Err(AnnotationError::MaxFailedNodes),
                "{bad}"
            );
        }
        let gate = |v: &str, rollback: &str| {
            let a: BTreeMap<String, String> = [
                (MAX_FAILED_NODES_ANNOTATION.to_string(), v.to_string()),
                (AUTO_ROLLBACK_ANNOTATION.to_string(), rollback.to_string()),
            ]
            .into();
            RolloutControls::of(Some(&a))
        };
        assert_eq!(gate("2", "true").max_failed(5), Some(2));
        assert!(gate("2", "true").auto_rollback);
        assert_eq!(gate("3", "false").max_failed(2), Some(3), "not capped");
        assert_eq!(gate("10%", "false").max_failed(5), Some(1), "rounded up");
        assert_eq!(gate("50%", "false").max_failed(0), Some(1), "at least one");
        // Unreadable: the strictest gate, and no rollback.
        let bad = gate("many", "yes");
        assert_eq!(bad.max_failed(5), Some(1));
        assert!(!bad.auto_rollback);
        assert_eq!(RolloutControls::default().max_failed(5), None);
        let a: BTreeMap<String, String> = [
            (MAX_FAILED_NODES_ANNOTATION.to_string(), "0".to_string()),
            (AUTO_ROLLBACK_ANNOTATION.to_string(), "yes".to_string()),
        ]
        .into();
        assert_eq!(validate(Some(&a)).len(), 2);
        let t: BTreeMap<String, String> = [(
            HEALTH_GATE_TRIPPED_ANNOTATION.to_string(),
            "abc".to_string(),
        )]
        .into();
        assert_eq!(tripped_revision(Some(&t)), Some("abc"));
        assert_eq!(tripped_revision(None), None);
    }

    #[test]
    fn unparsable_controls_hold_the_rollout() {
        let a: BTreeMap<String, String> = [
            (PAUSED_ANNOTATION.to_string(), "maybe".to_string()),
            (PARTITION_ANNOTATION.to_string(), "lots".to_string()),
        ]
        .into();
        let c = RolloutControls::of(Some(&a));
        assert!(c.paused);
        assert_eq!(c.partition.map(|p| p.resolve(7)), Some(7));
        assert_eq!(validate(Some(&a)).len(), 2);
        assert_eq!(RolloutControls::of(None), RolloutControls::default());
    }
}
