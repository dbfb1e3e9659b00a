//! The watch cache: the store's in-memory state loaded from etcd at open and kept current by
//! one prefix watch, as kube-apiserver's cacher (a reflector listing then watching etcd).
//!
//! Every change under the prefix, whichever API server made it, arrives here once, in
//! revision order, and becomes one [`Event`] in the ring the store's watchers read. If etcd
//! compacted past what this watch had seen (it was disconnected too long), the cache relists
//! and starts a new history: watchers from before get `Expired` and their clients relist.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use etcd_client::{Client, EventType as EtcdEventType, KeyValue, WatchOptions};
use parking_lot::RwLock;
use tokio::sync::watch;

use super::{MAX_MESSAGE, get_prefix, rv_of};
use crate::error::{BackendError, StoreError};
use crate::index::FieldIndex;
use crate::store::{Shared, State};
use crate::types::{Entry, Event, EventType, Indexer, Prev, StoreOptions, parse_json};
use crate::writer::{Unstamped, apply, restamped, stamp};

/// The state read at open, before the feeder starts.
pub(crate) struct Loaded {
    state: State,
}

impl Loaded {
    /// The shared state readers use, and the sender that wakes its watchers (the feeder's).
    pub(crate) fn into_shared(self) -> (Arc<Shared>, watch::Sender<u64>) {
        let (wake_tx, wake_rx) = watch::channel(self.state.rv);
        let shared = Arc::new(Shared {
            state: RwLock::new(self.state),
            wake: wake_rx,
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            // The writer thread's commit histograms stay empty on etcd: there is no batch,
            // and etcd exports its own backend commit latency.
            metrics: crate::metrics::StoreMetrics::default(),
        });
        (shared, wake_tx)
    }
}

/// Lists everything under `prefix` into a fresh state whose history starts at the list's
/// revision.
pub(crate) async fn load(
    client: &Client,
    prefix: &str,
    indexer: &Indexer,
    opts: &StoreOptions,
) -> Result<Loaded, StoreError> {
    let (revision, kvs) = get_prefix(client, prefix).await?;
    let state = state_from(prefix, indexer, &opts.indexed_fields, revision, kvs)?;
    tracing::debug!(
        objects = state.map.len(),
        rv = state.rv,
        "etcd store loaded"
    );
    Ok(Loaded { state })
}

