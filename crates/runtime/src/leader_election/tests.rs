//! The election's state machine on a fake clock (instants passed in) and an in-memory lock
//! with versions, as the API server's resourceVersion; then `run` on tokio's clock with short
//! durations.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// The stored record and its version, shared by every candidate's [`FakeLock`].
#[derive(Default)]
struct Store {
    record: Option<(LeaderElectionRecord, u64)>,
    version: u64,
}

#[derive(Clone)]
struct FakeLock {
    identity: String,
    store: Arc<Mutex<Store>>,
    /// The version this candidate last read or wrote.
    seen: Option<u64>,
    /// Requests fail (the candidate is cut off from the API server).
    broken: Arc<AtomicBool>,
    /// Requests never answer.
    hanging: Arc<AtomicBool>,
}

impl FakeLock {
    fn new(identity: &str, store: &Arc<Mutex<Store>>) -> FakeLock {
        FakeLock {
            identity: identity.into(),
            store: store.clone(),
            seen: None,
            broken: Arc::default(),
            hanging: Arc::default(),
        }
    }

    async fn reachable(&self) -> Result<(), LockError> {
        if self.hanging.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.broken.load(Ordering::SeqCst) {
            return Err(LockError::Api("connection refused".into()));
        }
        Ok(())
    }
}

fn store_of(lock: &FakeLock) -> std::sync::MutexGuard<'_, Store> {
    lock.store.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lock for FakeLock {
    fn identity(&self) -> &str {
        &self.identity
    }

    async fn get(&mut self) -> Result<Option<LeaderElectionRecord>, LockError> {
        self.reachable().await?;
        let found = store_of(self).record.clone();
        self.seen = found.as_ref().map(|(_, v)| *v);
        Ok(found.map(|(r, _)| r))
    }

    async fn create(&mut self, record: &LeaderElectionRecord) -> Result<(), LockError> {
        self.reachable().await?;
        let mut store = store_of(self);
        if store.record.is_some() {
            return Err(LockError::Conflict("exists".into()));
        }
        store.version += 1;
        let version = store.version;
        store.record = Some((record.clone(), version));
        drop(store);
        self.seen = Some(version);
        Ok(())
    }

    async fn update(&mut self, record: &LeaderElectionRecord) -> Result<(), LockError> {
        self.reachable().await?;
        let Some(seen) = self.seen else {
            return Err(LockError::NotInitialized);
        };
        let mut store = store_of(self);
        if store.record.as_ref().map(|(_, v)| *v) != Some(seen) {
            return Err(LockError::Conflict("stale".into()));
        }
        store.version += 1;
        let version = store.version;
        store.record = Some((record.clone(), version));
        drop(store);
        self.seen = Some(version);
        Ok(())
    }
}

fn stored(store: &Arc<Mutex<Store>>) -> LeaderElectionRecord {
    store
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record
        .clone()
        .map(|(r, _)| r)
        .expect("a record")
}

fn elector(identity: &str, store: &Arc<Mutex<Store>>) -> LeaderElector<FakeLock> {
    LeaderElector::new(Config::default(), FakeLock::new(identity, store)).expect("valid config")
}

const SEC: Duration = Duration::from_secs(1);

#[test]
fn a_configuration_upstream_refuses_is_refused_with_its_message() {
    let ok = Config::default();
    assert_eq!(ok.validate(), Ok(()));
    let with = |lease, renew, retry| Config {
        lease_duration: Duration::from_millis(lease),
        renew_deadline: Duration::from_millis(renew),
        retry_period: Duration::from_millis(retry),
    };
    let e = with(10_000, 10_000, 2_000)
        .validate()
        .expect_err("lease = renew");
    assert_eq!(
        e.to_string(),
        "leaseDuration must be greater than renewDeadline"
    );
    // 1.2 × 2 s = 2.4 s.
    let e = with(15_000, 2_400, 2_000)
        .validate()
        .expect_err("renew too short");
    assert_eq!(
        e.to_string(),
        "renewDeadline must be greater than retryPeriod*JitterFactor"
    );
    assert_eq!(with(15_000, 2_401, 2_000).validate(), Ok(()));
    let e = with(15_000, 10_000, 0)
        .validate()
        .expect_err("no retry period");
    assert_eq!(e.to_string(), "retryPeriod must be greater than zero");
    let store = Arc::default();
    let e = LeaderElector::new(ok, FakeLock::new("", &store))
        .err()
        .expect("no identity");
    assert_eq!(e.to_string(), "Lock identity is empty");
}

#[tokio::test]
async fn the_first_candidate_creates_the_lease_and_renewing_keeps_its_acquire_time() {
    let store = Arc::default();
    let mut a = elector("a", &store);
    let t0 = Instant::now();
    assert!(a.try_acquire_or_renew(t0).await);
    assert!(a.is_leader());
    let first = stored(&store);
    assert_eq!(first.holder_identity, "a");
    assert_eq!(first.lease_duration_seconds, 15);
    assert_eq!(first.leader_transitions, 0);
    assert!(first.acquire_time.is_some());
    assert_eq!(first.acquire_time, first.renew_time);

    assert!(a.try_acquire_or_renew(t0 + 2 * SEC).await);
    let renewed = stored(&store);
    assert_eq!(renewed.acquire_time, first.acquire_time);
    assert_eq!(renewed.leader_transitions, 0);
    assert!(renewed.renew_time >= first.renew_time);
}

