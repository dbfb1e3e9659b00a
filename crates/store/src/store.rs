//! The `Store` handle: reads served from the in-memory state under a read lock, writes sent to
//! the writer thread and acknowledged once durable, watches served from the event ring.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, oneshot, watch};

use crate::backend::{Backend, MemoryBackend, SqliteBackend};
use crate::error::{BackendError, StoreError};
use crate::index::FieldIndex;
use crate::metrics::StoreMetrics;
use crate::types::{Attrs, Entry, Event, Indexer, Op, StoreOptions, StoreStats};
use crate::watcher::Watcher;
use crate::writer::{Prepared, PreparedKind, Request, Unstamped, Writer, go_escape};

/// The current state and recent history, behind one lock so that a list's rv and its items
/// (and a watch's start check) are always one consistent snapshot.
pub(crate) struct State {
    pub map: BTreeMap<Arc<str>, Entry>,
    /// The keys by the values of [`StoreOptions::indexed_fields`], as `map` holds them.
    pub index: FieldIndex,
    /// rv of the last applied write.
    pub rv: u64,
    /// Recent events in rv order; rvs are consecutive because every successful write makes
    /// exactly one event.
    pub ring: VecDeque<Event>,
    /// Sum of [`Event::ring_bytes`] over the ring.
    pub ring_bytes: usize,
    /// Every event with rv > `compacted` is in the ring; a watch may start from any rv >=
    /// `compacted`.
    pub compacted: u64,
}

/// What readers, watchers and the writer share.
pub(crate) struct Shared {
    pub state: RwLock<State>,
    /// A receiver kept only to hand clones to new watchers; the writer owns the sender, so when
    /// the writer exits every watcher's `changed()` fails and the watcher ends.
    pub wake: watch::Receiver<u64>,
    pub commits: AtomicU64,
    pub writes: AtomicU64,
    /// The writer's commit latency and batch sizes ([`Store::metrics`]).
    pub metrics: StoreMetrics,
}

struct Inner {
    shared: Arc<Shared>,
    indexer: Indexer,
    engine: Engine,
}

/// Where writes go: the group-commit writer thread over a [`Backend`], or etcd.
enum Engine {
    Writer {
        tx: mpsc::UnboundedSender<Request>,
        writer: Mutex<Option<JoinHandle<()>>>,
    },
    #[cfg(feature = "etcd")]
    Etcd(Box<crate::etcd::EtcdEngine>),
}

impl Drop for Inner {
    fn drop(&mut self) {
        match &self.engine {
            Engine::Writer { tx, writer } => {
                // Let the writer finish what is queued, close the backend, and exit, so that
                // reopening the same directory right after dropping the store works.
                let _ = tx.send(Request::Close { done: None });
                if let Some(handle) = writer.lock().take()
                    && handle.join().is_err()
                {
                    tracing::error!("store writer thread panicked");
                }
            }
            #[cfg(feature = "etcd")]
            Engine::Etcd(engine) => engine.shut_down(),
        }
    }
}

