//! Leader election, as client-go's `tools/leaderelection`: several replicas of a component
//! campaign for one lock (a `coordination.k8s.io/v1` Lease, [`lease_lock::LeaseLock`]); the one
//! that holds it runs, the others wait and take over once the holder stops renewing.
//!
//! The semantics are upstream's:
//! - A candidate writes the record (holder identity, lease duration, acquire and renew times,
//!   transitions) when the lock is absent, when the record names no holder, or when the record
//!   it observed has not changed for a whole lease duration, measured on its own clock from
//!   when it first saw that record (never from the times written in it: clocks of different
//!   machines need not agree).
//! - The leader renews every retry period. Its writes are optimistic (the lock's last-read
//!   version), so of two candidates racing for an expired lease only one wins.
//! - A leader that cannot renew within the renew deadline stops leading. It gives up at most a
//!   retry period plus the renew deadline after its last renewal, which is before the lease
//!   duration (checked by [`Config::validate`]) after which another candidate may take over:
//!   a deposed leader stops before a new one starts.
//! - Taking over from another holder counts a transition; renewing keeps the acquire time.
//!
//! [`LeaderElector::try_acquire_or_renew`] is one step of the state machine with the time
//! passed in, so the tests drive it on a fake clock; [`LeaderElector::run`] loops it on tokio's
//! clock.

pub mod lease_lock;

use std::future::Future;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

/// client-go's `JitterFactor`: a candidate waits a retry period plus up to 1.2 of it between
/// attempts to acquire, so that candidates do not move in step.
pub const JITTER_FACTOR: f64 = 1.2;

/// What the lock holds: client-go's `LeaderElectionRecord`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderElectionRecord {
    /// The leader's identity; empty when nobody holds the lock.
    pub holder_identity: String,
    pub lease_duration_seconds: i32,
    pub acquire_time: Option<Timestamp>,
    pub renew_time: Option<Timestamp>,
    pub leader_transitions: i32,
}

/// Why a lock operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock changed since it was read (a 409): another candidate wrote it.
    #[error("the lock was changed by another writer: {0}")]
    Conflict(String),
    /// Updating a lock that was never read or created.
    #[error("the lock has not been read yet")]
    NotInitialized,
    /// Anything else the API answered or the connection did.
    #[error("{0}")]
    Api(String),
}

/// A lock the record is kept in (client-go's `resourcelock.Interface`).
pub trait Lock: Send {
    /// Who this candidate is (`<hostname>_<uuid>` for kube-controller-manager).
    fn identity(&self) -> &str;
    /// The current record, `None` when the lock does not exist.
    fn get(
        &mut self,
    ) -> impl Future<Output = Result<Option<LeaderElectionRecord>, LockError>> + Send;
    /// Creates the lock holding `record`.
    fn create(
        &mut self,
        record: &LeaderElectionRecord,
    ) -> impl Future<Output = Result<(), LockError>> + Send;
    /// Replaces the record of the lock as last read or written (optimistically: fails if
    /// someone else wrote it since).
    fn update(
        &mut self,
        record: &LeaderElectionRecord,
    ) -> impl Future<Output = Result<(), LockError>> + Send;
}

/// The durations of an election (client-go's `LeaderElectionConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// How long non-leaders wait after the last change they observed before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps retrying to renew before it gives up.
    pub renew_deadline: Duration,
    /// How long candidates wait between attempts.
    pub retry_period: Duration,
}

impl Default for Config {
    /// kube-controller-manager's defaults: 15 s, 10 s, 2 s.
    fn default() -> Self {
        Config {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// A [`Config`] upstream's `NewLeaderElector` refuses, with its message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("leaseDuration must be greater than renewDeadline")]
    LeaseNotAfterRenewDeadline,
    #[error("renewDeadline must be greater than retryPeriod*JitterFactor")]
    RenewDeadlineTooShort,
    #[error("leaseDuration must be greater than zero")]
    ZeroLeaseDuration,
    #[error("renewDeadline must be greater than zero")]
    ZeroRenewDeadline,
    #[error("retryPeriod must be greater than zero")]
    ZeroRetryPeriod,
    #[error("Lock identity is empty")]
    EmptyIdentity,
}

impl Config {
    /// Upstream's checks, in its order.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_duration <= self.renew_deadline {
            return Err(ConfigError::LeaseNotAfterRenewDeadline);
        }
        if self.renew_deadline <= self.retry_period.mul_f64(JITTER_FACTOR) {
            return Err(ConfigError::RenewDeadlineTooShort);
        }
        if self.lease_duration.is_zero() {
            return Err(ConfigError::ZeroLeaseDuration);
        }
        if self.renew_deadline.is_zero() {
            return Err(ConfigError::ZeroRenewDeadline);
        }
        if self.retry_period.is_zero() {
            return Err(ConfigError::ZeroRetryPeriod);
        }
        Ok(())
    }
}

/// How [`LeaderElector::run`] ended.
#[derive(Debug)]
pub enum Ended<T> {
    /// The leading work finished on its own, with its result.
    Finished(T),
    /// The leader could not renew within the renew deadline and stopped the work (upstream's
    /// `OnStoppedLeading`, after which kube-controller-manager exits).
    LostLease,
}

