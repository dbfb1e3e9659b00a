//! The election's lock as a `coordination.k8s.io/v1` Lease (client-go's `resourcelock.LeaseLock`):
//! the record is the Lease's spec, and an update replaces the Lease as last read or written,
//! so the API server's resourceVersion check refuses a write based on a stale read.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use super::{LeaderElectionRecord, Lock, LockError};

/// A Lease `namespace/name` as the lock of candidate `identity`.
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// The Lease as last read or written: its resourceVersion guards the next update.
    lease: Option<Lease>,
}

impl LeaseLock {
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: String) -> Self {
        LeaseLock {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity,
            lease: None,
        }
    }
}

/// Upstream's `LeaderElectionRecordToLeaseSpec`.
pub fn lease_spec(record: &LeaderElectionRecord) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(record.holder_identity.clone()),
        lease_duration_seconds: Some(record.lease_duration_seconds),
        acquire_time: record.acquire_time.map(MicroTime),
        renew_time: record.renew_time.map(MicroTime),
        lease_transitions: Some(record.leader_transitions),
        ..LeaseSpec::default()
    }
}

/// Upstream's `LeaseSpecToLeaderElectionRecord`: absent fields are empty or zero.
pub fn record_of(spec: &LeaseSpec) -> LeaderElectionRecord {
    LeaderElectionRecord {
        holder_identity: spec.holder_identity.clone().unwrap_or_default(),
        lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
        acquire_time: spec.acquire_time.as_ref().map(|t| t.0),
        renew_time: spec.renew_time.as_ref().map(|t| t.0),
        leader_transitions: spec.lease_transitions.unwrap_or(0),
    }
}

fn lock_error(e: kube::Error) -> LockError {
    match e {
        kube::Error::Api(status) if status.code == 409 => LockError::Conflict(status.message),
        e => LockError::Api(e.to_string()),
    }
}

impl Lock for LeaseLock {
    fn identity(&self) -> &str {
        &self.identity
    }

    async fn get(&mut self) -> Result<Option<LeaderElectionRecord>, LockError> {
        let lease = self.api.get_opt(&self.name).await.map_err(lock_error)?;
        let record = lease
            .as_ref()
            .map(|l| record_of(&l.spec.clone().unwrap_or_default()));
        self.lease = lease;
        Ok(record)
    }

    async fn create(&mut self, record: &LeaderElectionRecord) -> Result<(), LockError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(lease_spec(record)),
        };
        let created = self
            .api
            .create(&PostParams::default(), &lease)
            .await
            .map_err(lock_error)?;
        self.lease = Some(created);
        Ok(())
    }

    async fn update(&mut self, record: &LeaderElectionRecord) -> Result<(), LockError> {
        let Some(mut lease) = self.lease.clone() else {
            return Err(LockError::NotInitialized);
        };
        lease.spec = Some(lease_spec(record));
        let updated = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(lock_error)?;
        self.lease = Some(updated);
        Ok(())
    }
}
