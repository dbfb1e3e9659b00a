//! Rollout waves in the rolling update (`pernode_core::waves`): the desired nodes are split
//! by `pernode.io/rollout-waves` and rolled one wave at a time. Neither upstream's DaemonSet
//! nor OpenKruise's has them as such; the nearest are Kruise's `rollingUpdate.selector`
//! (one wave, moved by hand) and ExtendedDaemonSet's canary (one wave, then everything).
//!
//! Where a rollout stands is read from the cluster on every sync, so nothing is stored and a
//! restarted controller carries on where the pods say:
//!
//! - A wave is **finished** when each of its desired nodes (bar those a partition holds) runs
//!   an available updated pod and no old one. The wave being rolled is the first unfinished
//!   one; a wave that goes unfinished again (a pod stopped being ready) stops the waves after
//!   it until it is whole again, as an unavailable pod stops a rolling update.
//! - The **soak** counts from when the earlier waves last became whole: the latest moment one
//!   of their updated pods became available (Ready since + minReadySeconds). The next wave
//!   starts once that is `pernode.io/wave-soak` ago; the sync is requeued for that moment.
//! - Inside the wave being rolled, maxUnavailable and maxSurge apply as if it were the whole
//!   DaemonSet: percentages count its desired nodes, and only its unavailable pods count.
//! - Nodes of later waves, and nodes no wave matches, keep their old pods; such a node that
//!   needs a pod gets the old revision most old pods run (as a partition's held nodes).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use pernode_core::waves::WaveControls;

use super::placement::Placement;
use super::pods::is_pod_updated;
use super::rollout::is_held;
use super::status::NodeToPods;
use crate::trim::PodRecord;

/// Where a waved rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveProgress {
    /// Each node's wave (index from 0), in the order of the node list; `None`: no wave.
    pub membership: Vec<Option<usize>>,
    /// How many waves there are.
    pub count: usize,
    /// The wave being rolled, the first unfinished one; `count` once all are finished.
    pub current: usize,
    /// The earlier waves are finished but soak until then: the current wave waits.
    pub soaking_until: Option<Timestamp>,
    /// Desired nodes no wave matches: never updated.
    pub unmatched: usize,
}

impl WaveProgress {
    /// Whether the wave being rolled may replace pods now.
    pub fn rolling(&self) -> bool {
        self.current < self.count && self.soaking_until.is_none()
    }

    /// Whether the waves keep `node` (at `index` in the node list) on its old pod: a later
    /// wave than the current one, or none, or any wave while soaking.
    pub fn holds(&self, index: usize) -> bool {
        match self.membership.get(index).copied().flatten() {
            None => true,
            Some(w) => w > self.current || (w == self.current && self.soaking_until.is_some()),
        }
    }

    /// How long until the soak ends, for the sync to run then.
    pub fn soak_left(&self, now: Timestamp) -> Option<Duration> {
        let until = self.soaking_until?;
        Some(until.duration_since(now).unsigned_abs() + Duration::from_millis(100))
    }
}

/// Where a node stands in the rollout: `None` while not updated (an old pod, no pod, an
/// updated pod not yet available); `Some(at)` when it runs only an available updated pod,
/// available since `at` (unknown: `None`).
pub type NodeDone = Option<Option<Timestamp>>;

/// The waves' progress over `nodes` (sorted by name, with placements). `wave_of` gives a
/// node's wave from its labels, `held` whether a partition holds it, `done` where it stands.
pub fn progress(
    controls: &WaveControls,
    nodes: &[(String, Placement)],
    wave_of: impl Fn(&str) -> Option<usize>,
    held: impl Fn(&str) -> bool,
    mut done: impl FnMut(&str) -> NodeDone,
    now: Timestamp,
) -> WaveProgress {
    let count = controls.waves.len();
    let mut finished = vec![true; count];
    let mut finished_at: Vec<Option<Timestamp>> = vec![None; count];
    let mut unmatched = 0;
    let mut membership = Vec::with_capacity(nodes.len());
    for (node, placement) in nodes {
        let wave = wave_of(node);
        membership.push(wave);
        if !placement.should_run {
            continue;
        }
        let Some(w) = wave else {
            unmatched += 1;
            continue;
        };
        if held(node) || !finished[w] {
            continue;
        }
        match done(node) {
            None => finished[w] = false,
            Some(at) => finished_at[w] = finished_at[w].max(at),
        }
    }
    let current = finished.iter().position(|f| !f).unwrap_or(count);
    let soaking_until = (current < count && !controls.soak.is_zero())
        .then(|| finished_at[..current].iter().flatten().max().copied())
        .flatten()
        .and_then(|at| at.checked_add(controls.soak).ok())
        .filter(|until| *until > now);
    WaveProgress {
        membership,
        count,
        current,
        soaking_until,
        unmatched,
    }
}

