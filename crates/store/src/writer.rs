//! The single writer thread: group commit.
//!
//! Concurrent writers queue requests on a channel. The writer takes everything pending as one
//! batch, checks each op against the current state plus the earlier ops of the batch, assigns
//! consecutive rvs, makes the batch durable in one backend transaction (one fsync for the whole
//! batch, which is what makes thousands of concurrent writes per second possible), then applies
//! it to memory, appends the events to the ring, wakes watchers, and only then answers.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::{Backend, Write};
use crate::error::StoreError;
use crate::store::{Shared, State};
use crate::types::{Attrs, Entry, Event, EventType, Prev, StoreOptions};

/// A write whose attrs were already computed by the caller.
pub(crate) struct Prepared {
    pub key: Arc<str>,
    pub kind: PreparedKind,
}

pub(crate) enum PreparedKind {
    Create {
        obj: Result<Unstamped, StoreError>,
        attrs: Arc<Attrs>,
    },
    Update {
        obj: Result<Unstamped, StoreError>,
        attrs: Arc<Attrs>,
        expected_rv: Option<u64>,
    },
    Delete {
        expected_rv: Option<u64>,
    },
}

pub(crate) type Reply = oneshot::Sender<Vec<Result<Entry, StoreError>>>;

pub(crate) enum Request {
    Write {
        ops: Vec<Prepared>,
        reply: Reply,
    },
    /// Stop after the requests queued before this one; `done` fires once the backend is closed.
    Close {
        done: Option<oneshot::Sender<()>>,
    },
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    backend: Box<dyn Backend>,
    rx: mpsc::UnboundedReceiver<Request>,
    wake: watch::Sender<u64>,
    /// rv of the last durable write; only this thread advances it.
    rv: u64,
    ring_capacity: usize,
    ring_bytes: usize,
    max_batch: usize,
}