fn state_from(
    prefix: &str,
    indexer: &Indexer,
    indexed_fields: &[&'static str],
    revision: i64,
    kvs: Vec<KeyValue>,
) -> Result<State, StoreError> {
    let mut map = BTreeMap::new();
    let mut index = FieldIndex::new(indexed_fields);
    for kv in kvs {
        let Some(entry) = entry_of(prefix, indexer, &kv)? else {
            continue;
        };
        index.update(&entry.key, None, Some(&entry.attrs));
        map.insert(entry.key.clone(), entry);
    }
    let rv = rv_of(revision);
    Ok(State {
        map,
        index,
        rv,
        ring: VecDeque::new(),
        ring_bytes: 0,
        // The history before the list is not in the ring.
        compacted: rv,
    })
}

/// The cached entry of a stored key-value: its key without the prefix, its JSON stamped with
/// its mod revision, and its index attributes. `None` for a key outside the prefix.
fn entry_of(prefix: &str, indexer: &Indexer, kv: &KeyValue) -> Result<Option<Entry>, StoreError> {
    let Some(key) = kv
        .key_str()
        .ok()
        .and_then(|k| k.strip_prefix(prefix))
        .filter(|k| !k.is_empty())
    else {
        return Ok(None);
    };
    let rv = rv_of(kv.mod_revision());
    let value = parse_json(key, kv.value())?;
    let attrs = Arc::new(indexer(key, &value));
    let json = match Unstamped::from_stored_text(kv.value(), "") {
        Some(unstamped) => unstamped.stamp(rv),
        // Written by someone else (etcdctl, kube-apiserver): set the version in the tree.
        None => stamp(value, rv)?,
    };
    Ok(Some(Entry::new(key.into(), rv, json, attrs)))
}

/// What ended one watch.
enum Ended {
    /// etcd no longer has the history the watch asked for.
    Compacted,
    /// The stream broke (etcd lost, member restarted): watch again from where it stopped.
    Broken(StoreError),
}

/// The one task that turns etcd's watch events into the store's state and events.
pub(crate) struct Feeder {
    client: Client,
    prefix: Arc<str>,
    indexer: Indexer,
    shared: Arc<Shared>,
    wake: watch::Sender<u64>,
    indexed_fields: Vec<&'static str>,
    ring_capacity: usize,
    ring_bytes: usize,
}

impl Feeder {
    pub(crate) fn new(
        client: Client,
        prefix: Arc<str>,
        indexer: Indexer,
        shared: Arc<Shared>,
        wake: watch::Sender<u64>,
        opts: &StoreOptions,
    ) -> Feeder {
        Feeder {
            client,
            prefix,
            indexer,
            shared,
            wake,
            indexed_fields: opts.indexed_fields.clone(),
            ring_capacity: opts.ring_capacity.max(1),
            ring_bytes: opts.ring_bytes,
        }
    }

    /// Watches until aborted (the store closing), rewatching after a broken stream and
    /// relisting after a compaction.
    pub(crate) async fn run(self) {
        let mut delay = Duration::from_millis(100);
        loop {
            let ended = self.watch().await;
            match ended {
                Ended::Compacted => {
                    tracing::warn!("etcd compacted past the watch cache; relisting");
                    match self.relist().await {
                        Ok(()) => delay = Duration::from_millis(100),
                        Err(e) => tracing::warn!(error = %e, "relisting etcd failed; retrying"),
                    }
                }
                Ended::Broken(e) => {
                    tracing::warn!(error = %e, "the etcd watch broke; watching again");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn watch(&self) -> Ended {
        let from = self.shared.state.read().rv + 1;
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(i64::try_from(from).unwrap_or(i64::MAX));
        let mut client = self
            .client
            .watch_client()
            .max_decoding_message_size(MAX_MESSAGE);
        let mut stream = match client.watch(&*self.prefix, Some(options)).await {
            Ok(stream) => stream,
            Err(e) => return Ended::Broken(BackendError::Etcd(e).into()),
        };
        loop {
            let resp = match stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    return Ended::Broken(
                        BackendError::Unavailable("the etcd watch stream ended".into()).into(),
                    );
                }
                Err(e) => return Ended::Broken(BackendError::Etcd(e).into()),
            };
            if resp.canceled() {
                if resp.compact_revision() > 0 {
                    return Ended::Compacted;
                }
                return Ended::Broken(
                    BackendError::Unavailable(format!(
                        "etcd cancelled the watch: {}",
                        resp.cancel_reason()
                    ))
                    .into(),
                );
            }
            if let Err(e) = self.apply(resp.events()) {
                // A value that is not JSON: nothing this server wrote. Skip past it rather than
                // stall every watch.
                tracing::error!(error = %e, "skipping an etcd event the cache cannot read");
            }
        }
    }

    /// Turns one watch response's events into store events and applies them.
    fn apply(&self, events: &[etcd_client::Event]) -> Result<(), StoreError> {
        // Parse and index outside the lock; readers keep going meanwhile.
        let mut staged = Vec::with_capacity(events.len());
        let mut first_error = None;
        for ev in events {
            let Some(kv) = ev.kv() else { continue };
            match ev.event_type() {
                EtcdEventType::Put => match entry_of(&self.prefix, &self.indexer, kv) {
                    Ok(Some(entry)) => staged.push(Staged::Put(entry)),
                    Ok(None) => {}
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                },
                EtcdEventType::Delete => {
                    let key = kv
                        .key_str()
                        .ok()
                        .and_then(|k| k.strip_prefix(&*self.prefix));
                    if let Some(key) = key {
                        staged.push(Staged::Delete {
                            key: key.into(),
                            rv: rv_of(kv.mod_revision()),
                        });
                    }
                }
            }
        }
        let mut last = None;
        {
            let mut st = self.shared.state.write();
            for staged in staged {
                let Some(event) = event_of(&st, staged) else {
                    continue;
                };
                let rv = event.entry.rv;
                apply(&mut st, vec![event], self.ring_capacity, self.ring_bytes);
                st.rv = st.rv.max(rv);
                last = Some(st.rv);
            }
        }
        if let Some(rv) = last {
            self.wake.send_replace(rv);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Replaces the state with a fresh list; the ring starts over, so every watcher expires.
    async fn relist(&self) -> Result<(), StoreError> {
        let (revision, kvs) = get_prefix(&self.client, &self.prefix).await?;
        let fresh = state_from(
            &self.prefix,
            &self.indexer,
            &self.indexed_fields,
            revision,
            kvs,
        )?;
        let rv = fresh.rv;
        *self.shared.state.write() = fresh;
        self.wake.send_replace(rv);
        Ok(())
    }
}

enum Staged {
    Put(Entry),
    Delete { key: Arc<str>, rv: u64 },
}

/// The store event of one etcd change, as the cache held the key before it.
fn event_of(st: &State, staged: Staged) -> Option<Event> {
    match staged {
        Staged::Put(entry) => {
            let Some(old) = st.map.get(&entry.key) else {
                return Some(Event {
                    kind: EventType::Added,
                    entry,
                    prev: None,
                });
            };
            // As the writer: share unchanged attributes, keep the old JSON only when they
            // changed (a filtered watch may then need it), reuse the key's allocation.
            let (attrs, prev_json) = if entry.attrs == old.attrs {
                (old.attrs.clone(), None)
            } else {
                (entry.attrs, Some(old.json.clone()))
            };
            Some(Event {
                kind: EventType::Modified,
                entry: Entry {
                    key: old.key.clone(),
                    attrs,
                    ..entry
                },
                prev: Some(Prev {
                    rv: old.rv,
                    attrs: old.attrs.clone(),
                    json: prev_json,
                }),
            })
        }
        Staged::Delete { key, rv } => {
            let old = st.map.get(&key)?;
            Some(Event {
                kind: EventType::Deleted,
                entry: restamped(old, rv).unwrap_or_else(|_| {
                    Entry::new(old.key.clone(), rv, old.json.clone(), old.attrs.clone())
                }),
                prev: Some(Prev {
                    rv: old.rv,
                    attrs: old.attrs.clone(),
                    json: None,
                }),
            })
        }
    }
}