/// One candidate: the record it last observed and when (client-go's `LeaderElector`).
pub struct LeaderElector<L: Lock> {
    config: Config,
    lock: L,
    observed: Option<LeaderElectionRecord>,
    observed_time: Option<Instant>,
    /// The wall clock of the times written in the record.
    wall_clock: fn() -> Timestamp,
}

impl<L: Lock> LeaderElector<L> {
    /// A candidate for `lock`; refused as upstream refuses a bad configuration.
    pub fn new(config: Config, lock: L) -> Result<Self, ConfigError> {
        config.validate()?;
        if lock.identity().is_empty() {
            return Err(ConfigError::EmptyIdentity);
        }
        Ok(LeaderElector {
            config,
            lock,
            observed: None,
            observed_time: None,
            wall_clock: Timestamp::now,
        })
    }

    /// Whether the last record observed names this candidate.
    pub fn is_leader(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|r| r.holder_identity == self.lock.identity())
    }

    /// The record last observed (read or written).
    pub fn observed(&self) -> Option<&LeaderElectionRecord> {
        self.observed.as_ref()
    }

    fn lease_valid(&self, now: Instant) -> bool {
        self.observed_time
            .is_some_and(|t| t + self.config.lease_duration > now)
    }

    fn set_observed(&mut self, record: LeaderElectionRecord, now: Instant) {
        self.observed = Some(record);
        self.observed_time = Some(now);
    }

    /// One attempt to take or keep the lock at `now` (upstream's `tryAcquireOrRenew`): true
    /// when this candidate holds it afterwards.
    pub async fn try_acquire_or_renew(&mut self, now: Instant) -> bool {
        let wall = (self.wall_clock)();
        let mut record = LeaderElectionRecord {
            holder_identity: self.lock.identity().to_owned(),
            lease_duration_seconds: i32::try_from(self.config.lease_duration.as_secs())
                .unwrap_or(i32::MAX),
            acquire_time: Some(wall),
            renew_time: Some(wall),
            leader_transitions: 0,
        };
        // The leader's fast path: renew the record it wrote last, without reading it first.
        if self.is_leader()
            && self.lease_valid(now)
            && let Some(old) = &self.observed
        {
            record.acquire_time = old.acquire_time;
            record.leader_transitions = old.leader_transitions;
            match self.lock.update(&record).await {
                Ok(()) => {
                    self.set_observed(record, now);
                    return true;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "failed to update the lock optimistically, falling back to the slow path")
                }
            }
        }
        let old = match self.lock.get().await {
            Ok(Some(old)) => old,
            Ok(None) => {
                return match self.lock.create(&record).await {
                    Ok(()) => {
                        self.set_observed(record, now);
                        true
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "error initially creating the leader election record");
                        false
                    }
                };
            }
            Err(e) => {
                tracing::warn!(error = %e, "error retrieving the lock");
                return false;
            }
        };
        // A changed record restarts the wait: it was written just now as far as we know.
        if self.observed.as_ref() != Some(&old) {
            self.set_observed(old.clone(), now);
        }
        if !old.holder_identity.is_empty() && self.lease_valid(now) && !self.is_leader() {
            tracing::debug!(holder = %old.holder_identity, "the lock is held and has not yet expired");
            return false;
        }
        if self.is_leader() {
            record.acquire_time = old.acquire_time;
            record.leader_transitions = old.leader_transitions;
        } else {
            record.leader_transitions = old.leader_transitions.saturating_add(1);
        }
        match self.lock.update(&record).await {
            Ok(()) => {
                self.set_observed(record, now);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to update the lock");
                false
            }
        }
    }

    /// Campaigns until this candidate holds the lock (upstream's `acquire`): an attempt every
    /// retry period plus jitter.
    pub async fn acquire(&mut self) {
        loop {
            if self.try_acquire_or_renew(Instant::now()).await {
                tracing::info!(identity = %self.lock.identity(), "successfully acquired the lease");
                return;
            }
            let jitter = rand::random::<f64>() * JITTER_FACTOR;
            tokio::time::sleep(self.config.retry_period.mul_f64(1.0 + jitter)).await;
        }
    }

    /// Keeps the lock renewed until a renewal cannot succeed within the renew deadline
    /// (upstream's `renew`): an attempt every retry period; each attempt, requests included,
    /// is cut off at the deadline.
    pub async fn renew(&mut self) {
        loop {
            let deadline = Instant::now() + self.config.renew_deadline;
            let renewed = loop {
                let attempt = self.try_acquire_or_renew(Instant::now());
                match tokio::time::timeout_at(deadline, attempt).await {
                    Ok(true) => break true,
                    Ok(false) => {}
                    Err(_) => break false,
                }
                let next = Instant::now() + self.config.retry_period;
                if next >= deadline {
                    break false;
                }
                tokio::time::sleep_until(next).await;
            };
            if !renewed {
                tracing::error!(identity = %self.lock.identity(), "failed to renew the lease: leader election lost");
                return;
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Campaigns, then runs `lead` while renewing (upstream's `Run`): ends when `lead` does
    /// or, dropping `lead` (which must stop writing when dropped), when the lease is lost.
    pub async fn run<T>(mut self, lead: impl Future<Output = T>) -> Ended<T> {
        self.acquire().await;
        tokio::select! {
            result = lead => Ended::Finished(result),
            () = self.renew() => Ended::LostLease,
        }
    }
}

#[cfg(test)]
mod tests;
