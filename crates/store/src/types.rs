//! The values the store hands out: entries, their attributes, watch events and write ops.
//!
//! Everything here is cheap to clone (`Arc` and `Bytes` inside) because the same entry is
//! shared by the current-state map, the event ring, every list result and every watcher.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::BackendError;

/// What the API server filters lists and watches on, precomputed at write time so that a
/// filtered list never parses JSON: the object's labels and a few selected fields
/// (`metadata.name`, `spec.nodeName`, `status.phase`, ... as the indexer chooses).
///
/// Kept compact (sorted boxed slices, empty field values left out) because one is kept per
/// stored version: the current state and every event in the ring (a pod has a new one at
/// create, bind and each phase change), about 30,000 at 10,000 nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Sorted by key, keys unique.
    labels: Box<[(Box<str>, Box<str>)]>,
    /// Field paths are the indexer's static names (no allocation per object and field); only
    /// non-empty values, sorted by path.
    fields: Box<[(&'static str, Box<str>)]>,
}

/// `pairs` sorted by key, keeping the last of equal keys. Built in place rather than through a
/// map: this runs on every write, and labels (from a JSON object) come sorted already.
fn sorted_last_wins<K: Ord, V>(mut pairs: Vec<(K, V)>) -> Box<[(K, V)]> {
    // Stable: equal keys stay in the order given.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(K, V)> = Vec::with_capacity(pairs.len());
    for pair in pairs {
        match out.last_mut() {
            Some(last) if last.0 == pair.0 => *last = pair,
            _ => out.push(pair),
        }
    }
    out.into_boxed_slice()
}

impl Attrs {
    /// Attributes from labels and field values (a later duplicate key wins; an empty field
    /// value is the same as a missing one, as field selectors compare missing fields as "").
    pub fn new(
        labels: impl IntoIterator<Item = (String, String)>,
        fields: impl IntoIterator<Item = (&'static str, String)>,
    ) -> Attrs {
        let labels = labels
            .into_iter()
            .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
            .collect();
        let fields = fields
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, v.into_boxed_str()))
            .collect();
        Attrs {
            labels: sorted_last_wins(labels),
            fields: sorted_last_wins(fields),
        }
    }

    /// The value of a label, if the object has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.labels[i].1)
    }

    /// Every label, sorted by key.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The value of an indexed field; `None` when empty or not indexed.
    pub fn field(&self, path: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == path)
            .map(|(_, v)| &**v)
    }

    /// These attributes with the indexed `fields` set to the values given (an empty value
    /// removes one), for a write that changes those fields alone ([`Store::update_edited`]).
    ///
    /// [`Store::update_edited`]: crate::Store::update_edited
    pub fn with_fields(&self, fields: impl IntoIterator<Item = (&'static str, String)>) -> Attrs {
        let mut fields: Vec<_> = fields.into_iter().collect();
        let given = fields.len();
        for (path, value) in self.fields.iter() {
            if !fields[..given].iter().any(|(p, _)| p == path) {
                fields.push((path, value.to_string()));
            }
        }
        Attrs::new(self.labels().map(|(k, v)| (k.into(), v.into())), fields)
    }
}

/// Computes the [`Attrs`] of an object from its key and JSON. Runs on every write and for every
/// object loaded at open. It sees the object as the client sent it, before the store sets
/// `metadata.resourceVersion`, so it must not index the resourceVersion.
pub type Indexer = Arc<dyn Fn(&str, &serde_json::Value) -> Attrs + Send + Sync>;

/// An indexer that records nothing (tests, benchmarks, callers that never filter).
pub fn no_attrs() -> Indexer {
    Arc::new(|_, _| Attrs::default())
}

/// An indexer that records `metadata.labels` and `metadata.name`/`metadata.namespace` as fields.
pub fn labels_indexer() -> Indexer {
    Arc::new(|_, obj| {
        let meta = obj.get("metadata");
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(|l| l.as_object())
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())));
        let fields = [
            ("name", "metadata.name"),
            ("namespace", "metadata.namespace"),
        ]
        .into_iter()
        .filter_map(|(field, path)| {
            let v = meta.and_then(|m| m.get(field)).and_then(|v| v.as_str())?;
            Some((path, v.to_owned()))
        });
        Attrs::new(labels, fields)
    })
}

/// One stored object version. `json` is the serialized object with `metadata.resourceVersion`
/// equal to `rv`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: Arc<str>,
    pub rv: u64,
    pub json: Bytes,
    pub attrs: Arc<Attrs>,
    /// Where `metadata.managedFields` is in `json` (see [`Entry::managed_fields`]). Not public,
    /// so that it always describes `json`: other crates build entries with [`Entry::new`].
    pub(crate) managed_fields: Option<Span>,
}

