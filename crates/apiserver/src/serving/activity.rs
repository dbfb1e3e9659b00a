//! Whether a connection is idle, for the timeouts hyper does not have.
//!
//! hyper bounds the wait for a request head once it is reading one, but not two other waits:
//! the first bytes of a new connection (hyper-util's HTTP/1-or-2 detection reads them without
//! a timer, so a client that connects, or finishes its TLS handshake, and sends nothing would
//! hold its descriptor forever) and an HTTP/2 connection with no stream open. kube-apiserver's
//! `http.Server` bounds both: `ReadHeaderTimeout` (32 s) from the connection's start, and
//! `IdleTimeout` (90 s) between requests, which Go's HTTP/2 server applies too.
//!
//! [`Activity`] counts a connection's open requests (a response counts until its body has been
//! sent or dropped, so a watch is never idle) and when the last one ended;
//! [`Activity::idle_deadline`] says when the connection may be closed if nothing changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use tokio::time::Instant;

/// No request has begun on the connection yet.
const NEVER: u64 = u64::MAX;

/// One connection's requests.
#[derive(Debug)]
pub(crate) struct Activity {
    started: Instant,
    open: AtomicUsize,
    /// Milliseconds after `started` at which the connection last became idle; [`NEVER`] until
    /// a first request has begun.
    idle_since_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            open: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(NEVER),
        })
    }

    /// Marks a request as begun; it is open until the returned guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> OpenRequest {
        self.open.fetch_add(1, Ordering::AcqRel);
        // No longer "never": from now on the idle timeout applies, not the first-head one.
        let _ = self.idle_since_ms.compare_exchange(
            NEVER,
            self.elapsed_ms(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        OpenRequest(self.clone())
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    /// When the connection may be closed for idleness if nothing happens before: `first_head`
    /// after its start if no request has begun, `idle` after its last request ended, or `None`
    /// while a request is open.
    pub(crate) fn idle_deadline(&self, first_head: Duration, idle: Duration) -> Option<Instant> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.idle_since_ms.load(Ordering::Acquire) {
            NEVER => Some(self.started + first_head),
            ms => Some(self.started + Duration::from_millis(ms) + idle),
        }
    }
}

/// A request in progress; dropping it ends it.
#[derive(Debug)]
pub(crate) struct OpenRequest(Arc<Activity>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0
            .idle_since_ms
            .store(self.0.elapsed_ms(), Ordering::Release);
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request open until it has been sent (or dropped).
pub(crate) struct TrackedBody {
    inner: Body,
    _open: OpenRequest,
}

impl TrackedBody {
    pub(crate) fn new(inner: Body, open: OpenRequest) -> TrackedBody {
        TrackedBody { inner, _open: open }
    }
}

impl HttpBody for TrackedBody {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_connections_requests() {
        let first_head = Duration::from_secs(32);
        let idle = Duration::from_secs(90);
        let activity = Activity::new();
        // Nothing sent yet: the first head's timeout, from the connection's start.
        assert_eq!(
            activity.idle_deadline(first_head, idle),
            Some(activity.started + first_head)
        );
        let open = activity.begin();
        let second = activity.begin();
        assert_eq!(activity.idle_deadline(first_head, idle), None);
        drop(open);
        // One still open (a watch streaming, say): never idle.
        assert_eq!(activity.idle_deadline(first_head, idle), None);
        let before = Instant::now();
        drop(second);
        let after = Instant::now();
        // Idle from the end of the last request, to the millisecond.
        let deadline = activity
            .idle_deadline(first_head, idle)
            .expect("idle once every request ended");
        assert!(deadline + Duration::from_millis(1) >= before + idle);
        assert!(deadline <= after + idle);
    }
}
