//! A deduplicating work queue, after client-go's `workqueue`: a key queued several times is
//! processed once; a key re-added while it is being processed is processed again afterwards
//! (never by two workers at once); failed keys come back after a per-key exponential backoff.
//!
//! A named queue ([`WorkQueue::named`]) records client-go's workqueue metrics
//! ([`crate::workqueue_metrics`]) with client-go's semantics.
//!
//! Used by every control loop: the DaemonSet controller (with the global token bucket
//! upstream's controllers add on top), the scheduler, the garbage collector, pod GC, node
//! lifecycle and the fleet simulator.

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::TokenBucket;
use crate::workqueue_metrics::QueueMetrics;

/// See the module documentation. Cloning gives another handle on the same queue.
pub struct WorkQueue<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<K> {
    state: Mutex<State<K>>,
    notify: Notify,
    base_delay: Duration,
    max_delay: Duration,
    /// Set for a named queue.
    metrics: Option<QueueMetrics>,
}

struct State<K> {
    queue: VecDeque<K>,
    /// Keys waiting to be processed (queued, or re-added while processing).
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    shut_down: bool,
    /// Optional overall limit on rate-limited requeues.
    bucket: Option<TokenBucket>,
    /// A named queue's first add of each waiting key, and when each key's processing started
    /// (client-go's `addTimes` and `processingStartTimes`); empty for an unnamed queue.
    added_at: HashMap<K, Instant>,
    started_at: HashMap<K, Instant>,
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    /// A queue whose retry delays start at `base_delay` and double up to `max_delay`.
    pub fn new(base_delay: Duration, max_delay: Duration) -> Self {
        Self::build(base_delay, max_delay, None)
    }

    /// The same queue whose rate-limited requeues also share a token bucket of `qps` with
    /// `burst` (upstream's default controller rate limiter: 10 qps, burst 100): a requeue
    /// waits for the larger of its own backoff and the bucket.
    pub fn with_bucket(base_delay: Duration, max_delay: Duration, qps: f64, burst: f64) -> Self {
        Self::build(base_delay, max_delay, Some((qps, burst)))
    }

