//! What `whatif` reports, as JSON (`--json`, field names stable) and as a table.

use std::fmt::Write as _;

use serde::Serialize;

/// The prediction for one change.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `namespace/name`.
    pub daemon_set: String,
    /// Nodes copied from the live cluster.
    pub nodes: usize,
    /// `complete`, `paused` (the change pauses or the rollout stops paused), or `stalled` (no
    /// progress for the stall window: see `blocked`).
    pub outcome: String,
    /// Simulated seconds from the change until the controller called the rollout complete.
    pub time_to_complete_seconds: Option<f64>,
    /// Simulated seconds the run lasted.
    pub simulated_seconds: f64,
    /// Most nodes without an available pod at once (desired − available), during the run.
    pub peak_unavailable: i32,
    /// The revision (hash) before and after.
    pub revision_before: Option<String>,
    pub revision_after: Option<String>,
    /// Nodes whose pod would change (revision, or gaining or losing the pod), in the order
    /// they got there.
    pub changed: Vec<NodeChange>,
    /// Nodes that should get the new revision but do not by the end, and why.
    pub blocked: Vec<Blocked>,
    /// The waves, in order (empty without `pernode.io/rollout-waves`).
    pub waves: Vec<WaveTimeline>,
    /// The run's settings.
    pub pod_start_seconds: f64,
    pub failure_rate: f64,
    pub seed: u64,
    pub time_scale: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeChange {
    pub node: String,
    /// The revision hash of the node's Ready pod before and after (`None`: no Ready pod:
    /// none, or one that fails).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Simulated seconds after the change when the node reached it.
    pub at_seconds: f64,
    /// The node's wave (1-based), with waves.
    pub wave: Option<usize>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blocked {
    pub node: String,
    /// `kubectl pernode why`'s verdicts that are not `pass`, on the final simulated state.
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveTimeline {
    /// 1-based.
    pub wave: usize,
    pub selector: String,
    /// Nodes of the wave that change.
    pub nodes: usize,
    /// Simulated seconds after the change: first and last node of the wave changed.
    pub started_seconds: Option<f64>,
    pub finished_seconds: Option<f64>,
}

impl Report {
    /// The human form: a summary, the waves, the blocked nodes, the changed nodes.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "What if daemonset {} changed ({} nodes, pods start in {}s, failure rate {}, seed {}):",
            self.daemon_set, self.nodes, self.pod_start_seconds, self.failure_rate, self.seed
        );
        let complete = match self.time_to_complete_seconds {
            Some(t) => format!("{} in {}", self.outcome, seconds(t)),
            None => format!("{} after {}", self.outcome, seconds(self.simulated_seconds)),
        };
        let _ = writeln!(out, "  outcome           {complete}");
        let _ = writeln!(
            out,
            "  revision          {} -> {}",
            self.revision_before.as_deref().unwrap_or("<none>"),
            self.revision_after.as_deref().unwrap_or("<none>")
        );
        let _ = writeln!(out, "  nodes changed     {}", self.changed.len());
        let _ = writeln!(out, "  nodes blocked     {}", self.blocked.len());
        let _ = writeln!(out, "  peak unavailable  {}", self.peak_unavailable);
        if !self.waves.is_empty() {
            let _ = writeln!(
                out,
                "\nWAVE  SELECTOR                        NODES  STARTED   FINISHED"
            );
            for w in &self.waves {
                let _ = writeln!(
                    out,
                    "{:<5} {:<31} {:<6} {:<9} {}",
                    w.wave,
                    w.selector,
                    w.nodes,
                    w.started_seconds.map(seconds).unwrap_or_else(|| "-".into()),
                    w.finished_seconds
                        .map(seconds)
                        .unwrap_or_else(|| "-".into()),
                );
            }
        }
        if !self.blocked.is_empty() {
            let _ = writeln!(out, "\nBLOCKED NODE  WHY");
            for b in &self.blocked {
                let _ = writeln!(out, "{:<13} {}", b.node, b.reasons.join("; "));
            }
        }
        if !self.changed.is_empty() {
            let _ = writeln!(out, "\nNODE          WAVE  AT        FROM        TO");
            for c in &self.changed {
                let _ = writeln!(
                    out,
                    "{:<13} {:<5} {:<9} {:<11} {}",
                    c.node,
                    c.wave.map(|w| w.to_string()).unwrap_or_else(|| "-".into()),
                    seconds(c.at_seconds),
                    c.from.as_deref().unwrap_or("<not-ready>"),
                    c.to.as_deref().unwrap_or("<not-ready>"),
                );
            }
        }
        out
    }
}

/// `12.3s`, `4m05s`.
fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_seconds_then_minutes() {
        assert_eq!(seconds(2.04), "2.0s");
        assert_eq!(seconds(245.0), "4m05s");
    }
}
