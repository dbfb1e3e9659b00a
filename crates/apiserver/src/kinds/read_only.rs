//! Kinds served read-only and always empty (`pernode_resources::READ_ONLY_VERBS`): the rest of
//! kubectl's default prune allowlist (PersistentVolumeClaim, PersistentVolume,
//! ReplicationController, Deployment, ReplicaSet, StatefulSet, Job, CronJob, Ingress).
//! pernode runs no controller for them, so it refuses to store them (405) rather than keep
//! objects nothing acts on; `kubectl apply --prune` lists them and finds nothing.

use super::Kind;

/// Writes never reach admission (the verbs refuse them first); this answers if one did.
const fn read_only(group: &'static str, plural: &'static str) -> Kind {
    Kind::new(group, plural, |info, _, _, _| {
        Err(crate::error::ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            info.group_resource()
        )))
    })
}

pub static PERSISTENT_VOLUME_CLAIMS: Kind = read_only("", "persistentvolumeclaims");
pub static PERSISTENT_VOLUMES: Kind = read_only("", "persistentvolumes");
pub static REPLICATION_CONTROLLERS: Kind = read_only("", "replicationcontrollers");
pub static DEPLOYMENTS: Kind = read_only("apps", "deployments");
pub static REPLICA_SETS: Kind = read_only("apps", "replicasets");
pub static STATEFUL_SETS: Kind = read_only("apps", "statefulsets");
pub static CRON_JOBS: Kind = read_only("batch", "cronjobs");
pub static JOBS: Kind = read_only("batch", "jobs");
pub static INGRESSES: Kind = read_only("networking.k8s.io", "ingresses");
