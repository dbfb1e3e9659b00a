//! coordination.k8s.io/v1: Lease (pkg/registry/coordination/lease).

use k8s_openapi::api::coordination::v1::Lease;
use pernode_admission::validate;

use super::Kind;
use crate::registry::admit_typed;

pub static LEASES: Kind = Kind {
    micro_times: &["spec.acquireTime", "spec.renewTime"],
    ..Kind::new("coordination.k8s.io", "leases", |info, op, obj, v| {
        admit_typed::<Lease>(info, op, obj, v, false, |lease, _| validate::lease(lease))
    })
};
