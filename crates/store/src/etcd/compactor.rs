//! Compaction as kube-apiserver's compactor: every interval, the servers sharing an etcd agree
//! through the version of key `compact_rev_key` on which of them compacts (a transaction that
//! bumps it only if it still has the version this server last saw), and the winner compacts
//! at the revision seen one interval earlier, so at least one interval of history stays for
//! watches catching up.
//!
//! After compacting, this server's watch cache drops the events before that revision too: a
//! watch from an older resourceVersion is `Expired` (410 Gone), as it is on etcd.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp, TxnOpResponse};

use super::rv_of;
use crate::error::{BackendError, StoreError};
use crate::store::Shared;

/// The key whose version counts compactions (upstream's name).
const COMPACT_REV_KEY: &str = "compact_rev_key";

pub(crate) struct Compactor {
    client: Client,
    shared: Arc<Shared>,
    interval: Duration,
}

impl Compactor {
    pub(crate) fn new(client: Client, shared: Arc<Shared>, interval: Duration) -> Compactor {
        Compactor {
            client,
            shared,
            interval,
        }
    }

    pub(crate) async fn run(self) {
        // The version of `compact_rev_key` this server expects, and the revision seen at the
        // previous tick (0: none yet).
        let mut compact_time = 0;
        let mut rev = 0;
        loop {
            tokio::time::sleep(self.interval).await;
            match self.compact(compact_time, rev).await {
                Ok((time, current)) => {
                    compact_time = time;
                    rev = current;
                }
                Err(e) => tracing::warn!(error = %e, "etcd compaction failed"),
            }
        }
    }

    /// One tick: returns the version of `compact_rev_key` now and etcd's current revision.
    async fn compact(&self, t: i64, rev: i64) -> Result<(i64, i64), StoreError> {
        let txn = Txn::new()
            .when([Compare::version(COMPACT_REV_KEY, CompareOp::Equal, t)])
            // Bumps the key's version: the other servers' guards fail until they catch up.
            .and_then([TxnOp::put(COMPACT_REV_KEY, rev.to_string(), None)])
            .or_else([TxnOp::get(COMPACT_REV_KEY, None)]);
        let mut kv = self.client.kv_client();
        let resp = kv.txn(txn).await.map_err(BackendError::Etcd)?;
        let current = resp.header().map_or(0, |h| h.revision());
        if !resp.succeeded() {
            // Another server compacted this interval; follow its count.
            let time = match resp.op_responses().into_iter().next() {
                Some(TxnOpResponse::Get(g)) => g.kvs().first().map_or(0, |kv| kv.version()),
                _ => 0,
            };
            return Ok((time, current));
        }
        if rev == 0 {
            // Nothing seen one interval ago: never compact on the first tick.
            return Ok((t + 1, current));
        }
        kv.compact(rev, None).await.map_err(BackendError::Etcd)?;
        tracing::debug!(rev, "etcd compacted");
        self.forget_before(rv_of(rev).max(1));
        Ok((t + 1, current))
    }

    /// Drops the cache's events before `rv`: watches from there on are `Expired`.
    fn forget_before(&self, rv: u64) {
        let mut st = self.shared.state.write();
        while st.ring.len() > 1 && st.ring.front().is_some_and(|ev| ev.entry.rv < rv) {
            if let Some(old) = st.ring.pop_front() {
                st.ring_bytes -= old.ring_bytes();
                st.compacted = st.compacted.max(old.entry.rv);
            }
        }
        // As etcd: no watch from before the compacted revision, even where the ring happens to
        // hold everything since (never past the cache's own rv: a watch from now stays valid).
        let floor = (rv - 1).min(st.rv);
        st.compacted = st.compacted.max(floor);
    }
}
