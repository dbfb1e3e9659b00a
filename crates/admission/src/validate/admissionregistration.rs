//! Validating and Mutating WebhookConfiguration defaults and validation
//! (pkg/apis/admissionregistration: `SetDefaults_*Webhook`, `ValidateValidatingWebhookConfiguration`,
//! `ValidateMutatingWebhookConfiguration`), for the fields the two share.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use pernode_core::names;

use super::meta::{name_is_dns_subdomain, object_meta, object_meta_update};
use crate::FieldError;

const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
const SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];

/// The fields of one webhook that both configuration kinds validate alike.
struct Hook<'a> {
    name: &'a str,
    client_config: &'a WebhookClientConfig,
    rules: Option<&'a Vec<RuleWithOperations>>,
    failure_policy: Option<&'a str>,
    match_policy: Option<&'a str>,
    side_effects: &'a str,
    timeout_seconds: Option<i32>,
    admission_review_versions: &'a [String],
}

/// The defaults both kinds share, per webhook.
macro_rules! default_hook {
    ($hook:expr) => {{
        let hook = $hook;
        hook.failure_policy.get_or_insert_with(|| "Fail".into());
        hook.match_policy.get_or_insert_with(|| "Equivalent".into());
        hook.namespace_selector
            .get_or_insert_with(LabelSelector::default);
        hook.object_selector
            .get_or_insert_with(LabelSelector::default);
        hook.timeout_seconds.get_or_insert(10);
        for rule in hook.rules.iter_mut().flatten() {
            rule.scope.get_or_insert_with(|| "*".into());
        }
        if let Some(service) = hook.client_config.service.as_mut() {
            service.port.get_or_insert(443);
        }
    }};
}

/// `SetDefaults_ValidatingWebhook` for each webhook.
pub fn default_validating_webhooks(c: &mut ValidatingWebhookConfiguration) {
    for hook in c.webhooks.iter_mut().flatten() {
        default_hook!(hook);
    }
}

/// `SetDefaults_MutatingWebhook` for each webhook (and reinvocation `Never`).
pub fn default_mutating_webhooks(c: &mut MutatingWebhookConfiguration) {
    for hook in c.webhooks.iter_mut().flatten() {
        default_hook!(&mut *hook);
        hook.reinvocation_policy
            .get_or_insert_with(|| "Never".into());
    }
}

fn validate_hooks<'a>(hooks: impl Iterator<Item = Hook<'a>>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, hook) in hooks.enumerate() {
        let path = format!("webhooks[{i}]");
        errs.extend(hook_errors(&hook, &path));
        if seen.contains(&hook.name) {
            errs.push(FieldError::duplicate(&format!("{path}.name"), hook.name));
        } else {
            seen.push(hook.name);
        }
    }
    errs
}

