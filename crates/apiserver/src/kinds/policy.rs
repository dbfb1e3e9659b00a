//! policy/v1: PodDisruptionBudget (pkg/registry/policy/poddisruptionbudget).

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::{Kind, bump_generation_on_change, first_generation};
use crate::registry::admit_meta;

pub static POD_DISRUPTION_BUDGETS: Kind = Kind {
    on_create: first_generation,
    on_update: |old, new| {
        bump_generation_on_change(old, new, "spec");
        Ok(())
    },
    ..Kind::new("policy", "poddisruptionbudgets", |info, op, obj, v| {
        admit_meta::<PodDisruptionBudget>(info, op, obj, v)
    })
};