/// A range of an entry's JSON, compact: one is kept per stored version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn of(range: Range<usize>) -> Option<Span> {
        Some(Span {
            start: range.start.try_into().ok()?,
            end: range.end.try_into().ok()?,
        })
    }
}

impl Entry {
    /// A version whose `json` is read once to find its `metadata.managedFields`.
    pub fn new(key: Arc<str>, rv: u64, json: Bytes, attrs: Arc<Attrs>) -> Entry {
        let managed_fields = managed_fields_of(&json);
        Entry {
            key,
            rv,
            json,
            attrs,
            managed_fields,
        }
    }

    /// A version whose `metadata.managedFields` is known to be at `managed_fields` of `json`
    /// (the writer put it there).
    pub(crate) fn with_managed_fields(
        key: Arc<str>,
        rv: u64,
        json: Bytes,
        attrs: Arc<Attrs>,
        managed_fields: Option<Range<usize>>,
    ) -> Entry {
        Entry {
            key,
            rv,
            json,
            attrs,
            managed_fields: managed_fields.and_then(Span::of),
        }
    }

    /// This version with other JSON (the same object converted or shown otherwise).
    pub fn with_json(&self, json: Bytes) -> Entry {
        Entry::new(self.key.clone(), self.rv, json, self.attrs.clone())
    }

    /// Where the member `metadata.managedFields` is in `json`: from its key's opening quote to
    /// its value's end. Found when the version was written, so that readers who leave the
    /// member out (control loops' watches) or read around it (edits of a pod's binding or
    /// status) do not scan it: it is most of a pod's metadata.
    pub fn managed_fields(&self) -> Option<Range<usize>> {
        self.managed_fields
            .map(|span| span.start as usize..span.end as usize)
    }

    /// Parses the stored JSON (for callers that need the object rather than the bytes).
    pub fn value(&self) -> Result<serde_json::Value, BackendError> {
        parse_json(&self.key, &self.json)
    }
}

/// Where `metadata.managedFields` is in stored JSON, read from it.
fn managed_fields_of(json: &[u8]) -> Option<Span> {
    pernode_core::json::nested_member(json, "metadata", "managedFields").and_then(Span::of)
}

