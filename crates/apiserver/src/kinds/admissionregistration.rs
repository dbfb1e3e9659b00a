//! admissionregistration.k8s.io/v1: Mutating and Validating WebhookConfiguration
//! (pkg/registry/admissionregistration). Stored and served; pernode does not call webhooks.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};

use super::{Kind, bump_generation_on_spec_change, first_generation};
use crate::registry::admit_meta;

const GROUP: &str = "admissionregistration.k8s.io";

pub static MUTATING_WEBHOOK_CONFIGURATIONS: Kind = Kind {
    on_create: first_generation,
    on_update: |old, new| {
        bump_generation_on_spec_change(old, new);
        Ok(())
    },
    ..Kind::new(
        GROUP,
        "mutatingwebhookconfigurations",
        admit_meta::<MutatingWebhookConfiguration>,
    )
};

pub static VALIDATING_WEBHOOK_CONFIGURATIONS: Kind = Kind {
    on_create: first_generation,
    on_update: |old, new| {
        bump_generation_on_spec_change(old, new);
        Ok(())
    },
    ..Kind::new(
        GROUP,
        "validatingwebhookconfigurations",
        admit_meta::<ValidatingWebhookConfiguration>,
    )
};
