//! pernode's rollout controls in the rolling update (`pernode_core::rollout`): pause and
//! partition (waves: `super::waves`). Upstream's DaemonSet has neither; they follow what
//! StatefulSet's partition and Deployment's pause do, on node names instead of ordinals:
//!
//! - **Paused**: the rolling update plans nothing (replacements already under way finish in
//!   the per-node pass). A node that needs a pod meanwhile gets the revision most live pods
//!   run, so pausing a rollout half way does not spread the new revision to new nodes.
//! - **Partition N**: the first N desired nodes in name order keep their old pod; the rolling
//!   update neither deletes it nor surges next to it. A held node that needs a pod gets the
//!   old revision most of the old pods run. Lowering N releases nodes to the rolling update.
//!
//! Everything here runs only when a control is set: an uncontrolled DaemonSet's sync does no
//! extra work.

use foldhash::{HashMap, HashMapExt, HashSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use pernode_core::rollout::RolloutControls;

use super::history::revision_hash;
use super::placement::Placement;
use super::pods::pod_hash;
use crate::trim::PodRecord;

/// The last node a partition holds on the old revision (nodes sorted by name, as the
/// controller lists them): held are the desired nodes up to and including it. `None` holds
/// nothing.
pub fn partition_boundary<'a>(
    nodes: &'a [(String, Placement)],
    controls: &RolloutControls,
) -> Option<&'a str> {
    let partition = controls.partition?;
    let desired =
        i32::try_from(nodes.iter().filter(|(_, p)| p.should_run).count()).unwrap_or(i32::MAX);
    let held = usize::try_from(partition.resolve(desired)).unwrap_or(0);
    if held == 0 {
        return None;
    }
    nodes
        .iter()
        .filter(|(_, p)| p.should_run)
        .nth(held - 1)
        .map(|(n, _)| n.as_str())
}

/// Whether a partition with this boundary holds `node` on the old revision.
pub fn is_held(node: &str, boundary: Option<&str>) -> bool {
    boundary.is_some_and(|b| node <= b)
}

/// The hash most live (not terminating) pods carry, leaving out `except`; ties go to the
/// lowest hash, so every sync picks the same one.
pub fn majority_hash<'a>(
    pods: impl IntoIterator<Item = &'a PodRecord>,
    except: Option<&str>,
) -> Option<&'a str> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for pod in pods {
        if pod.deleting {
            continue;
        }
        if let Some(h) = pod_hash(pod).filter(|h| !h.is_empty() && Some(*h) != except) {
            *counts.entry(h).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(h, _)| h)
}

/// The pod template a revision holds: its data's `spec.template` without the `$patch`
/// directive the data carries (see `history::revision_patch`).
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Some(map) = template.as_object_mut() {
        map.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

/// Pods to create from an older revision instead of the current one.
#[derive(Debug, Clone)]
pub struct OlderCreates {
    /// The older revision's hash, labelled on its pods.
    pub hash: String,
    /// Its pod template.
    pub template: PodTemplateSpec,
    /// The nodes whose new pod is made from it.
    pub nodes: HashSet<String>,
}

/// The nodes the rollout keeps on their old revision: a partition's, and the waves' (see
/// `super::waves`) not reached yet.
#[derive(Clone, Copy, Default)]
pub struct Held<'a> {
    /// The partition's boundary ([`partition_boundary`]).
    pub boundary: Option<&'a str>,
    /// Whether the waves hold a node, if the DaemonSet has waves.
    pub by_wave: Option<&'a dyn Fn(&str) -> bool>,
}

impl Held<'_> {
    /// Whether `node` is held.
    pub fn holds(&self, node: &str) -> bool {
        is_held(node, self.boundary) || self.by_wave.is_some_and(|w| w(node))
    }

    /// Whether anything may be held.
    pub fn any(&self) -> bool {
        self.boundary.is_some() || self.by_wave.is_some()
    }
}