/// One batch being assembled.
struct Batch {
    requests: Vec<(Reply, Vec<Result<Entry, StoreError>>)>,
    events: Vec<Event>,
    writes: Vec<Write>,
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        backend: Box<dyn Backend>,
        rx: mpsc::UnboundedReceiver<Request>,
        wake: watch::Sender<u64>,
        rv: u64,
        opts: &StoreOptions,
    ) -> Writer {
        Writer {
            shared,
            backend,
            rx,
            wake,
            rv,
            // A zero-sized ring would make every watch expire at once; keep at least one event.
            ring_capacity: opts.ring_capacity.max(1),
            ring_bytes: opts.ring_bytes,
            max_batch: opts.max_batch.max(1),
        }
    }

    pub fn run(mut self) {
        let mut pending: Vec<(Vec<Prepared>, Reply)> = Vec::new();
        let closing = loop {
            let Some(first) = self.rx.blocking_recv() else {
                // Every sender is gone (cannot normally happen: Inner's Drop sends Close first).
                break None;
            };
            let mut closing = None;
            let mut ops = 0;
            let mut take = |req: Request, closing: &mut Option<_>, ops: &mut usize| match req {
                Request::Write { ops: o, reply } => {
                    *ops += o.len();
                    pending.push((o, reply));
                }
                Request::Close { done } => *closing = Some(done),
            };
            take(first, &mut closing, &mut ops);
            // Drain what is already queued: these writers arrived while the previous batch was
            // being fsynced, and they share the next fsync.
            while closing.is_none() && ops < self.max_batch {
                match self.rx.try_recv() {
                    Ok(req) => take(req, &mut closing, &mut ops),
                    Err(_) => break,
                }
            }
            self.process(std::mem::take(&mut pending));
            if closing.is_some() {
                break closing;
            }
        };
        // Requests queued after Close are dropped with the receiver; their callers see Closed.
        self.rx.close();
        drop(self.rx);
        // Close the database before telling anyone we are closed, so a reopen finds it free.
        drop(self.backend);
        drop(self.wake);
        tracing::debug!(rv = self.rv, "store writer stopped");
        if let Some(Some(done)) = closing {
            let _ = done.send(());
        }
    }

    fn process(&mut self, requests: Vec<(Vec<Prepared>, Reply)>) {
        let mut batch = Batch {
            requests: Vec::with_capacity(requests.len()),
            events: Vec::new(),
            writes: Vec::new(),
        };
        let mut next = self.rv;
        let t0 = Instant::now();
        {
            // Only this thread mutates the state, so a read guard is a stable view for the whole
            // check phase, and it blocks no reader.
            let st = self.shared.state.read();
            // The state of keys written earlier in this batch (None: deleted).
            let mut overlay: HashMap<Arc<str>, Option<Entry>> = HashMap::new();
            for (ops, reply) in requests {
                let mut results = Vec::with_capacity(ops.len());
                for op in ops {
                    results.push(check_and_stage(
                        &st,
                        &mut overlay,
                        &mut batch,
                        &mut next,
                        op,
                    ));
                }
                batch.requests.push((reply, results));
            }
        }

        let t1 = t0.elapsed();
        if !batch.writes.is_empty() {
            let r = self.backend.commit(next, &batch.writes);
            let commit_time = t0.elapsed() - t1;
            tracing::trace!(
                writes = batch.writes.len(),
                check = ?t1,
                commit = ?commit_time,
                "store batch"
            );
            if let Err(e) = r {
                tracing::error!(error = %e, "store commit failed; failing its batch");
                // Nothing was applied: memory and rv stay as they were, so the failed writes are
                // simply not there, as for a client that never got an answer.
                let err = StoreError::Io(Arc::new(e));
                for (_, results) in &mut batch.requests {
                    for r in results.iter_mut() {
                        if r.is_ok() {
                            *r = Err(err.clone());
                        }
                    }
                }
                answer(batch.requests);
                return;
            }
            let n = batch.events.len() as u64;
            let metrics = &self.shared.metrics;
            metrics.commit_duration.observe(commit_time.as_secs_f64());
            metrics.batch_writes.observe(batch.writes.len() as f64);
            {
                let mut st = self.shared.state.write();
                apply(&mut st, batch.events, self.ring_capacity, self.ring_bytes);
                st.rv = next;
            }
            self.rv = next;
            self.shared.commits.fetch_add(1, Ordering::Relaxed);
            self.shared.writes.fetch_add(n, Ordering::Relaxed);
            self.wake.send_replace(next);
        }
        answer(batch.requests);
    }
}

fn answer(requests: Vec<(Reply, Vec<Result<Entry, StoreError>>)>) {
    for (reply, results) in requests {
        // The caller may have given up (request cancelled); the write stands regardless.
        let _ = reply.send(results);
    }
}

/// Applies committed events to the map and the ring, dropping the oldest events past either
/// bound (the newest event always stays, so a watch from the current rv is always valid).
pub(crate) fn apply(st: &mut State, events: Vec<Event>, capacity: usize, max_bytes: usize) {
    for ev in events {
        let key = &ev.entry.key;
        match ev.kind {
            EventType::Deleted => {
                if let Some(old) = st.map.remove(key) {
                    st.index.update(key, Some(&old.attrs), None);
                }
            }
            EventType::Added | EventType::Modified => {
                let old = st.map.insert(key.clone(), ev.entry.clone());
                st.index
                    .update(key, old.as_ref().map(|e| &e.attrs), Some(&ev.entry.attrs));
            }
        }
        st.ring_bytes += ev.ring_bytes();
        st.ring.push_back(ev);
        while st.ring.len() > 1 && (st.ring.len() > capacity || st.ring_bytes > max_bytes) {
            let Some(old) = st.ring.pop_front() else {
                break;
            };
            st.ring_bytes -= old.ring_bytes();
            st.compacted = old.entry.rv;
        }
    }
}

