//! ControllerRevisions of a DaemonSet (R83-R93): the revision data (upstream `getPatch`, byte
//! for byte), the hash naming a revision, which revision is current, how revisions are reused,
//! renumbered and deduplicated, and which old ones are cleaned up.
//!
//! Only the planning lives here; the API calls are made by [`super::sync`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::Value;

use super::gojson;
use super::pods::controller_ref;
use super::{CONTROLLER_REVISION_HASH_LABEL, Error};

/// The alphabet upstream's `rand.SafeEncodeString` maps characters onto (no vowels, no
/// look-alike digits, so hashes never spell words).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Upstream `rand.SafeEncodeString`: every character replaced by `alphabet[c % 27]`.
pub fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| SAFE_ALPHABET[(c as usize) % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// FNV-1a, 32 bits.
fn fnv32a(chunks: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for chunk in chunks {
        for b in *chunk {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The revision data of a DaemonSet (R85): `{"spec":{"template":<template>}}` with
/// `"$patch":"replace"` inside the template, as Go's encoder writes it. kubectl builds the
/// same bytes from the DaemonSet it reads to decide "skipped rollback" (R95, R100).
pub fn revision_patch(ds: &DaemonSet) -> Result<String, Error> {
    let template = ds
        .spec
        .as_ref()
        .map(|s| serde_json::to_value(&s.template))
        .transpose()?
        .unwrap_or_else(|| Value::Object(Default::default()));
    let mut template = gojson::normalize_pod_template(&template);
    if let Value::Object(map) = &mut template {
        map.insert("$patch".to_owned(), Value::String("replace".to_owned()));
    }
    let patch = serde_json::json!({ "spec": { "template": template } });
    Ok(gojson::to_string(&patch))
}

/// The hash of a DaemonSet's template (R87): FNV-32a over the revision data, then the
/// collision count as 8 little-endian bytes (4 used, as upstream's `PutUint32` into an 8-byte
/// buffer) when set; the decimal value is mapped onto the safe alphabet.
pub fn compute_hash(patch: &str, collision_count: Option<i32>) -> String {
    let sum = match collision_count {
        Some(c) => {
            let mut buf = [0u8; 8];
            buf[..4].copy_from_slice(&(c as u32).to_le_bytes());
            fnv32a(&[patch.as_bytes(), &buf])
        }
        None => fnv32a(&[patch.as_bytes()]),
    };
    safe_encode(&sum.to_string())
}

/// The revision data as Go bytes (the stored data re-printed, so a server that re-encodes
/// JSON differently still compares equal).
pub fn revision_data_string(rev: &ControllerRevision) -> Option<String> {
    rev.data.as_ref().map(|d| gojson::to_string(&d.0))
}

/// Whether a revision holds the DaemonSet's current template (R83: data equals the patch).
pub fn matches(patch: &str, rev: &ControllerRevision) -> bool {
    revision_data_string(rev).as_deref() == Some(patch)
}

/// The hash label of a revision.
pub fn revision_hash(rev: &ControllerRevision) -> Option<&str> {
    rev.metadata
        .labels
        .as_ref()?
        .get(CONTROLLER_REVISION_HASH_LABEL)
        .map(String::as_str)
}

/// The revision to create when none is current (R86): named `<ds>-<hash>`, template labels
/// plus the hash label, the DaemonSet's annotations, one controller ownerReference.
pub fn new_revision(
    ds: &DaemonSet,
    patch: &str,
    hash: &str,
    revision: i64,
) -> Result<ControllerRevision, Error> {
    let name = ds
        .metadata
        .name
        .as_deref()
        .ok_or(Error::Missing("metadata.name"))?;
    let mut labels: BTreeMap<String, String> = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH_LABEL.to_owned(), hash.to_owned());
    Ok(ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![controller_ref(ds)?]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(serde_json::from_str(patch)?)),
        revision,
    })
}

/// The highest `revision` among `revs`, 0 when empty.
pub fn max_revision<'a>(revs: impl IntoIterator<Item = &'a ControllerRevision>) -> i64 {
    revs.into_iter().map(|r| r.revision).max().unwrap_or(0)
}

