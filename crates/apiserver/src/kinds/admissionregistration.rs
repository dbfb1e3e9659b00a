//! admissionregistration.k8s.io/v1: Mutating and Validating WebhookConfiguration
//! (pkg/registry/admissionregistration). Stored and served; pernode does not call webhooks.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};

use super::{Kind, bump_generation_on_change, first_generation};
use crate::registry::admit_typed;
use pernode_admission::validate;

const GROUP: &str = "admissionregistration.k8s.io";

pub static MUTATING_WEBHOOK_CONFIGURATIONS: Kind = Kind {
    on_create: first_generation,
    on_update: |old, new| {
        bump_generation_on_change(old, new, "webhooks");
        Ok(())
    },
    ..Kind::new(
        GROUP,
        "mutatingwebhookconfigurations",
        |info, op, obj, v| {
            admit_typed::<MutatingWebhookConfiguration>(info, op, obj, v, true, |c, old| {
                validate::default_mutating_webhooks(c);
                match old {
                    None => validate::mutating_webhook_configuration(c),
                    Some(old) => validate::mutating_webhook_configuration_update(c, old),
                }
            })
        },
    )
};

pub static VALIDATING_WEBHOOK_CONFIGURATIONS: Kind = Kind {
    on_create: first_generation,
    on_update: |old, new| {
        bump_generation_on_change(old, new, "webhooks");
        Ok(())
    },
    ..Kind::new(
        GROUP,
        "validatingwebhookconfigurations",
        |info, op, obj, v| {
            admit_typed::<ValidatingWebhookConfiguration>(info, op, obj, v, true, |c, old| {
                validate::default_validating_webhooks(c);
                match old {
                    None => validate::validating_webhook_configuration(c),
                    Some(old) => validate::validating_webhook_configuration_update(c, old),
                }
            })
        },
    )
};
