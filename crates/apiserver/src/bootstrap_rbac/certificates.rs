//! The bootstrap policy of certificate signing requests: upstream's roles for creating
//! requests and having them approved (`system:node-bootstrapper`,
//! `system:certificates.k8s.io:certificatesigningrequests:nodeclient` and `:selfnodeclient`),
//! the roles that may approve each `kubernetes.io` signer's requests
//! (`system:certificates.k8s.io:*-approver`), the certificate controller's role, and kubeadm's
//! bindings that let a bootstrap token join a node (`kubeadm:kubelet-bootstrap`,
//! `kubeadm:node-autoapprove-bootstrap`, `kubeadm:node-autoapprove-certificate-rotation`).
//! The bindings carry pernode's prefix in place of kubeadm's, as its bootstrap tokens'
//! default group does (`system:bootstrappers:pernode:default-node-token`).

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use pernode_auth::csr::{
    KUBE_APISERVER_CLIENT, KUBE_APISERVER_CLIENT_KUBELET, KUBELET_SERVING, LEGACY_UNKNOWN,
};

use super::{AUTHORIZATION, binding, events_rule, groups, named_rule, role, rule};

const CERTIFICATES: &str = pernode_resources::CERTIFICATES;

pub use pernode_auth::bootstrap_token::DEFAULT_NODE_TOKEN_GROUP;
/// The role that lets a user create requests and watch them being signed.
pub const NODE_BOOTSTRAPPER: &str = "system:node-bootstrapper";
/// The role whose `create` on `certificatesigningrequests/nodeclient` the approver asks
/// about: its holders' node client requests are approved.
pub const NODE_CLIENT: &str = "system:certificates.k8s.io:certificatesigningrequests:nodeclient";
/// As [`NODE_CLIENT`], for a node renewing its own certificate (`selfnodeclient`).
pub const SELF_NODE_CLIENT: &str =
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient";

/// Upstream's certificate roles (from `ClusterRoles()`).
pub(super) fn cluster_roles() -> Vec<ClusterRole> {
    let approver = |name: &str, signer: &str| {
        role(
            &format!("system:certificates.k8s.io:{name}"),
            vec![named_rule(
                &["approve"],
                &[CERTIFICATES],
                &["signers"],
                &[signer],
            )],
        )
    };
    vec![
        role(
            NODE_BOOTSTRAPPER,
            vec![rule(
                &["create", "get", "list", "watch"],
                &[CERTIFICATES],
                &["certificatesigningrequests"],
            )],
        ),
        role(
            NODE_CLIENT,
            vec![rule(
                &["create"],
                &[CERTIFICATES],
                &["certificatesigningrequests/nodeclient"],
            )],
        ),
        role(
            SELF_NODE_CLIENT,
            vec![rule(
                &["create"],
                &[CERTIFICATES],
                &["certificatesigningrequests/selfnodeclient"],
            )],
        ),
        approver("legacy-unknown-approver", LEGACY_UNKNOWN),
        approver("kubelet-serving-approver", KUBELET_SERVING),
        approver("kube-apiserver-client-approver", KUBE_APISERVER_CLIENT),
        approver(
            "kube-apiserver-client-kubelet-approver",
            KUBE_APISERVER_CLIENT_KUBELET,
        ),
    ]
}

/// `system:controller:certificate-controller`: the approver and the signer, and the
/// cleaner's deletes.
pub(super) fn controller_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            &["get", "list", "watch", "delete"],
            &[CERTIFICATES],
            &["certificatesigningrequests"],
        ),
        rule(
            &["update"],
            &[CERTIFICATES],
            &[
                "certificatesigningrequests/status",
                "certificatesigningrequests/approval",
            ],
        ),
        named_rule(
            &["approve"],
            &[CERTIFICATES],
            &["signers"],
            &[KUBE_APISERVER_CLIENT_KUBELET],
        ),
        named_rule(
            &["sign"],
            &[CERTIFICATES],
            &["signers"],
            &[
                LEGACY_UNKNOWN,
                KUBE_APISERVER_CLIENT,
                KUBE_APISERVER_CLIENT_KUBELET,
                KUBELET_SERVING,
            ],
        ),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        events_rule(),
    ]
}

/// kubeadm's bindings for joining nodes (`cmd/kubeadm/app/phases/bootstraptoken/node`):
/// bootstrap tokens of the default group may create requests and get them approved, and
/// nodes may get their renewals approved.
pub(super) fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    let named = |name: &str, role: &str, group: &str| {
        let mut b = binding(role, groups(&[group]));
        b.metadata.name = Some(name.into());
        b
    };
    vec![
        named(
            "pernode:kubelet-bootstrap",
            NODE_BOOTSTRAPPER,
            DEFAULT_NODE_TOKEN_GROUP,
        ),
        named(
            "pernode:node-autoapprove-bootstrap",
            NODE_CLIENT,
            DEFAULT_NODE_TOKEN_GROUP,
        ),
        named(
            "pernode:node-autoapprove-certificate-rotation",
            SELF_NODE_CLIENT,
            pernode_auth::user::NODES_GROUP,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joining_groups_are_bound_as_kubeadm_binds_them() {
        let bindings = super::super::bootstrap_cluster_role_bindings();
        let bound = |name: &str| {
            let b = bindings
                .iter()
                .find(|b| b.metadata.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{name} is a bootstrap binding"));
            let subjects: Vec<&str> = b
                .subjects
                .iter()
                .flatten()
                .map(|s| s.name.as_str())
                .collect();
            (b.role_ref.name.clone(), subjects.join(","))
        };
        assert_eq!(
            bound("pernode:kubelet-bootstrap"),
            (NODE_BOOTSTRAPPER.into(), DEFAULT_NODE_TOKEN_GROUP.into())
        );
        assert_eq!(
            bound("pernode:node-autoapprove-bootstrap"),
            (NODE_CLIENT.into(), DEFAULT_NODE_TOKEN_GROUP.into())
        );
        assert_eq!(
            bound("pernode:node-autoapprove-certificate-rotation"),
            (SELF_NODE_CLIENT.into(), "system:nodes".into())
        );
        assert_eq!(
            bound("system:controller:certificate-controller").1,
            "certificate-controller"
        );
    }
}