/// Revisions split into current (matching the template) and old (R83).
#[derive(Debug, Default, Clone)]
pub struct Classified {
    /// Revisions whose data equals the current patch; more than one is a duplicate (R89).
    pub current: Vec<ControllerRevision>,
    /// Every other claimed revision.
    pub old: Vec<ControllerRevision>,
}

/// Splits claimed revisions into current and old (R83).
pub fn classify(patch: &str, revisions: Vec<ControllerRevision>) -> Classified {
    let (current, old) = revisions.into_iter().partition(|r| matches(patch, r));
    Classified { current, old }
}

/// What to do with several current revisions (R89): keep the highest `revision`, delete the
/// rest.
pub fn dedup_current(
    mut current: Vec<ControllerRevision>,
) -> Option<(ControllerRevision, Vec<ControllerRevision>)> {
    // Highest revision first; name breaks ties so the choice is stable across syncs.
    current.sort_by(|a, b| {
        b.revision
            .cmp(&a.revision)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let mut it = current.into_iter();
    let keep = it.next()?;
    Some((keep, it.collect()))
}

/// The revision number the current revision must carry (R88): max(old) + 1 when it is below,
/// `None` when it is already at or above.
pub fn renumber_to(current: &ControllerRevision, old: &[ControllerRevision]) -> Option<i64> {
    let want = max_revision(old) + 1;
    (current.revision < want).then_some(want)
}

/// The old revisions to delete after a sync (R93): beyond `limit`, in ascending `revision`
/// order, skipping revisions whose hash is on a live pod.
pub fn revisions_to_clean_up<'a>(
    old: &'a [ControllerRevision],
    limit: i32,
    live_hashes: &BTreeSet<String>,
) -> Vec<&'a ControllerRevision> {
    let mut to_kill = old.len() as i64 - i64::from(limit.max(0));
    if to_kill <= 0 {
        return Vec::new();
    }
    let mut sorted: Vec<&ControllerRevision> = old.iter().collect();
    sorted.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let mut out = Vec::new();
    for rev in sorted {
        if to_kill <= 0 {
            break;
        }
        if revision_hash(rev).is_some_and(|h| live_hashes.contains(h)) {
            continue;
        }
        out.push(rev);
        to_kill -= 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::testutil::ds;

    fn rev(name: &str, revision: i64, hash: &str, data: &str) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(CONTROLLER_REVISION_HASH_LABEL.to_owned(), hash.to_owned())].into()),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(serde_json::from_str(data).unwrap())),
            revision,
        }
    }

    #[test]
    fn r85_revision_data_is_go_bytes_with_patch_replace() {
        let d = ds("nginx");
        assert_eq!(
            revision_patch(&d).unwrap(),
            concat!(
                r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"#,
                r#""labels":{"app":"nginx"}},"spec":{"containers":[{"image":"nginx","name":"c","#,
                r#""resources":{}}]}}}}"#
            )
        );
    }

    #[test]
    fn r85_revision_data_matches_kubectl_for_defaulted_template() {
        // The seed manifest as an API server returns it after defaulting. No field is a Go
        // zero value, so Go's encoder keeps them all; only `$patch` is added and keys sorted.
        let template: k8s_openapi::api::core::v1::PodTemplateSpec =
            serde_json::from_value(serde_json::json!({
              "metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
              "spec": {
                "containers": [{
                  "image": "m.daocloud.io/docker.io/library/nginx:alpine",
                  "imagePullPolicy": "IfNotPresent", "name": "nginx", "resources": {},
                  "terminationMessagePath": "/dev/termination-log",
                  "terminationMessagePolicy": "File"}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                "schedulerName": "default-scheduler", "securityContext": {},
                "terminationGracePeriodSeconds": 30}
            }))
            .unwrap();
        let mut d = ds("nginx");
        d.spec.as_mut().unwrap().template = template;
        assert_eq!(
            revision_patch(&d).unwrap(),
            concat!(
                r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"nginx"}},"#,
                r#""spec":{"containers":[{"image":"m.daocloud.io/docker.io/library/nginx:alpine","imagePullPolicy":"IfNotPresent","#,
                r#""name":"nginx","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"#,
                r#""dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"#,
                r#""terminationGracePeriodSeconds":30}}}}"#
            )
        );
    }

    #[test]
    fn r87_hash_is_deterministic_and_changes_with_template_and_collision_count() {
        let d = ds("nginx");
        let p = revision_patch(&d).unwrap();
        let h = compute_hash(&p, None);
        assert_eq!(h, compute_hash(&p, None));
        assert!(h.len() <= 10 && h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_ne!(h, compute_hash(&p, Some(1)));
        assert_ne!(compute_hash(&p, Some(1)), compute_hash(&p, Some(2)));
        let mut d2 = ds("nginx");
        d2.spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("nginx:1.27".into());
        assert_ne!(h, compute_hash(&revision_patch(&d2).unwrap(), None));
    }

    #[test]
    fn safe_encode_matches_upstream() {
        // '0' is 48: 48 % 27 = 21 -> '4'; '9' is 57: 57 % 27 = 3 -> 'f'.
        assert_eq!(safe_encode("09"), "4f");
    }

    #[test]
    fn r86_new_revision_name_labels_annotations_owner() {
        let mut d = ds("nginx");
        d.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("kubernetes.io/change-cause".into(), "why".into());
        let p = revision_patch(&d).unwrap();
        let r = new_revision(&d, &p, "abc", 1).unwrap();
        assert_eq!(r.metadata.name.as_deref(), Some("nginx-abc"));
        let labels = r.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app"], "nginx");
        assert_eq!(labels[CONTROLLER_REVISION_HASH_LABEL], "abc");
        assert_eq!(
            r.metadata.annotations.as_ref().unwrap()["kubernetes.io/change-cause"],
            "why"
        );
        let owners = r.metadata.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].block_owner_deletion, Some(true));
        assert_eq!(r.revision, 1);
        assert!(matches(&p, &r));
    }

    #[test]
    fn r83_classify_current_by_data() {
        let d = ds("nginx");
        let p = revision_patch(&d).unwrap();
        let revs = vec![rev("a", 1, "a", r#"{"spec":{}}"#), rev("b", 2, "b", &p)];
        let c = classify(&p, revs);
        assert_eq!(c.current.len(), 1);
        assert_eq!(c.old.len(), 1);
        assert_eq!(c.current[0].metadata.name.as_deref(), Some("b"));
    }

    #[test]
    fn r88_current_revision_renumbered_above_old() {
        let cur = rev("a", 1, "a", "{}");
        let old = vec![rev("b", 2, "b", "{}")];
        assert_eq!(renumber_to(&cur, &old), Some(3));
        let cur = rev("a", 5, "a", "{}");
        assert_eq!(renumber_to(&cur, &old), None);
        assert_eq!(max_revision(&Vec::new()) + 1, 1);
    }

    #[test]
    fn r89_duplicates_keep_highest_revision() {
        let (keep, dups) = dedup_current(vec![
            rev("a", 1, "a", "{}"),
            rev("c", 4, "c", "{}"),
            rev("b", 2, "b", "{}"),
        ])
        .unwrap();
        assert_eq!(keep.metadata.name.as_deref(), Some("c"));
        assert_eq!(dups.len(), 2);
    }

    #[test]
    fn r93_cleanup_oldest_beyond_limit_skipping_live_hashes() {
        let old = vec![
            rev("r3", 3, "h3", "{}"),
            rev("r1", 1, "h1", "{}"),
            rev("r2", 2, "h2", "{}"),
            rev("r4", 4, "h4", "{}"),
        ];
        let live: BTreeSet<String> = ["h1".to_owned()].into();
        let names = |v: Vec<&ControllerRevision>| {
            v.into_iter()
                .map(|r| r.metadata.name.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(revisions_to_clean_up(&old, 2, &live)),
            vec!["r2", "r3"]
        );
        assert_eq!(
            names(revisions_to_clean_up(&old, 0, &live)),
            vec!["r2", "r3", "r4"]
        );
        assert!(revisions_to_clean_up(&old, 10, &live).is_empty());
    }
}
