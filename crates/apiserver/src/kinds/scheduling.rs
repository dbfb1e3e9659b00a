//! scheduling.k8s.io/v1: PriorityClass (pkg/registry/scheduling/priorityclass). The pods'
//! side is the Priority admission plugin (`admission_plugins::priority`).

use k8s_openapi::api::scheduling::v1::PriorityClass;
use pernode_admission::validate;

use super::Kind;
use crate::registry::admit_typed;

pub static PRIORITY_CLASSES: Kind = Kind::new(
    "scheduling.k8s.io",
    "priorityclasses",
    |info, op, obj, v| {
        admit_typed::<PriorityClass>(info, op, obj, v, true, |pc, old| {
            // SetDefaults_PriorityClass.
            pc.preemption_policy
                .get_or_insert_with(|| "PreemptLowerPriority".into());
            match old {
                None => validate::priority_class(pc),
                Some(old) => validate::priority_class_update(pc, old),
            }
        })
    },
);
