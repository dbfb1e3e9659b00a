//! scheduling.k8s.io/v1: PriorityClass (pkg/registry/scheduling/priorityclass).

use k8s_openapi::api::scheduling::v1::PriorityClass;

use super::Kind;
use crate::registry::admit_meta;

pub static PRIORITY_CLASSES: Kind = Kind::new(
    "scheduling.k8s.io",
    "priorityclasses",
    admit_meta::<PriorityClass>,
);