/// Checks one op against the state as of the earlier ops, and stages its event and write.
fn check_and_stage(
    st: &State,
    overlay: &mut HashMap<Arc<str>, Option<Entry>>,
    batch: &mut Batch,
    next: &mut u64,
    op: Prepared,
) -> Result<Entry, StoreError> {
    let current = match overlay.get(&op.key) {
        Some(staged) => staged.clone(),
        None => st.map.get(&op.key).cloned(),
    };
    let rv = *next + 1;
    let (kind, entry, prev) = match op.kind {
        PreparedKind::Create { obj, attrs } => {
            if current.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            let entry = obj?.into_entry(op.key, rv, attrs);
            (EventType::Added, entry, None)
        }
        PreparedKind::Update {
            obj,
            attrs,
            expected_rv,
        } => {
            let prev = precondition(current, expected_rv)?;
            let obj = obj?;
            // Most writes keep the attributes: share them with the previous version, and keep
            // the previous JSON only when a filtered watch may need it.
            let (attrs, prev_json) = if attrs == prev.attrs {
                (prev.attrs.clone(), None)
            } else {
                (attrs, Some(prev.json.clone()))
            };
            // Reuse the map's key allocation for the new version.
            let entry = obj.into_entry(prev.key.clone(), rv, attrs);
            let prev = Prev {
                rv: prev.rv,
                attrs: prev.attrs,
                json: prev_json,
            };
            (EventType::Modified, entry, Some(prev))
        }
        PreparedKind::Delete { expected_rv } => {
            let prev = precondition(current, expected_rv)?;
            let entry = restamped(&prev, rv)?;
            let prev = Prev {
                rv: prev.rv,
                attrs: prev.attrs,
                json: None,
            };
            (EventType::Deleted, entry, Some(prev))
        }
    };
    *next = rv;
    match kind {
        EventType::Deleted => {
            batch.writes.push(Write::Delete {
                key: entry.key.clone(),
            });
            overlay.insert(entry.key.clone(), None);
        }
        EventType::Added | EventType::Modified => {
            batch.writes.push(Write::Put {
                key: entry.key.clone(),
                rv,
                value: entry.json.clone(),
            });
            overlay.insert(entry.key.clone(), Some(entry.clone()));
        }
    }
    batch.events.push(Event {
        kind,
        entry: entry.clone(),
        prev,
    });
    Ok(entry)
}

fn precondition(current: Option<Entry>, expected_rv: Option<u64>) -> Result<Entry, StoreError> {
    let current = current.ok_or(StoreError::NotFound)?;
    match expected_rv {
        Some(rv) if rv != current.rv => Err(StoreError::Conflict {
            current_rv: current.rv,
        }),
        _ => Ok(current),
    }
}

/// `entry`'s object as version `rv` (a deletion's): its bytes re-stamped in place, or, when its
/// resourceVersion is not found there exactly once, its tree stamped.
pub(crate) fn restamped(entry: &Entry, rv: u64) -> Result<Entry, StoreError> {
    let (key, attrs) = (entry.key.clone(), entry.attrs.clone());
    Ok(
        match Unstamped::from_stored(&entry.json, entry.rv, entry.managed_fields()) {
            Some(unstamped) => unstamped.into_entry(key, rv, attrs),
            None => Entry::new(key, rv, stamp(entry.value()?, rv)?, attrs),
        },
    )
}

/// Sets `metadata.resourceVersion` and serializes.
pub(crate) fn stamp(obj: Value, rv: u64) -> Result<Bytes, StoreError> {
    Ok(Unstamped::new(obj)?.stamp(rv))
}

/// Placeholder resourceVersion written while serializing; the writer puts the real one in its
/// place. Control characters make it unlikely in user data; if an object does contain it, the
/// splice is not used for that object (see [`Unstamped::new`]).
const RV_PLACEHOLDER: &str = "\0pernode-rv\0";

/// Finds the placeholder as serialized: a JSON string, quotes included.
static RV_PLACEHOLDER_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| placeholder_finder(RV_PLACEHOLDER));

/// A finder of `placeholder` as serialized: a JSON string, quotes included.
fn placeholder_finder(placeholder: &str) -> memchr::memmem::Finder<'static> {
    let json = Value::String(placeholder.into()).to_string();
    memchr::memmem::Finder::new(json.as_bytes()).into_owned()
}

