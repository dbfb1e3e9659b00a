//! networking.k8s.io/v1: NetworkPolicy (pkg/registry/networking/networkpolicy). Stored and
//! served; nothing in pernode enforces it (no pod network).

use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::{Kind, bump_generation_on_spec_change, first_generation};
use crate::registry::admit_meta;

pub static NETWORK_POLICIES: Kind = Kind {
    on_create: first_generation,
    on_update: |old, new| {
        bump_generation_on_spec_change(old, new);
        Ok(())
    },
    ..Kind::new(
        "networking.k8s.io",
        "networkpolicies",
        admit_meta::<NetworkPolicy>,
    )
};