#[tokio::test]
async fn a_standby_takes_over_a_lease_unchanged_for_its_duration_and_counts_a_transition() {
    let store = Arc::default();
    let mut a = elector("a", &store);
    let mut b = elector("b", &store);
    let t0 = Instant::now();
    assert!(a.try_acquire_or_renew(t0).await);
    // b first sees the record at t0 + 1 s: the lease counts from then, on b's clock.
    assert!(!b.try_acquire_or_renew(t0 + SEC).await);
    assert!(!b.is_leader());
    assert!(
        !b.try_acquire_or_renew(t0 + 15 * SEC).await,
        "only 14 s since b saw it"
    );
    assert_eq!(stored(&store).holder_identity, "a");
    // a renews at 15 s: a changed record, the wait starts again.
    assert!(a.try_acquire_or_renew(t0 + 15 * SEC).await);
    assert!(!b.try_acquire_or_renew(t0 + 17 * SEC).await);
    assert!(
        !b.try_acquire_or_renew(t0 + 31 * SEC).await,
        "14 s since the renewal was seen"
    );
    // a stopped renewing; 15 s after b saw its last renewal, b takes over.
    assert!(b.try_acquire_or_renew(t0 + 32 * SEC).await);
    assert!(b.is_leader());
    let taken = stored(&store);
    assert_eq!(taken.holder_identity, "b");
    assert_eq!(taken.leader_transitions, 1);
    assert_eq!(taken.acquire_time, taken.renew_time);
    // The old leader, back, finds the lock taken: its optimistic write conflicts, and the
    // record it then reads names b.
    assert!(!a.try_acquire_or_renew(t0 + 33 * SEC).await);
    assert!(!a.is_leader());
    assert_eq!(stored(&store).holder_identity, "b");
}

#[tokio::test]
async fn a_lease_without_a_holder_is_taken_at_once() {
    let store: Arc<Mutex<Store>> = Arc::default();
    let released = LeaderElectionRecord {
        lease_duration_seconds: 1,
        leader_transitions: 4,
        ..LeaderElectionRecord::default()
    };
    store.lock().unwrap_or_else(|e| e.into_inner()).record = Some((released, 1));
    let mut a = elector("a", &store);
    assert!(a.try_acquire_or_renew(Instant::now()).await);
    assert_eq!(stored(&store).leader_transitions, 5);
}

#[tokio::test]
async fn of_two_candidates_racing_for_an_expired_lease_one_wins() {
    let store = Arc::default();
    let mut old = elector("old", &store);
    let mut a = elector("a", &store);
    let mut b = elector("b", &store);
    let t0 = Instant::now();
    assert!(old.try_acquire_or_renew(t0).await);
    assert!(!a.try_acquire_or_renew(t0).await);
    assert!(!b.try_acquire_or_renew(t0).await);
    // Both read the expired record, then both write: the second write is on a stale version.
    let later = t0 + 16 * SEC;
    assert!(a.lock.get().await.expect("read").is_some());
    assert!(b.lock.get().await.expect("read").is_some());
    let a_won = a.try_acquire_or_renew(later).await;
    let b_won = b.try_acquire_or_renew(later).await;
    assert!(a_won != b_won, "a: {a_won}, b: {b_won}");
    assert_eq!(stored(&store).leader_transitions, 1);
}

/// Short durations on tokio's clock: lease 3 s, renew deadline 1 s, retry 200 ms. A leader
/// gives up at most 1.2 s after its last renewal, a standby waits 3 s from when it saw it.
fn quick() -> Config {
    Config {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(1),
        retry_period: Duration::from_millis(200),
    }
}

/// Runs candidate `lock` until it loses the lease, with `leading` set while it leads; returns
/// whether it saw another leader while it led.
async fn campaign(lock: FakeLock, leading: Arc<Mutex<Vec<String>>>) -> Ended<()> {
    let me = lock.identity.clone();
    let elector = LeaderElector::new(quick(), lock).expect("valid");
    let lead = {
        let leading = leading.clone();
        let me = me.clone();
        async move {
            {
                let mut now = leading.lock().unwrap_or_else(|e| e.into_inner());
                assert!(now.is_empty(), "{me} leads while {now:?} still does");
                now.push(me.clone());
            }
            // Leads until dropped; the guard leaves the set when the future is dropped.
            let _guard = Leaving(leading, me);
            std::future::pending::<()>().await
        }
    };
    elector.run(lead).await
}

struct Leaving(Arc<Mutex<Vec<String>>>, String);

impl Drop for Leaving {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|l| *l != self.1);
    }
}

async fn leader_is(leading: &Arc<Mutex<Vec<String>>>, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if leading.lock().unwrap_or_else(|e| e.into_inner()).as_slice() == [who] {
            return;
        }
        assert!(Instant::now() < deadline, "{who} never led");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_stops_leading_before_the_standby_takes_over() {
    for cut in ["broken", "hanging"] {
        let store = Arc::default();
        let leading = Arc::new(Mutex::new(Vec::new()));
        let a = FakeLock::new("a", &store);
        let a_cut = if cut == "broken" {
            a.broken.clone()
        } else {
            a.hanging.clone()
        };
        let first = tokio::spawn(campaign(a, leading.clone()));
        leader_is(&leading, "a").await;
        let second = tokio::spawn(campaign(FakeLock::new("b", &store), leading.clone()));
        // b stands by while a renews.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(stored(&store).holder_identity, "a");
        a_cut.store(true, Ordering::SeqCst);
        // a gives up (its `lead` dropped) and b takes over; b's `lead` asserts that a was no
        // longer leading when it started.
        let ended = tokio::time::timeout(Duration::from_secs(30), first)
            .await
            .expect("a stops")
            .expect("a's task");
        assert!(matches!(ended, Ended::LostLease), "{cut}: {ended:?}");
        leader_is(&leading, "b").await;
        let record = stored(&store);
        assert_eq!(record.holder_identity, "b");
        assert_eq!(record.leader_transitions, 1);
        second.abort();
    }
}
