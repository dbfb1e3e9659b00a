//! DaemonSet status (R41-R50): the seven counters, when a write is needed, and the requeue
//! that makes `numberAvailable` catch up once `minReadySeconds` have passed.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::jiff::Timestamp;

use super::placement::Placement;
use super::pods::{is_pod_updated, pod_order};
use crate::trim::PodRecord;

/// Mapped pods per target node (§0): the claimed pods of a DaemonSet grouped by node, in node
/// name order. Built with one sort of the pods rather than a map entry and a vector per node:
/// a sync builds it more than once over every pod of the DaemonSet.
#[derive(Debug, Default)]
pub struct NodeToPods<'a> {
    /// The pods, grouped by node in node order; a node's pods keep the order they came in.
    pods: Vec<&'a PodRecord>,
    /// Each node once, in order, with the end (exclusive) of its group in `pods`.
    nodes: Vec<(&'a str, usize)>,
}

impl<'a> NodeToPods<'a> {
    /// Groups `(node, pod)` pairs.
    pub fn from_pairs(mut pairs: Vec<(&'a str, &'a PodRecord)>) -> NodeToPods<'a> {
        // Stable: equal nodes keep their pods' order.
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = NodeToPods {
            pods: Vec::with_capacity(pairs.len()),
            nodes: Vec::new(),
        };
        for (node, pod) in pairs {
            match out.nodes.last_mut() {
                Some((last, end)) if *last == node => *end += 1,
                _ => out.nodes.push((node, out.pods.len() + 1)),
            }
            out.pods.push(pod);
        }
        out
    }

    /// The pods mapped to `node`, if any.
    pub fn get(&self, node: &str) -> Option<&[&'a PodRecord]> {
        let i = self.nodes.binary_search_by(|(n, _)| (*n).cmp(node)).ok()?;
        Some(self.group(i))
    }

    /// A lookup for many nodes: [`Lookup::get`] answers as [`NodeToPods::get`], in constant
    /// time for queries in node order (as the sorted node list asks them).
    pub fn lookup(&self) -> Lookup<'_, 'a> {
        Lookup { map: self, next: 0 }
    }

    fn group(&self, i: usize) -> &[&'a PodRecord] {
        let start = if i == 0 { 0 } else { self.nodes[i - 1].1 };
        &self.pods[start..self.nodes[i].1]
    }

    /// `(node, pods)` in node order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &[&'a PodRecord])> {
        (0..self.nodes.len()).map(|i| (self.nodes[i].0, self.group(i)))
    }

    /// Every mapped pod.
    pub fn pods(&self) -> impl Iterator<Item = &'a PodRecord> + '_ {
        self.pods.iter().copied()
    }

    /// How many nodes have pods.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// See [`NodeToPods::lookup`].
pub struct Lookup<'m, 'a> {
    map: &'m NodeToPods<'a>,
    /// Where the next query in node order would be found.
    next: usize,
}

impl<'m, 'a> Lookup<'m, 'a> {
    /// The pods mapped to `node`, if any.
    pub fn get(&mut self, node: &str) -> Option<&'m [&'a PodRecord]> {
        let nodes = &self.map.nodes;
        let after_previous = self.next == 0 || nodes[self.next - 1].0 < node;
        let at = match nodes.get(self.next) {
            Some((n, _)) if after_previous && *n == node => Ok(self.next),
            Some((n, _)) if after_previous && node < *n => Err(self.next),
            None if after_previous => Err(self.next),
            // Out of order: search.
            _ => nodes.binary_search_by(|(n, _)| (*n).cmp(node)),
        };
        match at {
            Ok(i) => {
                self.next = i + 1;
                Some(self.map.group(i))
            }
            Err(i) => {
                self.next = i;
                None
            }
        }
    }
}

/// The counters of a DaemonSet status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// R41.
    pub desired: i32,
    /// R42.
    pub current: i32,
    /// R44.
    pub misscheduled: i32,
    /// R43.
    pub ready: i32,
    /// R43.
    pub updated: i32,
    /// R43.
    pub available: i32,
    /// R45.
    pub unavailable: i32,
}