/// What the Progressing condition says of the waves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveStage {
    /// An annotation does not parse (its key, value and why): the rollout is stopped.
    Invalid(String),
    /// Wave `number` (from 1) of `count`, selecting `selector`, rolls.
    Rolling {
        /// From 1.
        number: usize,
        /// How many waves.
        count: usize,
        /// The wave's selector as written.
        selector: String,
    },
    /// The waves before `number` soak until `until`; then it rolls.
    Soaking {
        /// The next wave, from 1.
        number: usize,
        /// How many waves.
        count: usize,
        /// Its selector as written.
        selector: String,
        /// When the soak ends.
        until: Timestamp,
    },
    /// Every wave is finished; `unmatched` desired nodes are in none.
    Done {
        /// Desired nodes no wave matches.
        unmatched: usize,
    },
}

impl WaveStage {
    /// The stage of `progress`.
    pub fn of(controls: &WaveControls, progress: &WaveProgress) -> WaveStage {
        let selector = || {
            controls
                .waves
                .waves()
                .get(progress.current)
                .map(|w| w.text.clone())
                .unwrap_or_default()
        };
        match progress.soaking_until {
            _ if progress.current >= progress.count => WaveStage::Done {
                unmatched: progress.unmatched,
            },
            Some(until) => WaveStage::Soaking {
                number: progress.current + 1,
                count: progress.count,
                selector: selector(),
                until,
            },
            None => WaveStage::Rolling {
                number: progress.current + 1,
                count: progress.count,
                selector: selector(),
            },
        }
    }

    /// Desired nodes the waves never update.
    pub fn unmatched(&self) -> usize {
        match self {
            WaveStage::Done { unmatched } => *unmatched,
            _ => 0,
        }
    }
}

/// [`NodeDone`] of a node's pods as the controller caches them.
pub fn node_done(
    pods: Option<&[&PodRecord]>,
    hash: &str,
    generation: Option<i64>,
    min_ready_seconds: i32,
    now: Timestamp,
) -> NodeDone {
    let mut at = None;
    let mut updated = false;
    for pod in pods.unwrap_or(&[]).iter().filter(|p| !p.deleting) {
        if !is_pod_updated(pod, hash, generation) || !pod.is_available(min_ready_seconds, now) {
            return None;
        }
        updated = true;
        let since = pod.readiness.and_then(|r| r.since).and_then(|s| {
            s.checked_add(Duration::from_secs(
                u64::try_from(min_ready_seconds).unwrap_or(0),
            ))
            .ok()
        });
        at = at.max(since);
    }
    updated.then_some(at)
}

/// The progress of a DaemonSet's waves from the controller's caches.
#[allow(clippy::too_many_arguments)]
pub fn progress_of_pods(
    controls: &WaveControls,
    nodes: &[(String, Placement)],
    wave_of: impl Fn(&str) -> Option<usize>,
    boundary: Option<&str>,
    node_pods: &NodeToPods<'_>,
    hash: &str,
    generation: Option<i64>,
    min_ready_seconds: i32,
    now: Timestamp,
) -> WaveProgress {
    let mut lookup = node_pods.lookup();
    progress(
        controls,
        nodes,
        wave_of,
        |n| is_held(n, boundary),
        |n| node_done(lookup.get(n), hash, generation, min_ready_seconds, now),
        now,
    )
}

