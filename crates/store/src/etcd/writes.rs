//! Writes as kube-apiserver's etcd3 store makes them: one transaction per write, guarded by the
//! key's mod revision, so that concurrent writers on any API server never overwrite each
//! other unseen. A create requires `create_revision == 0` (absent); an update or delete
//! requires the mod revision it was computed from (a pinned `expected_rv`, else the cached
//! one, retried on a lost race as GuaranteedUpdate). The answer waits until the watch cache
//! has seen the write's revision, so the writer's next read includes it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, KeyValue, Txn, TxnOp, TxnOpResponse, TxnResponse,
};

use super::{CACHE_WAIT, retrying, rv_of};
use crate::error::StoreError;
use crate::store::Shared;
use crate::types::{Entry, Indexer, parse_json};
use crate::writer::{Prepared, PreparedKind, Unstamped, stamp};

pub(crate) struct Writes<'a> {
    pub client: &'a Client,
    pub prefix: &'a str,
    pub indexer: &'a Indexer,
    pub shared: &'a Arc<Shared>,
    pub timeout: Duration,
}

/// What the guarded transaction found.
enum Outcome {
    /// Committed at this revision; for a delete, the key-value it removed.
    Done(i64, Option<KeyValue>),
    /// The guard failed; the key's current key-value (`None`: absent).
    Lost(Option<KeyValue>),
}

impl Writes<'_> {
    pub(crate) async fn write(&self, op: Prepared) -> Result<Entry, StoreError> {
        let key = op.key;
        let etcd_key = format!("{}{}", self.prefix, key);
        let entry = match op.kind {
            PreparedKind::Create { obj, attrs } => {
                let obj = obj?;
                let value = obj.render("");
                let guard = Compare::create_revision(etcd_key.as_str(), CompareOp::Equal, 0);
                let put = TxnOp::put(etcd_key.as_str(), value, None);
                match self.txn(&etcd_key, guard, put).await? {
                    Outcome::Lost(_) => return Err(StoreError::AlreadyExists),
                    Outcome::Done(revision, _) => {
                        let rv = rv_of(revision);
                        obj.into_entry(key, rv, attrs)
                    }
                }
            }
            PreparedKind::Update {
                obj,
                attrs,
                expected_rv,
            } => {
                let obj = obj?;
                let value = obj.render("");
                let revision = self
                    .guarded(&key, &etcd_key, expected_rv, || {
                        TxnOp::put(etcd_key.as_str(), value.clone(), None)
                    })
                    .await?
                    .0;
                let rv = rv_of(revision);
                obj.into_entry(key, rv, attrs)
            }
            PreparedKind::Delete { expected_rv } => {
                let (revision, prev) = self
                    .guarded(&key, &etcd_key, expected_rv, || {
                        TxnOp::delete(
                            etcd_key.as_str(),
                            Some(DeleteOptions::new().with_prev_key()),
                        )
                    })
                    .await?;
                let rv = rv_of(revision);
                let prev = prev.ok_or(StoreError::NotFound)?;
                let value = parse_json(&key, prev.value())?;
                let attrs = Arc::new((self.indexer)(&key, &value));
                let json = match Unstamped::from_stored_text(prev.value(), "") {
                    Some(unstamped) => unstamped.stamp(rv),
                    None => stamp(value, rv)?,
                };
                // `json` is the last version stamped with the deletion's rv already.
                Entry::new(key, rv, json, attrs)
            }
        };
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        self.shared.writes.fetch_add(1, Ordering::Relaxed);
        self.wait_for_cache(entry.rv).await;
        Ok(entry)
    }

    /// An update or delete guarded by the key's mod revision: the pinned one (a lost race is a
    /// `Conflict`), else the latest known one (a lost race is retried with the revision the
    /// transaction found). `NotFound` once the key is absent.
    async fn guarded(
        &self,
        key: &str,
        etcd_key: &str,
        pinned: Option<u64>,
        op: impl Fn() -> TxnOp,
    ) -> Result<(i64, Option<KeyValue>), StoreError> {
        let mut expected = match pinned {
            Some(rv) => rv,
            None => self.shared.state.read().map.get(key).map_or(0, |e| e.rv),
        };
        loop {
            if expected == 0 {
                // Not cached (or pinned to no version): a guard on mod revision 0 would pass
                // for an absent key and create it. Ask etcd what is there.
                let current = self.get(etcd_key).await?.ok_or(StoreError::NotFound)?;
                let current = rv_of(current.mod_revision());
                if pinned.is_some() {
                    return Err(StoreError::Conflict {
                        current_rv: current,
                    });
                }
                expected = current;
            }
            let guard = Compare::mod_revision(
                etcd_key,
                CompareOp::Equal,
                i64::try_from(expected).unwrap_or(i64::MAX),
            );
            match self.txn(etcd_key, guard, op()).await? {
                Outcome::Done(revision, prev) => return Ok((revision, prev)),
                Outcome::Lost(None) => return Err(StoreError::NotFound),
                Outcome::Lost(Some(current)) => {
                    let current = rv_of(current.mod_revision());
                    if pinned.is_some() {
                        return Err(StoreError::Conflict {
                            current_rv: current,
                        });
                    }
                    expected = current;
                }
            }
        }
    }

    async fn get(&self, etcd_key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut resp = retrying(self.timeout, || {
            let mut kv = self.client.kv_client();
            async move { kv.get(etcd_key, None).await }
        })
        .await?;
        Ok(resp.take_kvs().into_iter().next())
    }

    /// `if guard then op else get(key)`, within the request timeout.
    async fn txn(&self, etcd_key: &str, guard: Compare, op: TxnOp) -> Result<Outcome, StoreError> {
        let txn = Txn::new()
            .when([guard])
            .and_then([op])
            .or_else([TxnOp::get(etcd_key, None)]);
        let resp = retrying(self.timeout, || {
            let mut kv = self.client.kv_client();
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await?;
        Ok(outcome(&resp))
    }

    /// Waits until the watch cache has applied `rv` (bounded: the write stands either way).
    async fn wait_for_cache(&self, rv: u64) {
        let mut wake = self.shared.wake.clone();
        let reached = tokio::time::timeout(CACHE_WAIT, async {
            loop {
                if self.shared.state.read().rv >= rv {
                    return;
                }
                if wake.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if reached.is_err() {
            tracing::warn!(rv, "the watch cache has not seen a committed write yet");
        }
    }
}

fn outcome(resp: &TxnResponse) -> Outcome {
    let revision = resp.header().map_or(0, |h| h.revision());
    let first = resp.op_responses().into_iter().next();
    if resp.succeeded() {
        let prev = match first {
            Some(TxnOpResponse::Delete(mut d)) => d.take_prev_kvs().into_iter().next(),
            _ => None,
        };
        return Outcome::Done(revision, prev);
    }
    let current = match first {
        Some(TxnOpResponse::Get(mut g)) => g.take_kvs().into_iter().next(),
        _ => None,
    };
    Outcome::Lost(current)
}