    fn build(base_delay: Duration, max_delay: Duration, bucket: Option<(f64, f64)>) -> Self {
        WorkQueue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    failures: HashMap::new(),
                    shut_down: false,
                    bucket: bucket.map(|(qps, burst)| TokenBucket::new(qps, burst)),
                    added_at: HashMap::new(),
                    started_at: HashMap::new(),
                }),
                notify: Notify::new(),
                base_delay,
                max_delay,
                metrics: None,
            }),
        }
    }

    /// This queue, recording the workqueue metrics labelled `name` (upstream's queue name of
    /// the controller). Call it on a new queue, before any clone is made.
    pub fn named(mut self, name: &str) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.metrics = Some(QueueMetrics::of(name)),
            None => tracing::warn!(name, "a work queue named after it was shared: no metrics"),
        }
        self
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // A panic while holding the lock leaves consistent sets behind: keep going.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `key` now (no-op if it is already waiting).
    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if s.shut_down || s.dirty.contains(&key) {
            return;
        }
        if let Some(m) = &self.inner.metrics {
            m.adds.inc();
            m.depth.inc();
            s.added_at.entry(key.clone()).or_insert_with(Instant::now);
        }
        s.dirty.insert(key.clone());
        if s.processing.contains(&key) {
            return; // `done` queues it again.
        }
        s.queue.push_back(key);
        drop(s);
        self.inner.notify.notify_one();
    }

    /// Queue `key` after `delay`.
    pub fn add_after(&self, key: K, delay: Duration) {
        // client-go counts every delayed add as a retry, the immediate ones included.
        if let Some(m) = &self.inner.metrics
            && !self.lock().shut_down
        {
            m.retries.inc();
        }
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
    }

    /// Queue `key` after its next backoff delay (base × 2^failures, capped), or the token
    /// bucket's wait if that is longer.
    pub fn add_rate_limited(&self, key: K) {
        let delay = {
            let mut s = self.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            let exp = (*n).min(30);
            *n = n.saturating_add(1);
            let per_key = self
                .inner
                .base_delay
                .saturating_mul(1u32 << exp)
                .min(self.inner.max_delay);
            match &mut s.bucket {
                None => per_key,
                Some(bucket) => per_key.max(bucket.reserve(Instant::now())),
            }
        };
        self.add_after(key, delay);
    }

    /// Reset `key`'s backoff (after a success).
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// The next key to process, or `None` once shut down. Call [`WorkQueue::done`] after.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.inner.notify.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    if let Some(m) = &self.inner.metrics {
                        m.depth.dec();
                        let now = Instant::now();
                        if let Some(added) = s.added_at.remove(&key) {
                            m.queue_duration
                                .observe(now.duration_since(added).as_secs_f64());
                        }
                        s.started_at.insert(key.clone(), now);
                    }
                    s.processing.insert(key.clone());
                    let more = !s.queue.is_empty();
                    drop(s);
                    if more {
                        // Wake the next worker too: notify_one wakes only one.
                        self.inner.notify.notify_one();
                    }
                    return Some(key);
                }
                if s.shut_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Mark `key` processed; it is queued again if it was re-added meanwhile.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.processing.remove(key);
        if let Some(m) = &self.inner.metrics
            && let Some(started) = s.started_at.remove(key)
        {
            m.work_duration.observe(started.elapsed().as_secs_f64());
        }
        if s.dirty.contains(key) && !s.shut_down {
            s.queue.push_back(key.clone());
            drop(s);
            self.inner.notify.notify_one();
        }
    }

    /// Stop handing out keys; waiting `get` calls return `None`.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.inner.notify.notify_waiters();
    }

    /// Number of keys waiting (not counting those being processed).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_requeues_keys_added_while_processing() {
        let q = WorkQueue::new(Duration::from_millis(1), Duration::from_millis(10));
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.get().await;
        assert_eq!(k, Some("a"));
        q.add("a"); // while processing: not handed to another worker
        assert_eq!(q.get().await, Some("b"));
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.get().await, Some("a"));
        q.done(&"a");
        q.done(&"b");
        q.shut_down();
        assert_eq!(q.get().await, None);
    }

    #[tokio::test]
    async fn the_bucket_spaces_requeues_once_its_burst_is_spent() {
        let q = WorkQueue::with_bucket(Duration::ZERO, Duration::ZERO, 10.0, 1.0);
        q.add_rate_limited(1u32); // takes the one token: immediate
        assert_eq!(q.len(), 1);
        q.add_rate_limited(2u32); // must wait ~100 ms for a token
        assert_eq!(q.len(), 1);
        let second = async {
            loop {
                let k = q.get().await;
                if k == Some(2) {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(2), second)
            .await
            .expect("the second key comes back");
    }

    #[tokio::test]
    async fn a_named_queue_records_client_gos_metrics() {
        let metrics = || {
            let mut registry = prometheus_client::registry::Registry::default();
            crate::workqueue_metrics::register(&mut registry);
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
            text
        };
        let q = WorkQueue::new(Duration::ZERO, Duration::ZERO).named("unit-test-queue");
        let series = |text: &str, name: &str| -> String {
            let prefix = format!("{name}{{name=\"unit-test-queue\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or("absent")
                .to_string()
        };
        q.add("a");
        q.add("a"); // deduplicated: not an add
        q.add("b");
        let text = metrics();
        assert_eq!(series(&text, "workqueue_adds_total"), "2", "{text}");
        assert_eq!(series(&text, "workqueue_depth"), "2", "{text}");
        let a = q.get().await.expect("a");
        q.done(&a);
        q.add_rate_limited("b"); // already waiting: a retry, not an add
        let text = metrics();
        assert_eq!(series(&text, "workqueue_depth"), "1", "{text}");
        assert_eq!(series(&text, "workqueue_adds_total"), "2", "{text}");
        assert_eq!(series(&text, "workqueue_retries_total"), "1", "{text}");
        assert_eq!(
            series(&text, "workqueue_queue_duration_seconds_count"),
            "1",
            "{text}"
        );
        assert_eq!(
            series(&text, "workqueue_work_duration_seconds_count"),
            "1",
            "{text}"
        );
    }

    #[tokio::test]
    async fn rate_limited_keys_come_back() {
        let q = WorkQueue::new(Duration::from_millis(1), Duration::from_millis(5));
        q.add_rate_limited(7u32);
        q.add_rate_limited(7u32);
        let got = tokio::time::timeout(Duration::from_secs(2), q.get()).await;
        assert_eq!(got.ok().flatten(), Some(7));
    }
}
