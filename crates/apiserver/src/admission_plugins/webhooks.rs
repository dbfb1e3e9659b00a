//! Webhook configurations are stored and served, but pernode calls no webhooks yet: a create
//! answers with a `Warning:` header saying so, which kubectl prints.

use pernode_resources::ResourceInfo;

/// The warning for a new webhook configuration.
pub fn warnings(info: &ResourceInfo) -> Vec<String> {
    vec![format!(
        "{} are stored but not called: pernode does not run admission webhooks",
        info.group_resource()
    )]
}
