//! The etcd backend: kube-apiserver's storage layout and its cacher, over etcd-client.
//!
//! - Objects live at `{prefix}{store key}` (`/registry/pods/default/web-1`), as kube-apiserver
//!   lays them out, values the object's JSON; a stored object's `metadata.resourceVersion` is
//!   `""` (etcd's revision of the write is not known before it commits) and is stamped with
//!   the key's mod revision when read.
//! - resourceVersion = etcd's mod revision. Each write is one etcd transaction guarded by the
//!   key's mod revision (a create by `create_revision == 0`), so several API servers on one
//!   etcd stay consistent ([`writes`]).
//! - The store's in-memory state is a watch cache fed by ONE prefix watch ([`cache`]): lists,
//!   gets and watches are served from memory, and a write answers only once the cache has seen
//!   its revision, so a client reads its own writes.
//! - [`compactor`] compacts etcd's history as kube-apiserver's compactor (every 5 min by
//!   default); watches from before a compaction are `Expired` (410 Gone).
//! - [`test_cluster`] starts a throwaway 3-member etcd on loopback ports for tests.

mod cache;
mod compactor;
mod config;
pub mod test_cluster;
mod writes;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions};
use parking_lot::Mutex;
use tokio::task::AbortHandle;

pub use config::{ConfigError, EtcdConfig, EtcdTls};

use crate::error::{BackendError, StoreError};
use crate::store::Shared;
use crate::types::{Indexer, StoreOptions};
use crate::writer::Prepared;

/// gRPC's default 4 MiB is less than one list page or watch response of large objects can be.
const MAX_MESSAGE: usize = 64 << 20;

/// How long a write waits for the watch cache to reach its revision before answering anyway
/// (the write is committed; only read-your-writes is then not guaranteed).
const CACHE_WAIT: Duration = Duration::from_secs(10);

/// The etcd side of a [`crate::Store`].
pub(crate) struct EtcdEngine {
    client: Client,
    prefix: Arc<str>,
    indexer: Indexer,
    closed: Arc<AtomicBool>,
    tasks: Mutex<Vec<AbortHandle>>,
    request_timeout: Duration,
    health_timeout: Duration,
}

impl EtcdEngine {
    /// Connects (retrying until `config.start_timeout`), loads every object under the prefix,
    /// and starts the cache feeder and the compactor.
    pub(crate) async fn open(
        config: EtcdConfig,
        indexer: Indexer,
        opts: &StoreOptions,
    ) -> Result<(EtcdEngine, Arc<Shared>), StoreError> {
        let deadline = Instant::now() + config.start_timeout;
        let mut delay = Duration::from_millis(200);
        let (client, loaded) = loop {
            let attempt = async {
                let client = connect(&config).await?;
                let loaded = cache::load(&client, &config.prefix, &indexer, opts).await?;
                Ok::<_, StoreError>((client, loaded))
            };
            match tokio::time::timeout(config.request_timeout, attempt).await {
                Ok(Ok(ready)) => break ready,
                Ok(Err(e)) if Instant::now() + delay < deadline => {
                    tracing::warn!(endpoints = ?config.endpoints, error = %e, "cannot reach etcd; retrying");
                }
                Err(_) if Instant::now() + delay < deadline => {
                    tracing::warn!(endpoints = ?config.endpoints, "etcd did not answer in time; retrying");
                }
                Ok(Err(e)) => {
                    return Err(unavailable(format!(
                        "cannot reach etcd at {}: {e}",
                        config.endpoints.join(",")
                    )));
                }
                Err(_) => {
                    return Err(unavailable(format!(
                        "cannot reach etcd at {}: no answer within {:?}",
                        config.endpoints.join(","),
                        config.request_timeout
                    )));
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        };
        let (shared, wake) = loaded.into_shared();
        let closed = Arc::new(AtomicBool::new(false));
        let prefix: Arc<str> = config.prefix.as_str().into();
        let feeder = cache::Feeder::new(
            client.clone(),
            prefix.clone(),
            indexer.clone(),
            shared.clone(),
            wake,
            opts,
        );
        let mut tasks = vec![tokio::spawn(feeder.run()).abort_handle()];
        if !config.compaction_interval.is_zero() {
            let compactor = compactor::Compactor::new(
                client.clone(),
                shared.clone(),
                config.compaction_interval,
            );
            tasks.push(tokio::spawn(compactor.run()).abort_handle());
        }
        let engine = EtcdEngine {
            client,
            prefix,
            indexer,
            closed,
            tasks: Mutex::new(tasks),
            request_timeout: config.request_timeout,
            health_timeout: config.health_timeout,
        };
        Ok((engine, shared))
    }

    /// kube-apiserver's etcd health check: a read of key `health` within the timeout.
    pub(crate) async fn check_ready(&self) -> Result<(), StoreError> {
        retrying(self.health_timeout, || {
            let mut kv = self.client.kv_client();
            async move { kv.get("health", None).await }
        })
        .await
        .map(drop)
    }

    /// Runs `ops` one transaction each, in order.
    pub(crate) async fn submit(
        &self,
        shared: &Arc<Shared>,
        ops: Vec<Prepared>,
    ) -> Result<Vec<Result<crate::Entry, StoreError>>, StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let writer = writes::Writes {
            client: &self.client,
            prefix: &self.prefix,
            indexer: &self.indexer,
            shared,
            timeout: self.request_timeout,
        };
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(writer.write(op).await);
        }
        Ok(results)
    }

