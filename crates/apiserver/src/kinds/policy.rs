//! policy/v1: PodDisruptionBudget (pkg/registry/policy/poddisruptionbudget). Its status is the
//! disruption controller's (`pernode_controllers::disruption`) and the eviction
//! subresource's (`crate::eviction`).

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use pernode_admission::validate;
use serde_json::{Value, json};

use super::{Kind, bump_generation_on_change};
use crate::error::ApiError;
use crate::registry::{Operation, admit_typed};

pub static POD_DISRUPTION_BUDGETS: Kind = Kind {
    on_create: pod_disruption_budget_on_create,
    on_update: |old, new| {
        bump_generation_on_change(old, new, "spec");
        Ok(())
    },
    ..Kind::new("policy", "poddisruptionbudgets", |info, op, obj, v| {
        admit_typed::<PodDisruptionBudget>(info, op, obj, v, true, |pdb, old| match (op, old) {
            (Operation::UpdateStatus { .. }, Some(old)) => {
                validate::pod_disruption_budget_status_update(pdb, old)
            }
            (_, Some(old)) => validate::pod_disruption_budget_update(pdb, old),
            (_, None) => validate::pod_disruption_budget_create(pdb),
        })
    })
};

/// PrepareForCreate: generation 1 and an empty status (its counts are not omitempty).
fn pod_disruption_budget_on_create(obj: &mut Value) -> Result<(), ApiError> {
    super::first_generation(obj)?;
    obj["status"] = json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0});
    Ok(())
}
