//! A request's identity, as upstream's `user.Info`: a name, a uid, groups and extra values.

use std::collections::BTreeMap;

/// Group of every authenticated user.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// Group of the anonymous user.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// Name of the anonymous user.
pub const ANONYMOUS: &str = "system:anonymous";
/// Members may do anything (upstream's privileged group, not subject to RBAC).
pub const SYSTEM_PRIVILEGED_GROUP: &str = "system:masters";
/// Group of node identities (`system:node:<name>`).
pub const NODES_GROUP: &str = "system:nodes";
/// Prefix of a node's user name.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// Prefix of a service account's user name (`system:serviceaccount:<ns>:<name>`).
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";
/// Group of every service account.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Extra naming the credential a user authenticated with (a service-account token's
/// `JTI=<jti>`), as upstream's `user.CredentialIDKey`.
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";
/// The controller manager's identity.
pub const KUBE_CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
/// The scheduler's identity.
pub const KUBE_SCHEDULER: &str = "system:kube-scheduler";

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with these groups (no uid, no extra).
    pub fn new<G: Into<String>>(
        name: impl Into<String>,
        groups: impl IntoIterator<Item = G>,
    ) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.into_iter().map(Into::into).collect(),
            ..UserInfo::default()
        }
    }

    /// The anonymous user, as upstream's anonymous authenticator names it.
    pub fn anonymous() -> UserInfo {
        UserInfo::new(ANONYMOUS, [ALL_UNAUTHENTICATED])
    }

    /// Whether this is the anonymous user.
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS
    }

    /// The node this identity is (`system:node:<name>` in group `system:nodes`), as upstream's
    /// `nodeidentifier.NodeIdentity`.
    pub fn node_name(&self) -> Option<&str> {
        self.node_identity().filter(|name| !name.is_empty())
    }

    /// Upstream's `NodeIdentity` itself: `Some` for every user named `system:node:...` in group
    /// `system:nodes`, with the name after the prefix, which may be empty (a node that cannot
    /// be identified: the Node authorizer and NodeRestriction refuse it rather than ignore it).
    pub fn node_identity(&self) -> Option<&str> {
        let name = self.name.strip_prefix(NODE_USER_PREFIX)?;
        self.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
    }

    /// The service account this identity is: `(namespace, name)`.
    pub fn service_account(&self) -> Option<(&str, &str)> {
        let rest = self.name.strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)?;
        let (namespace, name) = rest.split_once(':')?;
        (!namespace.is_empty() && !name.is_empty() && !name.contains(':'))
            .then_some((namespace, name))
    }

    /// Adds `system:authenticated` unless present, as upstream does for every authenticated
    /// (non-anonymous) user.
    pub fn authenticated(mut self) -> UserInfo {
        if !self.groups.iter().any(|g| g == ALL_AUTHENTICATED) {
            self.groups.push(ALL_AUTHENTICATED.to_string());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_identity_needs_the_nodes_group() {
        let node = UserInfo::new("system:node:web-1", [NODES_GROUP]);
        assert_eq!(node.node_name(), Some("web-1"));
        let impostor = UserInfo::new("system:node:web-1", ["developers"]);
        assert_eq!(impostor.node_name(), None);
        assert_eq!(impostor.node_identity(), None);
        let nameless = UserInfo::new("system:node:", [NODES_GROUP]);
        assert_eq!(nameless.node_name(), None);
        assert_eq!(nameless.node_identity(), Some(""));
        assert_eq!(UserInfo::new("web-1", [NODES_GROUP]).node_identity(), None);
    }

    #[test]
    fn service_account_names_split() {
        let sa = UserInfo::new(
            "system:serviceaccount:kube-system:flannel",
            [ALL_SERVICE_ACCOUNTS],
        );
        assert_eq!(sa.service_account(), Some(("kube-system", "flannel")));
        assert_eq!(
            UserInfo::new("system:serviceaccount:x", Vec::<String>::new()).service_account(),
            None
        );
    }

    #[test]
    fn authenticated_adds_the_group_once() {
        let u = UserInfo::new("jane", ["dev"])
            .authenticated()
            .authenticated();
        assert_eq!(u.groups, ["dev", ALL_AUTHENTICATED]);
    }
}