    /// Refuses later writes and stops the feeder (watchers then drain and end) and compactor.
    pub(crate) async fn close(&self) {
        self.shut_down();
    }

    pub(crate) fn shut_down(&self) {
        self.closed.store(true, Ordering::Release);
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

/// One etcd request within `timeout`, retried while the member the client picked cannot be
/// reached (gRPC `Unavailable`: a member is down; the request never got through), or its
/// connection broke under the request (a transport error: the member died meanwhile), as
/// etcd's own client retries, so that one member down fails nothing. Every write is a
/// transaction guarded by a revision, so one that did get through before its connection broke
/// is not applied twice: its retry finds the revision moved (see `writes`).
pub(crate) async fn retrying<T, F, Fut>(timeout: Duration, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let attempts = async {
        loop {
            match call().await {
                Err(etcd_client::Error::GRpcStatus(status))
                    if status.code() == tonic::Code::Unavailable
                        || (status.code() == tonic::Code::Unknown
                            && status.message() == "transport error") =>
                {
                    tracing::debug!(message = status.message(), "etcd unavailable; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    };
    match tokio::time::timeout(timeout, attempts).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(etcd_error(e)),
        Err(_) => Err(StoreError::Etcd(TIMED_OUT.into())),
    }
}

/// etcd's `ErrTimeout`: what a member that cannot reach a quorum answers a request after its
/// own timeout, and what a request etcd did not answer within ours is reported as.
const TIMED_OUT: &str = "etcdserver: request timed out";

/// etcd's refusal of an oversized request becomes the store's `TooLarge`; any other error etcd
/// answered (`etcdserver: ...`, `context deadline exceeded`) is passed on with its message, as
/// kube-apiserver's.
fn etcd_error(e: etcd_client::Error) -> StoreError {
    if let etcd_client::Error::GRpcStatus(status) = &e {
        if status.message().contains("request is too large") {
            return StoreError::TooLarge;
        }
        // A member without a quorum answers its own timeout as either, depending on where
        // the request waited (the proposal, or the read index's context).
        if status.message().starts_with("etcdserver: ")
            || status.message() == "context deadline exceeded"
        {
            return StoreError::Etcd(status.message().into());
        }
    }
    BackendError::Etcd(e).into()
}

fn unavailable(message: String) -> StoreError {
    BackendError::Unavailable(message).into()
}

async fn connect(config: &EtcdConfig) -> Result<Client, StoreError> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(config.request_timeout)
        // Notice a dead member within seconds even on an idle connection (the watch).
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
        .with_keep_alive_while_idle(true);
    if let Some(tls) = &config.tls {
        options = options.with_tls(tls.options().map_err(|e| unavailable(e.to_string()))?);
    }
    let client = Client::connect(&config.endpoints, Some(options))
        .await
        .map_err(BackendError::Etcd)?;
    Ok(client)
}

/// A get of everything under `prefix` (paged: a list of 10,000 pods is larger than a gRPC
/// message should be), at one revision. Returns the revision and the key-values.
async fn get_prefix(
    client: &Client,
    prefix: &str,
) -> Result<(i64, Vec<etcd_client::KeyValue>), StoreError> {
    const PAGE: i64 = 1000;
    let mut kv = client.kv_client().max_decoding_message_size(MAX_MESSAGE);
    let end = prefix_end(prefix.as_bytes());
    let mut start = prefix.as_bytes().to_vec();
    let mut revision = 0;
    let mut out = Vec::new();
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if revision != 0 {
            options = options.with_revision(revision);
        }
        let mut resp = kv
            .get(start.clone(), Some(options))
            .await
            .map_err(BackendError::Etcd)?;
        if revision == 0 {
            revision = resp.header().map_or(0, |h| h.revision());
        }
        let more = resp.more();
        let kvs = resp.take_kvs();
        if let Some(last) = kvs.last() {
            start = last.key().to_vec();
            start.push(0);
        }
        let empty = kvs.is_empty();
        out.extend(kvs);
        if !more || empty {
            break;
        }
    }
    Ok((revision, out))
}

/// The end of etcd's range for a prefix: the prefix with its last byte below 0xff incremented.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): to the end of the keyspace.
    vec![0]
}

/// An etcd revision as a resourceVersion: etcd's revisions start at 1 and only grow.
fn rv_of(revision: i64) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn the_prefix_range_ends_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/registry/"), b"/registry0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }
}