/// Parses stored JSON. Goes through `str::parse` rather than the generic `from_slice` so the
/// parser runs as compiled (optimised) inside serde_json even in dev builds of this crate.
pub(crate) fn parse_json(key: &str, json: &[u8]) -> Result<serde_json::Value, BackendError> {
    let corrupt = |reason: String| BackendError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    std::str::from_utf8(json)
        .map_err(|e| corrupt(e.to_string()))?
        .parse()
        .map_err(|e: serde_json::Error| corrupt(e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// A change, as watchers see it. `entry.rv` is the rv of the write; for `Deleted`, `entry` is the
/// last stored object re-stamped with the deletion's rv. `prev` is what a filtered watch needs
/// of the state before the write (`None` for `Added`) to turn a change that leaves its selector
/// into a DELETED event, as kube-apiserver does.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventType,
    pub entry: Entry,
    pub prev: Option<Prev>,
}

/// Fixed cost of one ring event beside its JSON (the event, its key and rv, a share of the
/// attributes), for the ring's byte bound.
pub(crate) const EVENT_OVERHEAD: usize = 256;

impl Event {
    /// The bytes this event keeps alive in the ring, as the ring's byte bound counts them (the
    /// JSON may be shared with the current state or a neighbouring event: an upper bound).
    pub fn ring_bytes(&self) -> usize {
        let prev = self
            .prev
            .as_ref()
            .and_then(|p| p.json.as_ref())
            .map_or(0, |j| j.len());
        self.entry.json.len() + prev + EVENT_OVERHEAD
    }
}

/// The state before a `Modified` or `Deleted` write, as much of it as watches need: its rv and
/// attributes (a filtered watch matches them), and its JSON only when the write changed the
/// attributes, the one case where a filtered watch can turn the event into a DELETED of the
/// previous object. Keeping no other old JSON lets old versions go as soon as no event carries
/// them.
#[derive(Debug, Clone)]
pub struct Prev {
    pub rv: u64,
    pub attrs: Arc<Attrs>,
    pub json: Option<Bytes>,
}

impl Prev {
    /// The previous object stamped with `rv` (the DELETED a watch whose selector the object
    /// left receives, as kube-apiserver sends it), if the previous JSON was kept.
    pub fn object_at(&self, rv: u64) -> Option<Bytes> {
        let json = self.json.as_ref()?;
        let value = parse_json("", json).ok()?;
        crate::writer::stamp(value, rv).ok()
    }
}

/// One write in a [`crate::Store::commit`] call.
#[derive(Debug, Clone)]
pub enum Op {
    /// Fails with `AlreadyExists` if the key is present.
    Create { key: String, obj: serde_json::Value },
    /// Fails with `NotFound` if absent, `Conflict` if `expected_rv` is set and differs.
    Update {
        key: String,
        obj: serde_json::Value,
        expected_rv: Option<u64>,
    },
    /// Fails with `NotFound` if absent, `Conflict` if `expected_rv` is set and differs.
    Delete {
        key: String,
        expected_rv: Option<u64>,
    },
}

/// Counters for benchmarks: `commits` durable transactions carried `writes` successful writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub commits: u64,
    pub writes: u64,
}

/// Tuning knobs.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How many recent events the ring keeps for watches. A watch from an rv older than the
    /// ring reaches back gets `Expired` (HTTP 410), and the client relists.
    pub ring_capacity: usize,
    /// Upper bound on the bytes the ring keeps alive (each event's JSON plus a fixed
    /// overhead, see [`Event::ring_bytes`]); the oldest events go first, whichever bound is
    /// reached. Bounds the memory of history by size rather than by write rate.
    pub ring_bytes: usize,
    /// Upper bound on writes per durable transaction, so one huge burst does not delay the
    /// first acknowledgements of the burst indefinitely.
    pub max_batch: usize,
    /// Fields ([`Attrs::field`] paths) with a reverse index, for
    /// [`crate::Store::list_field_equals`]: by default `spec.nodeName`, the pods of a node, as
    /// kube-apiserver's watch cache indexes pods by it.
    pub indexed_fields: Vec<&'static str>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            ring_capacity: 100_000,
            ring_bytes: 32 << 20,
            max_batch: 10_000,
            indexed_fields: vec!["spec.nodeName"],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_look_up_labels_and_fields_and_drop_empty_fields() {
        let attrs = Attrs::new(
            [
                ("tier".to_string(), "web".to_string()),
                ("app".to_string(), "x".to_string()),
                ("empty".to_string(), String::new()),
            ],
            [
                ("spec.nodeName", "n1".to_string()),
                ("status.podIP", String::new()),
            ],
        );
        assert_eq!(attrs.label("app"), Some("x"));
        assert_eq!(attrs.label("tier"), Some("web"));
        // An empty label value is still a label (`empty` exists, `missing` does not).
        assert_eq!(attrs.label("empty"), Some(""));
        assert_eq!(attrs.label("missing"), None);
        assert_eq!(
            attrs.labels().map(|(k, _)| k).collect::<Vec<_>>(),
            ["app", "empty", "tier"]
        );
        assert_eq!(attrs.field("spec.nodeName"), Some("n1"));
        assert_eq!(attrs.field("status.podIP"), None);
        assert_eq!(attrs.fields.len(), 1);
    }

    #[test]
    fn with_fields_sets_replaces_or_removes_fields() {
        let attrs = Attrs::new(
            [("app".to_string(), "x".to_string())],
            [
                ("spec.nodeName", "n1".to_string()),
                ("status.phase", "Running".to_string()),
            ],
        );
        let moved = attrs.with_fields([("spec.nodeName", "n2".to_string())]);
        assert_eq!(moved.field("spec.nodeName"), Some("n2"));
        assert_eq!(moved.field("status.phase"), Some("Running"));
        assert_eq!(moved.label("app"), Some("x"));
        assert_eq!(
            attrs.with_fields([
                ("status.podIP", "10.0.0.1".to_string()),
                ("status.phase", String::new()),
            ]),
            Attrs::new(
                [("app".to_string(), "x".to_string())],
                [
                    ("spec.nodeName", "n1".to_string()),
                    ("status.podIP", "10.0.0.1".to_string()),
                ],
            )
        );
    }

    #[test]
    fn a_later_duplicate_key_wins() {
        let attrs = Attrs::new(
            [
                ("b".to_string(), "1".to_string()),
                ("a".to_string(), "first".to_string()),
                ("a".to_string(), "last".to_string()),
            ],
            [
                ("spec.nodeName", "n1".to_string()),
                ("spec.nodeName", "n2".to_string()),
            ],
        );
        assert_eq!(
            attrs.labels().collect::<Vec<_>>(),
            [("a", "last"), ("b", "1")]
        );
        assert_eq!(attrs.field("spec.nodeName"), Some("n2"));
        assert_eq!(attrs.fields.len(), 1);
    }
}
