//! Watchers: readers of the event ring.
//!
//! A watcher remembers the rv of the last event it looked at and copies the following events
//! (those under its prefix) out of the ring in chunks, under the read lock. Writers never wait
//! for watchers: a watcher that falls so far behind that the ring dropped events it had not read
//! gets `Expired` once and ends, and its client relists (HTTP 410 Gone).

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::store::Shared;
use crate::types::Event;

/// How many ring events one lock hold scans at most, so a far-behind watcher does not hold the
/// read lock (and delay the writer's apply step) for long.
const SCAN_CHUNK: usize = 1024;

/// A stream of events in rv order, with no gaps and no repeats.
pub struct Watcher {
    shared: Arc<Shared>,
    prefix: Box<str>,
    /// rv of the last ring event scanned (delivered or filtered out).
    last: u64,
    buf: VecDeque<Event>,
    wake: watch::Receiver<u64>,
    /// The store closed; deliver what is left in the ring, then end.
    closed: bool,
    done: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("prefix", &self.prefix)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl Watcher {
    pub(crate) fn new(
        shared: Arc<Shared>,
        prefix: &str,
        after_rv: u64,
        wake: watch::Receiver<u64>,
    ) -> Watcher {
        Watcher {
            shared,
            prefix: prefix.into(),
            last: after_rv,
            buf: VecDeque::new(),
            wake,
            closed: false,
            done: false,
        }
    }

    /// The next event; waits for one if none is pending. `Some(Err(Expired))` once if the
    /// watcher fell behind the ring, then `None`. `None` also after the store closes and the
    /// remaining events are delivered. Cancel-safe (can be used in `select!`).
    pub async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if let Some(ev) = self.buf.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            // Mark the current rv as seen *before* scanning: a commit that lands after the scan
            // then makes `changed()` return at once, so no wake-up is lost.
            self.wake.borrow_and_update();
            match self.fill() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(more) => {
                    if more || !self.buf.is_empty() {
                        continue;
                    }
                }
            }
            if self.closed {
                self.done = true;
                continue;
            }
            if self.wake.changed().await.is_err() {
                self.closed = true;
            }
        }
    }

    /// The rv of the last event this watcher has scanned (for bookmarks).
    pub fn last_rv(&self) -> u64 {
        self.last
    }

    /// Copies up to `SCAN_CHUNK` ring events after `last` that match the prefix into `buf`.
    /// Returns whether more ring events remain unscanned.
    fn fill(&mut self) -> Result<bool, StoreError> {
        let st = self.shared.state.read();
        if self.last < st.compacted {
            return Err(StoreError::Expired {
                oldest: st.compacted,
            });
        }
        let last = self.last;
        let start = st.ring.partition_point(|e| e.entry.rv <= last);
        let end = st.ring.len().min(start + SCAN_CHUNK);
        for ev in st.ring.range(start..end) {
            if ev.entry.key.starts_with(&*self.prefix) {
                self.buf.push_back(ev.clone());
            }
        }
        if end > start {
            self.last = st.ring[end - 1].entry.rv;
        }
        Ok(end < st.ring.len())
    }
}