fn hook_errors(hook: &Hook<'_>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name_path = format!("{path}.name");
    if hook.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        let dns = names::is_dns1123_subdomain(hook.name);
        for msg in &dns {
            errs.push(FieldError::invalid(&name_path, hook.name, msg));
        }
        if dns.is_empty() && hook.name.split('.').count() < 3 {
            errs.push(FieldError::invalid(
                &name_path,
                hook.name,
                "should be a domain with at least three segments separated by dots",
            ));
        }
    }
    for (j, rule) in hook.rules.into_iter().flatten().enumerate() {
        let rule_path = format!("{path}.rules[{j}]");
        if rule.operations.as_ref().is_none_or(Vec::is_empty) {
            errs.push(FieldError::required(&format!("{rule_path}.operations"), ""));
        }
        if rule.resources.as_ref().is_none_or(Vec::is_empty) {
            errs.push(FieldError::required(&format!("{rule_path}.resources"), ""));
        }
    }
    let policy = |value: Option<&str>, field: &str, supported: &[&str], errs: &mut Vec<_>| {
        if let Some(v) = value
            && !supported.contains(&v)
        {
            errs.push(FieldError::not_supported(
                &format!("{path}.{field}"),
                v,
                supported,
            ));
        }
    };
    policy(
        hook.failure_policy,
        "failurePolicy",
        FAILURE_POLICIES,
        &mut errs,
    );
    policy(hook.match_policy, "matchPolicy", MATCH_POLICIES, &mut errs);
    if hook.side_effects.is_empty() {
        errs.push(FieldError::required(
            &format!("{path}.sideEffects"),
            &format!("must specify one of {}", SIDE_EFFECTS.join(", ")),
        ));
    } else {
        policy(
            Some(hook.side_effects),
            "sideEffects",
            SIDE_EFFECTS,
            &mut errs,
        );
    }
    if let Some(t) = hook.timeout_seconds
        && !(1..=30).contains(&t)
    {
        errs.push(FieldError::invalid(
            &format!("{path}.timeoutSeconds"),
            t,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    let versions = hook.admission_review_versions;
    if versions.is_empty() {
        errs.push(FieldError::required(
            &format!("{path}.admissionReviewVersions"),
            &format!("must specify one of {}", REVIEW_VERSIONS.join(", ")),
        ));
    } else if !versions
        .iter()
        .any(|v| REVIEW_VERSIONS.contains(&v.as_str()))
    {
        errs.push(FieldError::invalid(
            &format!("{path}.admissionReviewVersions"),
            serde_json::json!(versions),
            &format!(
                "must include at least one of {}",
                REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
    errs.extend(client_config(
        hook.client_config,
        &format!("{path}.clientConfig"),
    ));
    errs
}

fn client_config(c: &WebhookClientConfig, path: &str) -> Vec<FieldError> {
    match (&c.url, &c.service) {
        (Some(_), Some(_)) | (None, None) => vec![FieldError::required(
            path,
            "exactly one of url or service is required",
        )],
        (Some(url), None) => {
            if url.starts_with("https://") {
                vec![]
            } else {
                vec![FieldError::invalid(
                    &format!("{path}.url"),
                    url.as_str(),
                    "'https' is the only allowed URL scheme",
                )]
            }
        }
        (None, Some(service)) => service_reference(service, &format!("{path}.service")),
    }
}

fn service_reference(s: &ServiceReference, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s.name.is_empty() {
        errs.push(FieldError::required(
            &format!("{path}.name"),
            "service name is required",
        ));
    }
    if s.namespace.is_empty() {
        errs.push(FieldError::required(
            &format!("{path}.namespace"),
            "service namespace is required",
        ));
    }
    if let Some(p) = s.path.as_deref()
        && !p.starts_with('/')
    {
        errs.push(FieldError::invalid(
            &format!("{path}.path"),
            p,
            "must start with a '/'",
        ));
    }
    if let Some(port) = s.port {
        for msg in names::is_valid_port_num(i64::from(port)) {
            errs.push(FieldError::invalid(&format!("{path}.port"), port, &msg));
        }
    }
    errs
}

/// `ValidateValidatingWebhookConfiguration`.
pub fn validating_webhook_configuration(c: &ValidatingWebhookConfiguration) -> Vec<FieldError> {
    let mut errs = object_meta(&c.metadata, false, name_is_dns_subdomain);
    errs.extend(validate_hooks(c.webhooks.iter().flatten().map(|h| Hook {
        name: &h.name,
        client_config: &h.client_config,
        rules: h.rules.as_ref(),
        failure_policy: h.failure_policy.as_deref(),
        match_policy: h.match_policy.as_deref(),
        side_effects: &h.side_effects,
        timeout_seconds: h.timeout_seconds,
        admission_review_versions: &h.admission_review_versions,
    })));
    errs
}

/// `ValidateMutatingWebhookConfiguration`.
pub fn mutating_webhook_configuration(c: &MutatingWebhookConfiguration) -> Vec<FieldError> {
    let mut errs = object_meta(&c.metadata, false, name_is_dns_subdomain);
    errs.extend(validate_hooks(c.webhooks.iter().flatten().map(|h| Hook {
        name: &h.name,
        client_config: &h.client_config,
        rules: h.rules.as_ref(),
        failure_policy: h.failure_policy.as_deref(),
        match_policy: h.match_policy.as_deref(),
        side_effects: &h.side_effects,
        timeout_seconds: h.timeout_seconds,
        admission_review_versions: &h.admission_review_versions,
    })));
    for (i, h) in c.webhooks.iter().flatten().enumerate() {
        if let Some(p) = h.reinvocation_policy.as_deref()
            && !REINVOCATION_POLICIES.contains(&p)
        {
            errs.push(FieldError::not_supported(
                &format!("webhooks[{i}].reinvocationPolicy"),
                p,
                REINVOCATION_POLICIES,
            ));
        }
    }
    errs
}

/// The updates: metadata rules, then the object's.
pub fn validating_webhook_configuration_update(
    new: &ValidatingWebhookConfiguration,
    old: &ValidatingWebhookConfiguration,
) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(validating_webhook_configuration(new));
    errs
}

/// See [`validating_webhook_configuration_update`].
pub fn mutating_webhook_configuration_update(
    new: &MutatingWebhookConfiguration,
    old: &MutatingWebhookConfiguration,
) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(mutating_webhook_configuration(new));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhook;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn webhooks_need_names_side_effects_versions_and_one_client() {
        let mut c = ValidatingWebhookConfiguration {
            metadata: ObjectMeta {
                name: Some("c".into()),
                ..Default::default()
            },
            webhooks: Some(vec![ValidatingWebhook {
                name: "short.name".into(),
                ..Default::default()
            }]),
        };
        default_validating_webhooks(&mut c);
        let hook = &c.webhooks.as_ref().expect("hooks")[0];
        assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(hook.timeout_seconds, Some(10));
        let errs: Vec<String> = validating_webhook_configuration(&c)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                "webhooks[0].name: Invalid value: \"short.name\": should be a domain with at least three segments separated by dots",
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1",
                "webhooks[0].clientConfig: Required value: exactly one of url or service is required",
            ]
        );
    }
}