/// Placeholder value of `metadata.managedFields` while the rest of the object is serialized:
/// the entries are serialized on their own and put in its place, so their bytes' place is
/// known without reading them again.
const MANAGED_FIELDS_PLACEHOLDER: &str = "\0pernode-managed-fields\0";

static MANAGED_FIELDS_PLACEHOLDER_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| placeholder_finder(MANAGED_FIELDS_PLACEHOLDER));

/// The key of the member, as serialized.
const MANAGED_FIELDS_KEY: &str = "\"managedFields\":";

/// Where `finder`'s needle is in `json`, if it is there exactly once.
fn find_once(finder: &memchr::memmem::Finder<'_>, json: &str) -> Option<usize> {
    let at = finder.find(json.as_bytes())?;
    finder
        .find(&json.as_bytes()[at + 1..])
        .is_none()
        .then_some(at)
}

/// What is known of where `metadata.managedFields` is in an [`Unstamped`]'s JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ManagedFieldsAt {
    /// Not known: the stamped bytes are read to find it.
    Unknown,
    /// Absent (`None`), or at this range of the unstamped JSON.
    Known(Option<Range<usize>>),
}

impl ManagedFieldsAt {
    /// The place after `cut` is taken out of the JSON (`Unknown` when they overlap).
    fn after_cut(self, cut: Range<usize>) -> ManagedFieldsAt {
        let n = cut.end - cut.start;
        self.moved(|span| {
            if cut.end <= span.start {
                Some(span.start - n..span.end - n)
            } else {
                (cut.start >= span.end).then_some(span)
            }
        })
    }

    /// The place after `n` bytes are inserted at `at` (`Unknown` when inside it).
    fn after_insert(self, at: usize, n: usize) -> ManagedFieldsAt {
        self.moved(|span| {
            if at <= span.start {
                Some(span.start + n..span.end + n)
            } else {
                (at >= span.end).then_some(span)
            }
        })
    }

    fn moved(self, f: impl FnOnce(Range<usize>) -> Option<Range<usize>>) -> ManagedFieldsAt {
        match self {
            ManagedFieldsAt::Known(Some(span)) => match f(span) {
                Some(span) => ManagedFieldsAt::Known(Some(span)),
                None => ManagedFieldsAt::Unknown,
            },
            other => other,
        }
    }
}

/// An object serialized (Go escaping applied) before it reaches the single writer thread, with
/// the place of its `metadata.resourceVersion` value known: the writer only splices in the
/// version it assigns, instead of serializing the object itself (that took most of the writer
/// thread's time besides SQLite).
pub(crate) struct Unstamped {
    /// The JSON with `"<rv>"` to be inserted at `at`, or, when the spot could not be found
    /// unambiguously, the object to serialize in full.
    json: String,
    at: Option<usize>,
    fallback: Option<Value>,
    managed_fields: ManagedFieldsAt,
}

