//! What server-side apply needs of a type: how each list merges and which maps are atomic.
//!
//! Upstream reads this from the OpenAPI schemas (`x-kubernetes-list-type`,
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`, and for lists without a list type the
//! patch strategy and merge key). pernode merges untyped JSON, so the facts are kept as a table
//! keyed by the field names on the way to a field (list items add no name), as the strategic
//! merge keys in `pernode-patch`. Source: the `+listType`, `+listMapKey`, `+structType` and
//! `+mapType` markers of kubernetes/kubernetes v1.33 `staging/src/k8s.io/api/{core,apps}/v1/
//! types.go` and `apimachinery/pkg/apis/meta/v1/types.go`. A list not in the table is atomic
//! (replaced whole, owned as one field), as upstream's lists without markers.

/// A key field of an associative list, with the value upstream's schema defaults it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyField {
    pub name: &'static str,
    pub default: Option<&'static str>,
}

/// How a list's items are identified and merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced and owned whole.
    Atomic,
    /// Scalars, each owned by value (`v:`).
    Set,
    /// Maps, each identified and owned by its key fields (`k:`).
    Map(&'static [KeyField]),
}

const fn key(name: &'static str) -> KeyField {
    KeyField {
        name,
        default: None,
    }
}

const NAME: &[KeyField] = &[key("name")];
const TYPE: &[KeyField] = &[key("type")];
const IP: &[KeyField] = &[key("ip")];
const PROTOCOL_TCP: Option<&str> = Some("TCP");
const CONTAINER_PORT: &[KeyField] = &[
    key("containerPort"),
    KeyField {
        name: "protocol",
        default: PROTOCOL_TCP,
    },
];
const SERVICE_PORT: &[KeyField] = &[
    key("port"),
    KeyField {
        name: "protocol",
        default: PROTOCOL_TCP,
    },
];

/// Lists of a container (core/v1 Container and EphemeralContainerCommon).
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
const CONTAINER_RULES: &[(&str, ListType)] = &[
    ("env", ListType::Map(NAME)),
    ("ports", ListType::Map(CONTAINER_PORT)),
    ("volumeMounts", ListType::Map(&[key("mountPath")])),
    ("volumeDevices", ListType::Map(&[key("devicePath")])),
    ("resizePolicy", ListType::Atomic),
];

/// (path suffix, list type). No suffix here is a suffix of another.
const LIST_RULES: &[(&[&str], ListType)] = &[
    (&["metadata", "finalizers"], ListType::Set),
    (
        &["metadata", "ownerReferences"],
        ListType::Map(&[key("uid")]),
    ),
    (&["spec", "containers"], ListType::Map(NAME)),
    (&["spec", "initContainers"], ListType::Map(NAME)),
    (&["spec", "ephemeralContainers"], ListType::Map(NAME)),
    (&["spec", "volumes"], ListType::Map(NAME)),
    (&["spec", "imagePullSecrets"], ListType::Map(NAME)),
    (&["spec", "hostAliases"], ListType::Map(IP)),
    (
        &["spec", "topologySpreadConstraints"],
        ListType::Map(&[key("topologyKey"), key("whenUnsatisfiable")]),
    ),
    (&["spec", "schedulingGates"], ListType::Map(NAME)),
    (&["spec", "resourceClaims"], ListType::Map(NAME)),
    (&["spec", "podCIDRs"], ListType::Set),
    (&["spec", "ports"], ListType::Map(SERVICE_PORT)),
    (&["status", "conditions"], ListType::Map(TYPE)),
    (&["status", "addresses"], ListType::Map(TYPE)),
    (&["status", "podIPs"], ListType::Map(IP)),
    (&["status", "hostIPs"], ListType::Map(IP)),
    (&["status", "resourceClaimStatuses"], ListType::Map(NAME)),
    (&["secrets"], ListType::Map(NAME)),
];