/// The object store. Cheap to clone; the writer thread stops when the last clone is dropped or
/// [`Store::close`] is called.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("rv", &self.current_rv())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the SQLite store in `dir` (created if missing), loading every object into memory.
    pub fn open(dir: &Path, indexer: Indexer, opts: StoreOptions) -> Result<Store, StoreError> {
        let backend = SqliteBackend::open(dir)?;
        Store::with_backend(Box::new(backend), indexer, opts)
    }

    /// A store with no durability, for tests. Panics only if the OS cannot start a thread.
    pub fn in_memory(indexer: Indexer, opts: StoreOptions) -> Store {
        match Store::with_backend(Box::new(MemoryBackend), indexer, opts) {
            Ok(store) => store,
            Err(e) => panic!("cannot start an in-memory store: {e}"),
        }
    }

    /// Opens a store over any [`Backend`] (the seam for an etcd backend).
    pub fn with_backend(
        mut backend: Box<dyn Backend>,
        indexer: Indexer,
        opts: StoreOptions,
    ) -> Result<Store, StoreError> {
        let loaded = backend.load()?;
        let mut map = BTreeMap::new();
        let mut index = FieldIndex::new(&opts.indexed_fields);
        let mut rv = loaded.rv;
        for (key, obj_rv, json) in loaded.objects {
            let value = crate::types::parse_json(&key, &json)?;
            let key: Arc<str> = key.into();
            let attrs = Arc::new(indexer(&key, &value));
            index.update(&key, None, Some(&attrs));
            // Defensive: never hand out an rv at or below one already stored.
            rv = rv.max(obj_rv);
            map.insert(key.clone(), Entry::new(key, obj_rv, json, attrs));
        }
        tracing::debug!(objects = map.len(), rv, "store loaded");

        let (wake_tx, wake_rx) = watch::channel(rv);
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                map,
                index,
                rv,
                ring: VecDeque::new(),
                ring_bytes: 0,
                // The history before open is gone: watches may start at the loaded rv or later.
                compacted: rv,
            }),
            wake: wake_rx,
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            metrics: StoreMetrics::default(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer::new(shared.clone(), backend, rx, wake_tx, rv, &opts);
        let handle = std::thread::Builder::new()
            .name("pernode-store-writer".into())
            .spawn(move || writer.run())
            .map_err(BackendError::Spawn)?;
        Ok(Store {
            inner: Arc::new(Inner {
                shared,
                indexer,
                engine: Engine::Writer {
                    tx,
                    writer: Mutex::new(Some(handle)),
                },
            }),
        })
    }

    /// Opens the store on etcd: loads every object under the configured prefix, then keeps the
    /// in-memory state as a watch cache fed by one etcd watch (see [`crate::etcd`]). Retries
    /// an unreachable etcd until [`crate::etcd::EtcdConfig::start_timeout`].
    #[cfg(feature = "etcd")]
    pub async fn open_etcd(
        config: crate::etcd::EtcdConfig,
        indexer: Indexer,
        opts: StoreOptions,
    ) -> Result<Store, StoreError> {
        let (engine, shared) =
            crate::etcd::EtcdEngine::open(config, indexer.clone(), &opts).await?;
        Ok(Store {
            inner: Arc::new(Inner {
                shared,
                indexer,
                engine: Engine::Etcd(Box::new(engine)),
            }),
        })
    }

    /// Whether the store can serve writes now: always for the embedded store; for etcd, a read
    /// from etcd within its health-check timeout (kube-apiserver's `etcd` readyz check).
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        match &self.inner.engine {
            Engine::Writer { .. } => Ok(()),
            #[cfg(feature = "etcd")]
            Engine::Etcd(engine) => engine.check_ready().await,
        }
    }

    /// The name of the store's readiness check as `/readyz` lists it (`etcd`), if it has one.
    pub fn ready_check_name(&self) -> Option<&'static str> {
        match &self.inner.engine {
            Engine::Writer { .. } => None,
            #[cfg(feature = "etcd")]
            Engine::Etcd(_) => Some("etcd"),
        }
    }

    /// The rv of the last acknowledged write (0 for a fresh store).
    pub fn current_rv(&self) -> u64 {
        self.inner.shared.state.read().rv
    }

    pub fn get(&self, key: &str) -> Option<Entry> {
        self.inner.shared.state.read().map.get(key).cloned()
    }

    /// Every entry whose key starts with `prefix` and passes `filter`, in key order, with the rv
    /// of the snapshot: `watch(prefix, rv)` then continues exactly after this list.
    pub fn list(&self, prefix: &str, filter: impl Fn(&Entry) -> bool) -> (u64, Vec<Entry>) {
        let st = self.inner.shared.state.read();
        let items = st
            .map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| filter(e))
            .map(|(_, e)| e.clone())
            .collect();
        (st.rv, items)
    }

    /// Every entry under `prefix` whose indexed `field` has `value` ([`Attrs::field`]), in key
    /// order: [`Store::list`] with a field's equality. A field of
    /// [`StoreOptions::indexed_fields`] is looked up in its reverse index (O(log n) plus what
    /// matches: the Node authorizer's "pods of this namespace bound to this node"); any other is
    /// a scan of the prefix comparing attributes, cloning only what matches.
    ///
    /// [`Attrs::field`]: crate::Attrs::field
    pub fn list_field_equals(&self, prefix: &str, field: &str, value: &str) -> Vec<Entry> {
        let st = self.inner.shared.state.read();
        if let Some(keys) = st.index.keys(field, value, prefix) {
            return keys.filter_map(|k| st.map.get(k)).cloned().collect();
        }
        st.map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| e.attrs.field(field) == Some(value))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The number of stored objects per resource (the first segment of their keys: `pods`,
    /// `daemonsets`, `widgets.example.com`), in key order: one pass over the keys under the
    /// read lock, allocating only per resource.
    pub fn count_by_resource(&self) -> Vec<(String, usize)> {
        let st = self.inner.shared.state.read();
        let mut counts: Vec<(String, usize)> = Vec::new();
        for key in st.map.keys() {
            let resource = key.split('/').next().unwrap_or_default();
            match counts.last_mut() {
                Some((last, n)) if last == resource => *n += 1,
                _ => counts.push((resource.to_string(), 1)),
            }
        }
        counts
    }

    /// The writer's commit latency and batch sizes, shared with every clone of this store.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.inner.shared.metrics
    }

    /// Number of keys under `prefix` (cheap; no clones).
    pub fn count(&self, prefix: &str) -> usize {
        let st = self.inner.shared.state.read();
        st.map
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count()
    }

    pub async fn create(&self, key: &str, obj: serde_json::Value) -> Result<Entry, StoreError> {
        let attrs = self.attrs(key, &obj);
        self.submit_one(Prepared {
            key: key.into(),
            kind: PreparedKind::Create {
                obj: Unstamped::new(obj),
                attrs,
            },
        })
        .await
    }

    pub async fn update(
        &self,
        key: &str,
        obj: serde_json::Value,
        expected_rv: Option<u64>,
    ) -> Result<Entry, StoreError> {
        let attrs = self.attrs(key, &obj);
        self.submit_one(Prepared {
            key: key.into(),
            kind: PreparedKind::Update {
                obj: Unstamped::new(obj),
                attrs,
                expected_rv,
            },
        })
        .await
    }

    /// Replaces `key` with `json`: an edit of the stored bytes of version `expected_rv` (its
    /// `metadata.resourceVersion` still that version's) whose index attributes the caller knows.
    /// For writes that change a few fields of a large object, which then skip parsing it and
    /// serializing it again. Go's escaping is applied as to every write. `managed_fields`:
    /// where the edit left `metadata.managedFields` in `json`, if it knows
    /// ([`Entry::managed_fields`] of the version it copied it from).
    pub async fn update_edited(
        &self,
        key: &str,
        json: String,
        attrs: Attrs,
        expected_rv: u64,
        managed_fields: Option<Range<usize>>,
    ) -> Result<Entry, StoreError> {
        let len = json.len();
        let json = go_escape(json);
        // Escapes added move what follows them.
        let managed_fields = managed_fields.filter(|_| json.len() == len);
        let obj = match Unstamped::from_stored(json.as_bytes(), expected_rv, managed_fields) {
            Some(obj) => Ok(obj),
            // The version's resourceVersion not found exactly once: serialize in full.
            None => serde_json::from_str(&json)
                .map_err(|_| StoreError::InvalidObject("an edited object that is not JSON"))
                .and_then(Unstamped::new),
        };
        self.submit_one(Prepared {
            key: key.into(),
            kind: PreparedKind::Update {
                obj,
                attrs: Arc::new(attrs),
                expected_rv: Some(expected_rv),
            },
        })
        .await
    }

    /// Deletes `key`; returns the last stored object stamped with the deletion's rv (the same
    /// entry the DELETED event carries).
    pub async fn delete(&self, key: &str, expected_rv: Option<u64>) -> Result<Entry, StoreError> {
        self.submit_one(Prepared {
            key: key.into(),
            kind: PreparedKind::Delete { expected_rv },
        })
        .await
    }

    /// Several writes in one durable transaction, applied in order (a later op sees the earlier
    /// ones). Each op succeeds or fails on its own: this is a batch, not an atomic transaction.
    pub async fn commit(&self, ops: Vec<Op>) -> Vec<Result<Entry, StoreError>> {
        let n = ops.len();
        let prepared = ops
            .into_iter()
            .map(|op| match op {
                Op::Create { key, obj } => Prepared {
                    kind: PreparedKind::Create {
                        attrs: self.attrs(&key, &obj),
                        obj: Unstamped::new(obj),
                    },
                    key: key.into(),
                },
                Op::Update {
                    key,
                    obj,
                    expected_rv,
                } => Prepared {
                    kind: PreparedKind::Update {
                        attrs: self.attrs(&key, &obj),
                        obj: Unstamped::new(obj),
                        expected_rv,
                    },
                    key: key.into(),
                },
                Op::Delete { key, expected_rv } => Prepared {
                    key: key.into(),
                    kind: PreparedKind::Delete { expected_rv },
                },
            })
            .collect();
        match self.submit(prepared).await {
            Ok(results) => results,
            Err(e) => vec![Err(e); n],
        }
    }

    /// Events after `after_rv` under `prefix`, then new ones as they commit. `Expired` if the
    /// ring no longer holds every event after `after_rv`.
    pub fn watch(&self, prefix: &str, after_rv: u64) -> Result<Watcher, StoreError> {
        let shared = &self.inner.shared;
        {
            let st = shared.state.read();
            if after_rv < st.compacted {
                return Err(StoreError::Expired {
                    oldest: st.compacted,
                });
            }
        }
        Ok(Watcher::new(
            shared.clone(),
            prefix,
            after_rv,
            shared.wake.clone(),
        ))
    }

    /// Durable commits and successful writes since open.
    pub fn stats(&self) -> StoreStats {
        let s = &self.inner.shared;
        StoreStats {
            commits: s.commits.load(Ordering::Relaxed),
            writes: s.writes.load(Ordering::Relaxed),
        }
    }

    /// Finishes the writes queued so far, closes the backend and stops the writer. Later writes
    /// fail with `Closed`; watchers drain what was committed and end. Reads keep working.
    pub async fn close(&self) {
        let tx = match &self.inner.engine {
            Engine::Writer { tx, .. } => tx,
            #[cfg(feature = "etcd")]
            Engine::Etcd(engine) => return engine.close().await,
        };
        let (done, wait) = oneshot::channel();
        if tx.send(Request::Close { done: Some(done) }).is_ok() {
            // An error means the writer had already exited: closed either way.
            let _ = wait.await;
        }
    }

    fn attrs(&self, key: &str, obj: &serde_json::Value) -> Arc<Attrs> {
        // Computed on the caller's task rather than the writer thread, so concurrent writers
        // index in parallel and the single writer only serializes and commits.
        Arc::new((self.inner.indexer)(key, obj))
    }

    async fn submit_one(&self, op: Prepared) -> Result<Entry, StoreError> {
        let mut results = self.submit(vec![op]).await?;
        results.pop().unwrap_or(Err(StoreError::Closed))
    }

    async fn submit(
        &self,
        ops: Vec<Prepared>,
    ) -> Result<Vec<Result<Entry, StoreError>>, StoreError> {
        let tx = match &self.inner.engine {
            Engine::Writer { tx, .. } => tx,
            #[cfg(feature = "etcd")]
            Engine::Etcd(engine) => return engine.submit(&self.inner.shared, ops).await,
        };
        let (reply, wait) = oneshot::channel();
        tx.send(Request::Write { ops, reply })
            .map_err(|_| StoreError::Closed)?;
        // A dropped reply means the writer stopped before reaching this request.
        wait.await.map_err(|_| StoreError::Closed)
    }
}