/// Computes the counters over the node list (R41-R46). Pods mapped to nodes outside the list
/// are not counted (R46).
pub fn compute(
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    generation: Option<i64>,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Counts {
    let mut c = Counts::default();
    let mut lookup = node_pods.lookup();
    for (name, placement) in nodes {
        let pods = lookup.get(name).filter(|p| !p.is_empty());
        if placement.should_run {
            c.desired += 1;
            let Some(pods) = pods else { continue };
            c.current += 1;
            // R43: only the first pod in pod order is examined.
            let Some(pod) = pods.iter().copied().min_by(|a, b| pod_order(a, b)) else {
                continue;
            };
            if pod.is_ready() {
                c.ready += 1;
                if pod.is_available(min_ready_seconds, now) {
                    c.available += 1;
                }
            }
            if is_pod_updated(pod, hash, generation) {
                c.updated += 1;
            }
        } else if pods.is_some() {
            c.misscheduled += 1;
        }
    }
    c.unavailable = c.desired - c.available;
    c
}

/// The counters the status currently shows.
pub fn current_counts(status: Option<&DaemonSetStatus>) -> Counts {
    let Some(s) = status else {
        return Counts::default();
    };
    Counts {
        desired: s.desired_number_scheduled,
        current: s.current_number_scheduled,
        misscheduled: s.number_misscheduled,
        ready: s.number_ready,
        updated: s.updated_number_scheduled.unwrap_or(0),
        available: s.number_available.unwrap_or(0),
        unavailable: s.number_unavailable.unwrap_or(0),
    }
}

/// R48: a write is skipped when the counters are unchanged and observedGeneration has caught up
/// with generation.
pub fn needs_write(ds: &DaemonSet, counts: &Counts) -> bool {
    let status = ds.status.as_ref();
    let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
    let generation = ds.metadata.generation.unwrap_or(0);
    current_counts(status) != *counts || observed < generation
}

/// The status to write: counters replaced, observedGeneration raised when the sync got that
/// far (R47), conditions and collisionCount preserved (R49).
pub fn with_counts(
    status: Option<&DaemonSetStatus>,
    counts: &Counts,
    observed_generation: Option<i64>,
) -> DaemonSetStatus {
    let mut s = status.cloned().unwrap_or_default();
    if let Some(g) = observed_generation {
        s.observed_generation = Some(g);
    }
    s.desired_number_scheduled = counts.desired;
    s.current_number_scheduled = counts.current;
    s.number_misscheduled = counts.misscheduled;
    s.number_ready = counts.ready;
    s.updated_number_scheduled = Some(counts.updated);
    s.number_available = Some(counts.available);
    s.number_unavailable = Some(counts.unavailable);
    s
}

/// R50: with minReadySeconds > 0 and ready ≠ available, sync again after minReadySeconds.
pub fn requeue_after(min_ready_seconds: i32, counts: &Counts) -> Option<Duration> {
    (min_ready_seconds > 0 && counts.ready != counts.available)
        .then(|| Duration::from_secs(min_ready_seconds as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::testutil::{ds, pod_on};

    const RUN: Placement = Placement::BOTH;
    const STAY: Placement = Placement {
        should_run: false,
        should_continue_running: true,
    };

    fn nodes(list: &[(&str, Placement)]) -> Vec<(String, Placement)> {
        list.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    fn now() -> Timestamp {
        Timestamp::from_second(10_000).unwrap()
    }

    #[test]
    fn node_to_pods_groups_by_node_in_node_order_keeping_pod_order() {
        let a = pod_on("a", "n2", "h", 1).build();
        let b = pod_on("b", "n1", "h", 1).build();
        let c = pod_on("c", "n2", "h", 1).build();
        let d = pod_on("d", "n10", "h", 1).build();
        let np = NodeToPods::from_pairs(vec![("n2", &a), ("n1", &b), ("n2", &c), ("n10", &d)]);
        let names =
            |pods: &[&PodRecord]| pods.iter().map(|p| p.name.to_string()).collect::<Vec<_>>();
        let groups: Vec<(&str, Vec<String>)> = np.iter().map(|(n, p)| (n, names(p))).collect();
        assert_eq!(
            groups,
            [
                ("n1", vec!["b".to_string()]),
                ("n10", vec!["d".to_string()]),
                ("n2", vec!["a".to_string(), "c".to_string()]),
            ]
        );
        assert_eq!(np.get("n2").map(names), Some(vec!["a".into(), "c".into()]));
        assert_eq!(np.get("n3").map(names), None);
        assert_eq!((np.len(), np.pods().count()), (3, 4));
        assert!(NodeToPods::default().is_empty());
    }

    #[test]
    fn lookup_answers_as_get_in_any_query_order() {
        let pods: Vec<PodRecord> = ["b", "d", "d", "f"]
            .iter()
            .enumerate()
            .map(|(i, n)| pod_on(&format!("p{i}"), n, "h", 1).build())
            .collect();
        let np = NodeToPods::from_pairs(
            pods.iter()
                .map(|p| (crate::daemonset::pods::target_node_name(p).unwrap(), p))
                .collect(),
        );
        let names =
            |pods: &[&PodRecord]| pods.iter().map(|p| p.name.to_string()).collect::<Vec<_>>();
        for queries in [
            vec!["a", "b", "c", "d", "e", "f", "g"],
            vec!["g", "f", "d", "a", "d", "b", "b", "e"],
            vec!["d", "a", "f", "c", "f"],
        ] {
            let mut lookup = np.lookup();
            for q in queries {
                assert_eq!(lookup.get(q).map(names), np.get(q).map(names), "node {q}");
            }
        }
    }

    #[test]
    fn r41_r42_r44_desired_current_misscheduled() {
        let a = pod_on("a", "n1", "h", 1).ready(9_000).build();
        let b = pod_on("b", "n3", "h", 1).phase("Pending").build();
        let gone = pod_on("g", "n9", "h", 1).build();
        let np = NodeToPods::from_pairs(vec![("n1", &a), ("n3", &b), ("n9", &gone)]);
        let c = compute(
            &nodes(&[
                ("n1", RUN),
                ("n2", RUN),
                ("n3", STAY),
                ("n4", Placement::NONE),
            ]),
            &np,
            "h",
            Some(1),
            0,
            now(),
        );
        assert_eq!(c.desired, 2);
        assert_eq!(c.current, 1);
        assert_eq!(c.misscheduled, 1);
        // R46: n9 is not in the node list and counts nowhere.
        assert_eq!(c.ready, 1);
    }

    #[test]
    fn r43_only_first_pod_examined_for_ready_available_updated() {
        let old_ready = pod_on("a", "n1", "old", 0).created(1).ready(9_000).build();
        let new_unready = pod_on("b", "n1", "new", 2).created(2).build();
        let np = NodeToPods::from_pairs(vec![("n1", &new_unready), ("n1", &old_ready)]);
        let c = compute(&nodes(&[("n1", RUN)]), &np, "new", Some(2), 0, now());
        assert_eq!((c.ready, c.available, c.updated), (1, 1, 0));
    }

    #[test]
    fn r43_available_honours_min_ready_seconds() {
        let p = pod_on("a", "n1", "h", 1).ready(9_995).build();
        let np = NodeToPods::from_pairs(vec![("n1", &p)]);
        let c = compute(&nodes(&[("n1", RUN)]), &np, "h", None, 10, now());
        assert_eq!((c.ready, c.available, c.unavailable), (1, 0, 1));
        assert_eq!(requeue_after(10, &c), Some(Duration::from_secs(10)));
        let c = compute(&nodes(&[("n1", RUN)]), &np, "h", None, 4, now());
        assert_eq!((c.ready, c.available, c.unavailable), (1, 1, 0));
        assert_eq!(requeue_after(4, &c), None);
    }

    #[test]
    fn r45_unavailable_is_desired_minus_available() {
        let c = compute(
            &nodes(&[("n1", RUN), ("n2", RUN)]),
            &NodeToPods::default(),
            "h",
            None,
            0,
            now(),
        );
        assert_eq!((c.desired, c.available, c.unavailable), (2, 0, 2));
    }

    #[test]
    fn r47_r49_status_preserves_conditions_and_collision_count() {
        let old = DaemonSetStatus {
            collision_count: Some(2),
            conditions: Some(vec![Default::default()]),
            observed_generation: Some(1),
            ..Default::default()
        };
        let counts = Counts {
            desired: 3,
            ..Counts::default()
        };
        let s = with_counts(Some(&old), &counts, None);
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(s.collision_count, Some(2));
        assert_eq!(s.conditions.as_ref().map(Vec::len), Some(1));
        assert_eq!(s.desired_number_scheduled, 3);
        let s = with_counts(Some(&old), &counts, Some(4));
        assert_eq!(s.observed_generation, Some(4));
    }

    #[test]
    fn r48_write_skipped_when_unchanged_and_observed() {
        let mut d = ds("x");
        d.metadata.generation = Some(2);
        let counts = Counts {
            desired: 1,
            current: 1,
            ..Counts::default()
        };
        d.status = Some(with_counts(None, &counts, Some(2)));
        assert!(!needs_write(&d, &counts));
        assert!(needs_write(
            &d,
            &Counts {
                desired: 2,
                ..counts
            }
        ));
        d.metadata.generation = Some(3);
        assert!(needs_write(&d, &counts));
    }
}