impl Unstamped {
    pub(crate) fn new(mut obj: Value) -> Result<Unstamped, StoreError> {
        let meta = obj
            .as_object_mut()
            .ok_or(StoreError::InvalidObject("not a JSON object"))?
            .entry("metadata")
            .or_insert_with(|| Value::Object(serde_json::Map::new()))
            .as_object_mut()
            .ok_or(StoreError::InvalidObject("metadata is not a JSON object"))?;
        meta.insert(
            "resourceVersion".into(),
            Value::String(RV_PLACEHOLDER.into()),
        );
        let managed = meta.get_mut("managedFields").map(|entries| {
            std::mem::replace(entries, Value::String(MANAGED_FIELDS_PLACEHOLDER.into()))
        });
        let mut json = go_escape(encode(&obj)?);
        let mut managed_fields = ManagedFieldsAt::Known(None);
        if let Some(managed) = managed {
            let finder = &*MANAGED_FIELDS_PLACEHOLDER_FINDER;
            let at =
                find_once(finder, &json).filter(|&at| json[..at].ends_with(MANAGED_FIELDS_KEY));
            if let Some(at) = at {
                let entries = go_escape(encode(&managed)?);
                // Copied in rather than `replace_range`, which inserts byte by byte.
                let rest = at + finder.needle().len();
                let mut spliced = String::with_capacity(json.len() + entries.len());
                spliced.push_str(&json[..at]);
                spliced.push_str(&entries);
                spliced.push_str(&json[rest..]);
                json = spliced;
                managed_fields =
                    ManagedFieldsAt::Known(Some(at - MANAGED_FIELDS_KEY.len()..at + entries.len()));
            }
            // Put back for the fallback, or for the whole object's serialization when the
            // placeholder was not found once.
            if let Some(entries) = obj
                .get_mut("metadata")
                .and_then(|meta| meta.get_mut("managedFields"))
            {
                *entries = managed;
            }
            if at.is_none() {
                json = go_escape(encode(&obj)?);
                managed_fields = ManagedFieldsAt::Unknown;
            }
        }
        let finder = &*RV_PLACEHOLDER_FINDER;
        match find_once(finder, &json) {
            Some(i) => {
                let len = finder.needle().len();
                json.replace_range(i..i + len, "");
                Ok(Unstamped {
                    json,
                    at: Some(i),
                    fallback: None,
                    managed_fields: managed_fields.after_cut(i..i + len),
                })
            }
            None => Ok(Unstamped {
                json: String::new(),
                at: None,
                fallback: Some(obj),
                managed_fields: ManagedFieldsAt::Unknown,
            }),
        }
    }

    /// The stored JSON of an object at `rv`, ready to be re-stamped (a deletion), if its
    /// resourceVersion appears exactly once as a JSON string value. `managed_fields`: where
    /// `metadata.managedFields` is in `json`, if known ([`Entry::managed_fields`]).
    pub(crate) fn from_stored(
        json: &[u8],
        rv: u64,
        managed_fields: Option<Range<usize>>,
    ) -> Option<Unstamped> {
        let rv = rv.to_string();
        let mut unstamped = Unstamped::from_stored_text(json, &rv)?;
        if let (Some(span), Some(at)) = (managed_fields, unstamped.at) {
            unstamped.managed_fields =
                ManagedFieldsAt::Known(Some(span)).after_cut(at..at + rv.len() + 2);
        }
        Some(unstamped)
    }

    /// [`Unstamped::from_stored`] for a resourceVersion given as its text (`""` for what the
    /// etcd backend stores, see [`Unstamped::render`]).
    pub(crate) fn from_stored_text(json: &[u8], rv: &str) -> Option<Unstamped> {
        let json = std::str::from_utf8(json).ok()?;
        let pattern = format!("\"resourceVersion\":\"{rv}\"");
        let i = json.find(&pattern)?;
        if json[i + pattern.len()..].contains(&pattern) {
            return None;
        }
        let value_at = i + "\"resourceVersion\":".len();
        let end = i + pattern.len();
        let mut spliced = String::with_capacity(json.len());
        spliced.push_str(&json[..value_at]);
        spliced.push_str(&json[end..]);
        Some(Unstamped {
            json: spliced,
            at: Some(value_at),
            fallback: None,
            managed_fields: ManagedFieldsAt::Unknown,
        })
    }

    /// The version `rv` of the object, as the store keeps it.
    pub(crate) fn into_entry(self, key: Arc<str>, rv: u64, attrs: Arc<Attrs>) -> Entry {
        let managed_fields = match self.at {
            Some(at) => self
                .managed_fields
                .clone()
                .after_insert(at, rv.to_string().len() + 2),
            None => ManagedFieldsAt::Unknown,
        };
        let json = self.stamp(rv);
        match managed_fields {
            ManagedFieldsAt::Known(span) => Entry::with_managed_fields(key, rv, json, attrs, span),
            ManagedFieldsAt::Unknown => Entry::new(key, rv, json, attrs),
        }
    }

    /// The object's bytes with `metadata.resourceVersion` = `rv`.
    pub(crate) fn stamp(self, rv: u64) -> Bytes {
        let json = match (self.at, &self.fallback) {
            (None, None) => self.json,
            _ => self.render(&rv.to_string()),
        };
        // Exact size: the bytes may stay in the state and the event ring for a long time.
        Bytes::from(json.into_boxed_str().into_boxed_bytes())
    }

