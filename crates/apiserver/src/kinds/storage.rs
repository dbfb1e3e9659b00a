//! storage.k8s.io/v1: CSIDriver and CSINode (pkg/registry/storage).

use k8s_openapi::api::storage::v1::{CSIDriver, CSINode};

use super::Kind;
use crate::registry::admit_typed;
use pernode_admission::validate;

pub static CSI_DRIVERS: Kind = Kind::new("storage.k8s.io", "csidrivers", |info, op, obj, v| {
    admit_typed::<CSIDriver>(info, op, obj, v, true, |d, old| {
        validate::default_csi_driver(d);
        match old {
            None => validate::csi_driver(d),
            Some(old) => validate::csi_driver_update(d, old),
        }
    })
});

pub static CSI_NODES: Kind = Kind::new("storage.k8s.io", "csinodes", |info, op, obj, v| {
    admit_typed::<CSINode>(info, op, obj, v, true, |n, old| match old {
        None => validate::csi_node(n),
        Some(old) => validate::csi_node_update(n, old),
    })
});
