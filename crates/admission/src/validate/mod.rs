//! Validation of the served kinds, as upstream's
//! `pkg/apis/core/validation`, `pkg/apis/apps/validation`, `pkg/apis/rbac/validation`,
//! `pkg/apis/certificates/validation` and the
//! registries' strategies run it.
//!
//! Each function returns every error it finds (an empty list means valid),
//! in upstream's order, with upstream's field paths and texts, so that
//! [`crate::invalid_message`] reads like kube-apiserver's 422.

mod admissionregistration;
mod apps;
mod certificates;
mod config;
mod meta;
mod networking;
mod other;
mod pod;
mod policy;
mod rbac;
mod scheduling;
mod service;
mod storage;

pub use admissionregistration::{
    default_mutating_webhooks, default_validating_webhooks, mutating_webhook_configuration,
    mutating_webhook_configuration_update, validating_webhook_configuration,
    validating_webhook_configuration_update,
};
pub use apps::{
    TEMPLATE_GENERATION_ANNOTATION, controller_revision_create, controller_revision_update,
    daemon_set_create, daemon_set_status_update, daemon_set_update,
};
pub use certificates::{
    certificate_signing_request_approval_update, certificate_signing_request_create,
    certificate_signing_request_status_update, certificate_signing_request_update, signer_name,
};
pub use config::{
    MAX_DATA_SIZE, config_map, config_map_update, secret, secret_update, service_account,
    service_account_update,
};
pub use meta::{
    NameFn, annotations, labels, name_is_dns_label, name_is_dns_subdomain, object_meta,
    object_meta_update,
};
pub use networking::{network_policy, network_policy_update};
pub use other::{
    event, event_legacy, event_v1_create, event_v1_update, lease, namespace, namespace_update,
    node, node_update,
};
pub use pod::{pod_create, pod_spec, pod_template_spec, pod_update};
pub use policy::{
    UNHEALTHY_POD_EVICTION_POLICIES, conditions, name_is_path_segment,
    pod_disruption_budget_create, pod_disruption_budget_spec, pod_disruption_budget_status_update,
    pod_disruption_budget_update,
};
pub use rbac::{
    RBAC_GROUP, cluster_role, cluster_role_binding, cluster_role_binding_update,
    cluster_role_update, default_binding, policy_rule, rbac_name, role, role_binding,
    role_binding_update, role_update, subject,
};
pub use scheduling::{
    HIGHEST_USER_DEFINABLE_PRIORITY, SYSTEM_CRITICAL_PRIORITY, SYSTEM_PRIORITY_CLASS_PREFIX,
    SYSTEM_PRIORITY_CLASSES, preemption_policy, priority_class, priority_class_update,
};
pub use service::{is_headless, service, service_update};
pub use storage::{csi_driver, csi_driver_update, csi_node, csi_node_update, default_csi_driver};

use crate::FieldError;

/// `ValidateNonnegativeField`: "must be greater than or equal to 0".
pub(crate) fn nonnegative(v: i64, path: &str) -> Vec<FieldError> {
    if v < 0 {
        vec![FieldError::invalid(
            path,
            v,
            "must be greater than or equal to 0",
        )]
    } else {
        vec![]
    }
}

/// `ValidateImmutableField` for values compared and shown as JSON.
pub(crate) fn immutable<T: serde::Serialize + PartialEq>(
    new: &T,
    old: &T,
    path: &str,
) -> Vec<FieldError> {
    if new == old {
        return vec![];
    }
    let v = serde_json::to_value(new).unwrap_or(serde_json::Value::Null);
    vec![FieldError::invalid(path, v, "field is immutable")]
}
