//! storage.k8s.io/v1: CSIDriver and CSINode (pkg/registry/storage).

use k8s_openapi::api::storage::v1::{CSIDriver, CSINode};

use super::Kind;
use crate::registry::admit_meta;

pub static CSI_DRIVERS: Kind = Kind::new("storage.k8s.io", "csidrivers", |info, op, obj, v| {
    admit_meta::<CSIDriver>(info, op, obj, v)
});

pub static CSI_NODES: Kind = Kind::new("storage.k8s.io", "csinodes", |info, op, obj, v| {
    admit_meta::<CSINode>(info, op, obj, v)
});
