//! The patch metadata of the Kubernetes types, as a table keyed by field path.
//!
//! Upstream's strategic merge patch reads `patchStrategy` / `patchMergeKey` struct tags through
//! reflection on the Go type of the object. pernode patches untyped JSON, so the same facts are
//! kept here as path suffixes: a list field is found by its own name and, where a name means
//! different things in different types (`ports`, `conditions`, `addresses`, `volumes`), by its
//! parent field names. List indices are not part of a path: the items of `containers` sit at the
//! same path as the list, so a container's `env` is at `[.., "containers", "env"]`.
//!
//! Source: the struct tags in kubernetes/kubernetes (v1.33)
//! `staging/src/k8s.io/api/core/v1/types.go`, `staging/src/k8s.io/api/apps/v1/types.go` and
//! `staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go`. Only lists matter on the
//! server side: the `retainKeys` part of `merge,retainKeys` (PodSpec.volumes,
//! PodSpec.resourceClaims, DeploymentSpec.strategy) only changes how clients *build* patches; a
//! `$retainKeys` directive in a patch is honoured wherever it appears. Every list not listed
//! here has no tag and is replaced whole (`tolerations`, `spec.taints`, `args`, `command`,
//! `envFrom`, `nodeSelectorTerms`, `matchExpressions`, `containerStatuses`, `managedFields`...).

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListStrategy {
    /// No patch strategy: the patch's list replaces the original one.
    Replace,
    /// `patchStrategy:"merge"` with a `patchMergeKey`: items are matched by that key.
    MergeKey(&'static str),
    /// `patchStrategy:"merge"` without a merge key: a list of scalars, merged as a set union.
    MergePrimitive,
}

use ListStrategy::{MergeKey, MergePrimitive};

/// Container-like list fields: their items carry `env`, `ports`, `volumeMounts`...
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// (path suffix, strategy). Order does not matter: no suffix here is a suffix of another.
const RULES: &[(&[&str], ListStrategy)] = &[
    // meta/v1 ObjectMeta
    (&["metadata", "finalizers"], MergePrimitive),
    (&["metadata", "ownerReferences"], MergeKey("uid")),
    // core/v1 PodSpec (also reached through a template's `spec`)
    (&["spec", "containers"], MergeKey("name")),
    (&["spec", "initContainers"], MergeKey("name")),
    (&["spec", "ephemeralContainers"], MergeKey("name")),
    (&["spec", "volumes"], MergeKey("name")), // merge,retainKeys
    (&["spec", "imagePullSecrets"], MergeKey("name")),
    (&["spec", "hostAliases"], MergeKey("ip")),
    // Upstream's listMapKey is topologyKey+whenUnsatisfiable, but the SMP tag names only
    // topologyKey: two constraints on one key collide in SMP upstream too.
    (
        &["spec", "topologySpreadConstraints"],
        MergeKey("topologyKey"),
    ),
    (&["spec", "schedulingGates"], MergeKey("name")),
    (&["spec", "resourceClaims"], MergeKey("name")), // merge,retainKeys
    // core/v1 NodeSpec
    (&["spec", "podCIDRs"], MergePrimitive),
    // core/v1 ServiceSpec (ServicePort); container ports are handled below
    (&["spec", "ports"], MergeKey("port")),
    // core/v1 PodStatus, NodeStatus, NamespaceStatus, apps/v1 DaemonSetStatus and friends
    (&["status", "conditions"], MergeKey("type")),
    (&["status", "addresses"], MergeKey("type")),
    (&["status", "podIPs"], MergeKey("ip")),
    (&["status", "hostIPs"], MergeKey("ip")),
    (&["status", "resourceClaimStatuses"], MergeKey("name")), // merge,retainKeys
];

/// Lists of a container (core/v1 Container and EphemeralContainerCommon).
const CONTAINER_RULES: &[(&str, ListStrategy)] = &[
    ("env", MergeKey("name")),
    ("ports", MergeKey("containerPort")),
    ("volumeMounts", MergeKey("mountPath")),
    ("volumeDevices", MergeKey("devicePath")),
];

/// A field's position in the object: its name and its parent's path. Borrowed all the way up so
/// that descending costs nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldPath<'a> {
    pub(crate) key: &'a str,
    pub(crate) parent: Option<&'a FieldPath<'a>>,
}

impl<'a> FieldPath<'a> {
    pub(crate) fn child(parent: Option<&'a FieldPath<'a>>, key: &'a str) -> FieldPath<'a> {
        FieldPath { key, parent }
    }

    /// Whether the path ends with `suffix` (field names, outermost first).
    fn ends_with(&self, suffix: &[&str]) -> bool {
        let mut node = Some(self);
        for want in suffix.iter().rev() {
            match node {
                Some(n) if n.key == *want => node = n.parent,
                _ => return false,
            }
        }
        true
    }
}

/// The strategy of the list at `path` (the root is never a list).
pub(crate) fn list_strategy(path: Option<&FieldPath<'_>>) -> ListStrategy {
    let Some(path) = path else {
        return ListStrategy::Replace;
    };
    if let Some(parent) = path.parent
        && CONTAINER_LISTS.contains(&parent.key)
        && let Some((_, s)) = CONTAINER_RULES.iter().find(|(name, _)| *name == path.key)
    {
        return *s;
    }
    RULES
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix))
        .map_or(ListStrategy::Replace, |(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds the linked path from the root down, each node borrowing its parent.
    fn strategy(keys: &[&str]) -> ListStrategy {
        fn go(keys: &[&str], parent: Option<&FieldPath<'_>>) -> ListStrategy {
            match keys.split_first() {
                None => list_strategy(parent),
                Some((k, rest)) => {
                    let node = FieldPath::child(parent, k);
                    go(rest, Some(&node))
                }
            }
        }
        go(keys, None)
    }

    #[test]
    fn table_lookups() {
        assert_eq!(
            strategy(&["spec", "template", "spec", "containers"]),
            MergeKey("name")
        );
        assert_eq!(
            strategy(&["spec", "containers", "ports"]),
            MergeKey("containerPort")
        );
        assert_eq!(
            strategy(&["spec", "initContainers", "env"]),
            MergeKey("name")
        );
        assert_eq!(
            strategy(&["spec", "containers", "envFrom"]),
            ListStrategy::Replace
        );
        assert_eq!(strategy(&["spec", "ports"]), MergeKey("port"));
        assert_eq!(strategy(&["spec", "taints"]), ListStrategy::Replace);
        assert_eq!(strategy(&["spec", "tolerations"]), ListStrategy::Replace);
        assert_eq!(strategy(&["metadata", "finalizers"]), MergePrimitive);
        assert_eq!(strategy(&["status", "conditions"]), MergeKey("type"));
        assert_eq!(strategy(&["conditions"]), ListStrategy::Replace);
        assert_eq!(
            strategy(&["spec", "template", "metadata", "ownerReferences"]),
            MergeKey("uid")
        );
    }
}