    /// The object's JSON with `metadata.resourceVersion` = `rv` (any text: the etcd backend
    /// stores `""`, since etcd's revision of the write is not known before it commits).
    pub(crate) fn render(&self, rv: &str) -> String {
        match (self.at, &self.fallback) {
            (Some(at), _) => {
                let mut out = String::with_capacity(self.json.len() + rv.len() + 2);
                out.push_str(&self.json[..at]);
                out.push('"');
                out.push_str(rv);
                out.push('"');
                out.push_str(&self.json[at..]);
                out
            }
            (None, Some(obj)) => {
                let mut obj = obj.clone();
                if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), Value::String(rv.to_owned()));
                }
                // `obj` encoded once already in `new`.
                encode(&obj).map(go_escape).unwrap_or_default()
            }
            (None, None) => self.json.clone(),
        }
    }
}

/// Compact JSON of `obj`. Written as bytes: `Display` (`to_string`) goes through
/// `fmt::Write` a token at a time, which took about four times the instructions, and this
/// runs on every write. (The instance is compiled here; `Cargo.toml` optimises this crate in
/// dev builds too.)
fn encode(obj: &Value) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(4096);
    serde_json::to_writer(&mut out, obj)
        .map_err(|_| StoreError::InvalidObject("not serializable as JSON"))?;
    String::from_utf8(out).map_err(|_| StoreError::InvalidObject("not UTF-8 once serialized"))
}