/// Structs and maps upstream marks atomic (`+structType=atomic`, `+mapType=atomic`): owned and
/// replaced whole. (path suffix)
const ATOMIC_MAPS: &[&[&str]] = &[
    // apps/v1 DaemonSetSpec.selector (metav1.LabelSelector) and core/v1 ServiceSpec.selector.
    &["spec", "selector"],
    &["labelSelector"],
    &["namespaceSelector"],
    &["nodeSelector", "nodeSelectorTerms"],
    &["requiredDuringSchedulingIgnoredDuringExecution"],
    &["configMapKeyRef"],
    &["secretKeyRef"],
    &["fieldRef"],
    &["resourceFieldRef"],
    &["involvedObject"],
    &["regarding"],
    &["related"],
];

/// Map-typed fields (Go maps): their keys are not named fields of a struct.
const STRING_MAPS: &[&[&str]] = &[
    &["metadata", "labels"],
    &["metadata", "annotations"],
    &["data"],
    &["binaryData"],
    &["stringData"],
    &["spec", "nodeSelector"],
    &["limits"],
    &["requests"],
    &["capacity"],
    &["allocatable"],
    &["matchLabels"],
    &["overhead"],
    &["volumeAttributes"],
    &["parameters"],
];

fn ends_with(names: &[&str], suffix: &[&str]) -> bool {
    // From the last name back: most rules differ there, and every object of every write asks.
    names.len() >= suffix.len()
        && names
            .iter()
            .rev()
            .zip(suffix.iter().rev())
            .all(|(a, b)| a == b)
}

/// The type facts of one served kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// A built-in kind: the table above.
    BuiltIn,
    /// A custom resource: its metadata is typed as ObjectMeta, every other list is atomic and
    /// every other map granular (a CRD schema without list types, as upstream's).
    Custom,
}

impl Schema {
    fn typed(self, names: &[&str]) -> bool {
        self == Schema::BuiltIn || names.first() == Some(&"metadata")
    }

    /// The list type of the list at `names`.
    pub fn list_type(self, names: &[&str]) -> ListType {
        if !self.typed(names) {
            return ListType::Atomic;
        }
        if let [.., parent, field] = names
            && CONTAINER_LISTS.contains(parent)
            && let Some((_, t)) = CONTAINER_RULES.iter().find(|(n, _)| n == field)
        {
            return *t;
        }
        LIST_RULES
            .iter()
            .find(|(suffix, _)| ends_with(names, suffix))
            .map_or(ListType::Atomic, |(_, t)| *t)
    }

    /// Whether the map at `names` is owned and replaced whole.
    pub fn atomic_map(self, names: &[&str]) -> bool {
        self.typed(names) && ATOMIC_MAPS.iter().any(|suffix| ends_with(names, suffix))
    }

    /// Whether the map at `names` is a Go map (its keys are not struct fields).
    pub fn string_map(self, names: &[&str]) -> bool {
        self.typed(names) && STRING_MAPS.iter().any(|suffix| ends_with(names, suffix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_types_follow_the_markers() {
        let s = Schema::BuiltIn;
        assert_eq!(
            s.list_type(&["spec", "template", "spec", "containers"]),
            ListType::Map(NAME)
        );
        assert_eq!(
            s.list_type(&["spec", "template", "spec", "containers", "ports"]),
            ListType::Map(CONTAINER_PORT)
        );
        assert_eq!(s.list_type(&["spec", "ports"]), ListType::Map(SERVICE_PORT));
        assert_eq!(s.list_type(&["metadata", "finalizers"]), ListType::Set);
        assert_eq!(
            s.list_type(&["spec", "template", "spec", "tolerations"]),
            ListType::Atomic
        );
        assert_eq!(
            s.list_type(&["spec", "containers", "args"]),
            ListType::Atomic
        );
        assert!(s.atomic_map(&["spec", "selector"]));
        assert!(s.string_map(&["spec", "template", "metadata", "labels"]));
        // A custom resource's own lists are atomic; its metadata is ObjectMeta.
        assert_eq!(
            Schema::Custom.list_type(&["spec", "containers"]),
            ListType::Atomic
        );
        assert_eq!(
            Schema::Custom.list_type(&["metadata", "finalizers"]),
            ListType::Set
        );
    }
}
