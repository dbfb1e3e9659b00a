//! Store errors. `StoreError` is `Clone` because one failed durable commit fails every write of
//! its batch, so the same backend error is handed to many callers.

use std::sync::Arc;

use thiserror::Error;

/// What the API server maps to a Status: NotFound → 404, AlreadyExists → 409, Conflict → 409,
/// Expired → 410, InvalidObject → 500 (a bug in the caller), Closed/Io → 500/503.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("conflict: the object has been modified (current resourceVersion {current_rv})")]
    Conflict { current_rv: u64 },
    /// The requested resourceVersion is older than the event ring reaches back; `oldest` is the
    /// smallest rv a watch can start from now.
    #[error("too old resource version (oldest available: {oldest})")]
    Expired { oldest: u64 },
    /// The object to store is not a JSON object (the store must be able to set
    /// `metadata.resourceVersion`).
    #[error("invalid object: {0}")]
    InvalidObject(&'static str),
    #[error("store is closed")]
    Closed,
    /// etcd refused the write for its size (`--max-request-bytes`, 1.5 MiB by default); the
    /// message is etcd's, which kube-apiserver passes on.
    #[error("etcdserver: request is too large")]
    TooLarge,
    /// etcd failed the request, or did not answer it in time (then etcd's own timeout error,
    /// `etcdserver: request timed out`, as a member without quorum answers a write): the
    /// message is etcd's, which kube-apiserver passes on with no Status reason.
    #[error("{0}")]
    Etcd(Arc<str>),
    #[error("storage error: {0}")]
    Io(Arc<BackendError>),
}

impl From<BackendError> for StoreError {
    fn from(e: BackendError) -> Self {
        StoreError::Io(Arc::new(e))
    }
}

/// Failures of the durable backend.
#[derive(Debug, Error)]
pub enum BackendError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record {key:?}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("could not start the writer thread: {0}")]
    Spawn(std::io::Error),
    #[cfg(feature = "etcd")]
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// etcd could not be reached or did not answer in time.
    #[error("{0}")]
    Unavailable(String),
}