/// Escapes `<`, `>`, `&`, U+2028 and U+2029 as Go's encoding/json does, so stored objects are
/// byte-for-byte what kube-apiserver would send (kubectl compares revision data by bytes).
/// These characters only occur inside JSON strings, so a plain replacement is exact.
pub(crate) fn go_escape(json: String) -> String {
    // 0xE2 leads the UTF-8 of U+2028 and U+2029. Vectorised scans: this runs over every write.
    let bytes = json.as_bytes();
    if memchr::memchr3(b'<', b'>', b'&', bytes).is_none() && memchr::memchr(0xE2, bytes).is_none() {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod go_escape_tests {
    use super::go_escape;

    #[test]
    fn escapes_html_characters_as_go_does() {
        assert_eq!(
            go_escape(r#"{"a":"x<y>&z"}"#.to_string()),
            r#"{"a":"x\u003cy\u003e\u0026z"}"#
        );
        assert_eq!(
            go_escape(r#"{"a":"plain"}"#.to_string()),
            r#"{"a":"plain"}"#
        );
        assert_eq!(go_escape("\"\u{2028}\"".to_string()), r#""\u2028""#);
        assert_eq!(go_escape("\"a\u{2029}\"".to_string()), r#""a\u2029""#);
        // Other characters whose UTF-8 starts like U+2028's stay as they are.
        assert_eq!(go_escape("\"\u{2026}\"".to_string()), "\"\u{2026}\"");
    }
}

#[cfg(test)]
mod stamp_tests {
    use super::*;
    use serde_json::json;

    /// What the splice must produce: the object with its resourceVersion, serialized in full.
    fn serialized(mut obj: Value, rv: u64) -> String {
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        go_escape(obj.to_string())
    }

    #[test]
    fn splicing_the_version_gives_the_full_serialization() {
        let obj = json!({"kind": "Pod", "metadata": {"name": "p<1>", "resourceVersion": "7",
                          "labels": {"a": "b"}}, "spec": {"x": [1, 2]}});
        let bytes = Unstamped::new(obj.clone()).expect("object").stamp(42);
        assert_eq!(bytes, serialized(obj.clone(), 42).as_bytes());
        // Without metadata at all.
        let bare = json!({"kind": "Pod"});
        let bytes = Unstamped::new(bare.clone()).expect("object").stamp(5);
        assert_eq!(bytes, serialized(bare, 5).as_bytes());
    }

    #[test]
    fn an_object_holding_the_placeholder_is_serialized_in_full() {
        let obj = json!({"metadata": {"name": "p", "annotations": {"x": RV_PLACEHOLDER}}});
        let unstamped = Unstamped::new(obj.clone()).expect("object");
        assert!(unstamped.at.is_none());
        assert_eq!(unstamped.stamp(9), serialized(obj, 9).as_bytes());
    }

    #[test]
    fn a_stored_object_is_restamped_in_place() {
        let stored = serialized(json!({"metadata": {"name": "p"}, "spec": {}}), 3);
        let restamped = Unstamped::from_stored(stored.as_bytes(), 3, None)
            .expect("found")
            .stamp(10);
        assert_eq!(
            restamped,
            serialized(json!({"metadata": {"name": "p"}, "spec": {}}), 10).as_bytes()
        );
        // The same version string twice: ambiguous, so the caller falls back to a full stamp.
        let twice = serialized(
            json!({"metadata": {"name": "p"}, "involvedObject": {"resourceVersion": "3"}}),
            3,
        );
        assert!(Unstamped::from_stored(twice.as_bytes(), 3, None).is_none());
    }

    /// The range an entry gives for its managedFields, as its bytes.
    fn managed_fields_text(entry: &Entry) -> Option<String> {
        let span = entry.managed_fields()?;
        Some(String::from_utf8_lossy(&entry.json[span]).into_owned())
    }

    #[test]
    fn an_entry_knows_where_its_managed_fields_are() {
        let entries = json!([{"manager": "kubectl<1>", "operation": "Update",
                              "fieldsV1": {"f:spec": {"f:x": {}}}}]);
        let obj = json!({"kind": "Pod", "metadata": {"name": "p<1>", "resourceVersion": "7",
                          "annotations": {"a": "b"}, "managedFields": entries,
                          "uid": "u"}, "spec": {"x": [1, 2]}});
        let expected = format!(r#""managedFields":{}"#, go_escape(entries.to_string()));
        for rv in [1, 42, 123_456_789] {
            let unstamped = Unstamped::new(obj.clone()).expect("object");
            assert!(matches!(
                unstamped.managed_fields,
                ManagedFieldsAt::Known(Some(_))
            ));
            let entry = unstamped.into_entry("k".into(), rv, Arc::default());
            assert_eq!(entry.json, serialized(obj.clone(), rv).as_bytes());
            assert_eq!(managed_fields_text(&entry), Some(expected.clone()));
            // Restamped (a deletion) from what the entry knows, and from the bytes alone.
            for known in [entry.managed_fields(), None] {
                let deleted = Unstamped::from_stored(&entry.json, rv, known)
                    .expect("found")
                    .into_entry("k".into(), rv * 10, Arc::default());
                assert_eq!(deleted.json, serialized(obj.clone(), rv * 10).as_bytes());
                assert_eq!(managed_fields_text(&deleted), Some(expected.clone()));
            }
        }

        // None, and known to be none.
        let bare = json!({"metadata": {"name": "p"}});
        let unstamped = Unstamped::new(bare).expect("object");
        assert_eq!(unstamped.managed_fields, ManagedFieldsAt::Known(None));
        assert_eq!(
            unstamped
                .into_entry("k".into(), 2, Arc::default())
                .managed_fields(),
            None
        );

        // The placeholder in the object's data: serialized in full, found by reading.
        let mut odd = obj.clone();
        odd["metadata"]["annotations"]["a"] = json!(MANAGED_FIELDS_PLACEHOLDER);
        let unstamped = Unstamped::new(odd.clone()).expect("object");
        assert_eq!(unstamped.managed_fields, ManagedFieldsAt::Unknown);
        let entry = unstamped.into_entry("k".into(), 3, Arc::default());
        assert_eq!(entry.json, serialized(odd, 3).as_bytes());
        assert_eq!(managed_fields_text(&entry), Some(expected));
    }

    #[test]
    fn non_objects_are_rejected() {
        assert!(Unstamped::new(json!([1])).is_err());
        assert!(Unstamped::new(json!({"metadata": 1})).is_err());
    }
}