/// The nodes and pods of the wave being rolled, for the rolling update to plan over as if
/// they were the whole DaemonSet.
pub fn current_wave<'a>(
    progress: &WaveProgress,
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'a>,
) -> (Vec<(String, Placement)>, NodeToPods<'a>) {
    let in_wave: Vec<(String, Placement)> = nodes
        .iter()
        .zip(&progress.membership)
        .filter(|(_, w)| **w == Some(progress.current))
        .map(|(n, _)| n.clone())
        .collect();
    let mut lookup = node_pods.lookup();
    let mut pairs = Vec::new();
    for (node, _) in &in_wave {
        for pod in lookup.get(node).unwrap_or(&[]) {
            // The pod's own node name: borrowed from the pod, as the map borrows it.
            if let Some(target) = super::pods::target_node_name(pod) {
                pairs.push((target, *pod));
            }
        }
    }
    (in_wave, NodeToPods::from_pairs(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::testutil::pod_on;
    use pernode_core::waves::Waves;

    const RUN: Placement = Placement::BOTH;

    fn controls(soak_secs: u64) -> WaveControls {
        WaveControls {
            waves: Waves::parse("canary=true;zone=a;*").unwrap(),
            soak: Duration::from_secs(soak_secs),
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    /// n1 canary, n2 n3 zone a, n4 the rest.
    fn nodes() -> Vec<(String, Placement)> {
        ["n1", "n2", "n3", "n4"]
            .iter()
            .map(|n| (n.to_string(), RUN))
            .collect()
    }

    fn wave_of(n: &str) -> Option<usize> {
        Some(match n {
            "n1" => 0,
            "n2" | "n3" => 1,
            _ => 2,
        })
    }

    fn run(c: &WaveControls, pods: &[PodRecord], now: i64) -> WaveProgress {
        let np = crate::daemonset::sync::nodes_to_daemon_pods(pods.iter(), false);
        progress_of_pods(c, &nodes(), wave_of, None, &np, "new", None, 0, at(now))
    }

    #[test]
    fn the_first_unfinished_wave_rolls() {
        let old = |n: &str| pod_on(&format!("p{n}"), n, "old", 0).ready(10).build();
        let new = |n: &str, since| pod_on(&format!("q{n}"), n, "new", 0).ready(since).build();
        let p = run(
            &controls(0),
            &[old("n1"), old("n2"), old("n3"), old("n4")],
            100,
        );
        assert_eq!((p.current, p.soaking_until), (0, None));
        assert!(p.rolling());
        assert!(!p.holds(0) && p.holds(1) && p.holds(3));
        // Canary updated and available: zone a rolls next.
        let p = run(
            &controls(0),
            &[new("n1", 50), old("n2"), old("n3"), old("n4")],
            100,
        );
        assert_eq!(p.current, 1);
        // An updated pod not ready yet keeps its wave unfinished.
        let unready = pod_on("qn1", "n1", "new", 0).build();
        let p = run(
            &controls(0),
            &[unready, old("n2"), old("n3"), old("n4")],
            100,
        );
        assert_eq!(p.current, 0);
        // Everything updated: past the last wave.
        let all = [new("n1", 1), new("n2", 1), new("n3", 1), new("n4", 1)];
        assert_eq!(run(&controls(0), &all, 100).current, 3);
    }

    #[test]
    fn the_next_wave_waits_for_the_soak() {
        let old = |n: &str| pod_on(&format!("p{n}"), n, "old", 0).ready(10).build();
        let canary = pod_on("q1", "n1", "new", 0).ready(100).build();
        let pods = [canary, old("n2"), old("n3"), old("n4")];
        let p = run(&controls(30), &pods, 110);
        assert_eq!((p.current, p.soaking_until), (1, Some(at(130))));
        assert!(!p.rolling() && p.holds(1));
        assert_eq!(p.soak_left(at(110)), Some(Duration::from_millis(20_100)));
        let p = run(&controls(30), &pods, 131);
        assert_eq!((p.current, p.soaking_until), (1, None));
        assert!(p.rolling() && !p.holds(1) && p.holds(3));
    }

    #[test]
    fn nodes_in_no_wave_are_counted_and_held() {
        let c = WaveControls {
            waves: Waves::parse("canary=true").unwrap(),
            soak: Duration::ZERO,
        };
        let np = NodeToPods::default();
        let p = progress_of_pods(
            &c,
            &nodes(),
            |n| (n == "n1").then_some(0),
            None,
            &np,
            "new",
            None,
            0,
            at(1),
        );
        assert_eq!((p.current, p.unmatched), (0, 3));
        assert!(p.holds(2));
    }

    #[test]
    fn the_current_waves_nodes_and_pods_are_split_out() {
        let pods = [
            pod_on("a", "n1", "new", 0).ready(1).build(),
            pod_on("b", "n2", "old", 0).build(),
            pod_on("c", "n3", "old", 0).build(),
            pod_on("d", "n4", "old", 0).build(),
        ];
        let np = crate::daemonset::sync::nodes_to_daemon_pods(pods.iter(), false);
        let p = progress_of_pods(
            &controls(0),
            &nodes(),
            wave_of,
            None,
            &np,
            "new",
            None,
            0,
            at(5),
        );
        let (wave_nodes, wave_pods) = current_wave(&p, &nodes(), &np);
        let names: Vec<&str> = wave_nodes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["n2", "n3"]);
        assert_eq!(wave_pods.len(), 2);
        assert!(wave_pods.get("n4").is_none());
    }
}