/// Which of `nodes_to_create` get an older revision's pod: every one while paused (when most
/// pods run an older revision), the held ones under a partition or waves (when old pods
/// remain). `None` when all get the current revision, always so without a control.
pub fn older_creates<'a>(
    controls: &RolloutControls,
    held: Held<'_>,
    nodes_to_create: &[String],
    pods: impl IntoIterator<Item = &'a PodRecord> + Clone,
    current_hash: &str,
    old: &[ControllerRevision],
) -> Option<OlderCreates> {
    if nodes_to_create.is_empty() || !(controls.paused || held.any()) {
        return None;
    }
    let (hash, nodes): (&str, HashSet<String>) = match majority_hash(pods.clone(), None) {
        Some(h) if controls.paused && h != current_hash => {
            (h, nodes_to_create.iter().cloned().collect())
        }
        _ => {
            let held: HashSet<String> = nodes_to_create
                .iter()
                .filter(|n| held.holds(n))
                .cloned()
                .collect();
            if held.is_empty() {
                return None;
            }
            (majority_hash(pods, Some(current_hash))?, held)
        }
    };
    let rev = old.iter().find(|r| revision_hash(r) == Some(hash))?;
    Some(OlderCreates {
        hash: hash.to_owned(),
        template: template_of(rev)?,
        nodes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::history::{new_revision, revision_patch};
    use crate::daemonset::testutil::{ds, pod_on};
    use pernode_core::rollout::Partition;

    const RUN: Placement = Placement::BOTH;
    const NO: Placement = Placement::NONE;

    fn controls(paused: bool, partition: Option<Partition>) -> RolloutControls {
        RolloutControls {
            paused,
            partition,
            ..RolloutControls::default()
        }
    }

    #[test]
    fn a_partition_holds_the_lowest_named_desired_nodes() {
        let nodes: Vec<(String, Placement)> = vec![
            ("a".into(), NO),
            ("b".into(), RUN),
            ("c".into(), RUN),
            ("d".into(), RUN),
        ];
        let two = controls(false, Some(Partition::Count(2)));
        assert_eq!(partition_boundary(&nodes, &two), Some("c"));
        assert!(is_held("b", Some("c")) && is_held("c", Some("c")) && !is_held("d", Some("c")));
        let zero = controls(false, Some(Partition::Count(0)));
        assert_eq!(partition_boundary(&nodes, &zero), None);
        let all = controls(false, Some(Partition::Percent(100)));
        assert_eq!(partition_boundary(&nodes, &all), Some("d"));
        assert_eq!(partition_boundary(&nodes, &controls(true, None)), None);
    }

    #[test]
    fn the_majority_hash_ignores_terminating_pods_and_breaks_ties_low() {
        let pods = [
            pod_on("a", "n1", "old", 1).build(),
            pod_on("b", "n2", "old", 1).build(),
            pod_on("c", "n3", "new", 2).build(),
            pod_on("d", "n4", "new", 2).terminating().build(),
        ];
        assert_eq!(majority_hash(&pods, None), Some("old"));
        assert_eq!(majority_hash(&pods, Some("old")), Some("new"));
        let tie = [
            pod_on("a", "n1", "y", 1).build(),
            pod_on("b", "n2", "x", 1).build(),
        ];
        assert_eq!(majority_hash(&tie, None), Some("x"));
    }

    fn revision_of(image: &str, hash: &str) -> ControllerRevision {
        let mut d = ds("x");
        d.spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some(image.into());
        new_revision(&d, &revision_patch(&d).unwrap(), hash, 1).unwrap()
    }

    #[test]
    fn paused_rollouts_create_what_most_pods_run() {
        let old = [revision_of("nginx:old", "old")];
        let pods = [
            pod_on("a", "n1", "old", 1).build(),
            pod_on("b", "n2", "old", 1).build(),
            pod_on("c", "n3", "new", 2).build(),
        ];
        let joining = vec!["n4".to_string()];
        let paused = controls(true, None);
        let older = older_creates(&paused, Held::default(), &joining, &pods, "new", &old).unwrap();
        assert_eq!(older.hash, "old");
        assert!(older.nodes.contains("n4"));
        let image = older.template.spec.as_ref().unwrap().containers[0]
            .image
            .as_deref();
        assert_eq!(image, Some("nginx:old"));
        // Most pods updated: the current revision.
        let mostly_new = [
            pod_on("a", "n1", "old", 1).build(),
            pod_on("b", "n2", "new", 2).build(),
            pod_on("c", "n3", "new", 2).build(),
        ];
        assert!(
            older_creates(&paused, Held::default(), &joining, &mostly_new, "new", &old).is_none()
        );
        // Not paused, no partition: never.
        assert!(
            older_creates(
                &controls(false, None),
                Held::default(),
                &joining,
                &pods,
                "new",
                &old
            )
            .is_none()
        );
    }

    fn at(boundary: &str) -> Held<'_> {
        Held {
            boundary: Some(boundary),
            by_wave: None,
        }
    }

    #[test]
    fn held_nodes_get_the_old_revision_others_the_current() {
        let old = [revision_of("nginx:old", "old")];
        let pods = [
            pod_on("a", "n1", "old", 1).build(),
            pod_on("c", "n3", "new", 2).build(),
            pod_on("d", "n4", "new", 2).build(),
        ];
        let creates = vec!["n2".to_string(), "n5".to_string()];
        let two = controls(false, Some(Partition::Count(2)));
        let older = older_creates(&two, at("n2"), &creates, &pods, "new", &old).unwrap();
        assert_eq!(older.hash, "old");
        assert_eq!(older.nodes.len(), 1);
        assert!(older.nodes.contains("n2"));
        // No old pods left: the current revision everywhere.
        let updated = [pod_on("c", "n3", "new", 2).build()];
        assert!(older_creates(&two, at("n2"), &creates, &updated, "new", &old).is_none());
    }
}
