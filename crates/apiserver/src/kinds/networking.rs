//! networking.k8s.io/v1: NetworkPolicy (pkg/registry/networking/networkpolicy). Stored and
//! served; nothing in pernode enforces it (no pod network).

use k8s_openapi::api::networking::v1::NetworkPolicy;

use super::{Kind, bump_generation_on_change, first_generation};
use crate::registry::admit_typed;
use pernode_admission::validate;

pub static NETWORK_POLICIES: Kind = Kind {
    on_create: first_generation,
    on_update: |old, new| {
        bump_generation_on_change(old, new, "spec");
        Ok(())
    },
    ..Kind::new(
        "networking.k8s.io",
        "networkpolicies",
        |info, op, obj, v| {
            admit_typed::<NetworkPolicy>(info, op, obj, v, true, |np, old| match old {
                None => validate::network_policy(np),
                Some(old) => validate::network_policy_update(np, old),
            })
        },
    )
};
