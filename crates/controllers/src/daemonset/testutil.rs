//! Fixtures shared by the unit tests of the DaemonSet controller.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::TEMPLATE_GENERATION_ANNOTATION;

/// A DaemonSet `name` in `default`, selector and template labels `app=<name>`, one container.
pub(crate) fn ds(name: &str) -> DaemonSet {
    let labels: BTreeMap<String, String> = [("app".to_owned(), name.to_owned())].into();
    DaemonSet {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("default".to_owned()),
            uid: Some(format!("uid-{name}")),
            generation: Some(1),
            annotations: Some([(TEMPLATE_GENERATION_ANNOTATION.to_owned(), "1".to_owned())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".to_owned(),
                        image: Some("nginx".to_owned()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DaemonSetSpec::default()
        }),
        status: None,
    }
}

/// A node with the given taints.
pub(crate) fn node(
    name: &str,
    taints: &[k8s_openapi::api::core::v1::Taint],
) -> k8s_openapi::api::core::v1::Node {
    use k8s_openapi::api::core::v1::{Node, NodeSpec};
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([("kubernetes.io/hostname".to_owned(), name.to_owned())].into()),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!taints.is_empty()).then(|| taints.to_vec()),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// A taint; an empty value means none.
pub(crate) fn taint(key: &str, value: &str, effect: &str) -> k8s_openapi::api::core::v1::Taint {
    k8s_openapi::api::core::v1::Taint {
        key: key.to_owned(),
        value: (!value.is_empty()).then(|| value.to_owned()),
        effect: effect.to_owned(),
        time_added: None,
    }
}

/// Builder of daemon pods for tests.
pub(crate) struct PodBuilder(k8s_openapi::api::core::v1::Pod);

/// A pod bound to `node` with hash label `hash` and template-generation label `generation`
/// (0 = no such label), created at second 0, phase Running, not Ready.
pub(crate) fn pod_on(name: &str, node: &str, hash: &str, generation: i64) -> PodBuilder {
    use k8s_openapi::api::core::v1::{Pod, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    let mut labels: BTreeMap<String, String> = [
        ("app".to_owned(), "x".to_owned()),
        (
            super::CONTROLLER_REVISION_HASH_LABEL.to_owned(),
            hash.to_owned(),
        ),
    ]
    .into();
    if generation > 0 {
        labels.insert(
            super::POD_TEMPLATE_GENERATION_LABEL.to_owned(),
            generation.to_string(),
        );
    }
    PodBuilder(Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("default".to_owned()),
            uid: Some(format!("uid-{name}")),
            labels: Some(labels),
            creation_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: (!node.is_empty()).then(|| node.to_owned()),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".to_owned()),
            ..PodStatus::default()
        }),
    })
}

impl PodBuilder {
    /// Ready since second `since`.
    pub(crate) fn ready(mut self, since: i64) -> Self {
        use k8s_openapi::api::core::v1::PodCondition;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let status = self.0.status.get_or_insert_with(Default::default);
        status.conditions = Some(vec![PodCondition {
            type_: "Ready".to_owned(),
            status: "True".to_owned(),
            last_transition_time: Some(Time(
                k8s_openapi::jiff::Timestamp::from_second(since).expect("valid second"),
            )),
            ..PodCondition::default()
        }]);
        self
    }

    /// Its container waiting with `reason`.
    pub(crate) fn waiting(mut self, reason: &str) -> Self {
        use k8s_openapi::api::core::v1::{ContainerState, ContainerStateWaiting, ContainerStatus};
        let status = self.0.status.get_or_insert_with(Default::default);
        status.container_statuses = Some(vec![ContainerStatus {
            name: "c".to_owned(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.to_owned()),
                    ..ContainerStateWaiting::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        self
    }

    /// Created at second `secs`.
    pub(crate) fn created(mut self, secs: i64) -> Self {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        self.0.metadata.creation_timestamp = Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(secs).expect("valid second"),
        ));
        self
    }

    /// With this phase.
    pub(crate) fn phase(mut self, phase: &str) -> Self {
        self.0.status.get_or_insert_with(Default::default).phase = Some(phase.to_owned());
        self
    }

    /// Terminating.
    pub(crate) fn terminating(mut self) -> Self {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        self.0.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        self
    }

    /// Owned by `owner` as controller.
    pub(crate) fn owned_by(mut self, owner: &DaemonSet) -> Self {
        self.0.metadata.owner_references = Some(vec![
            super::pods::controller_ref(owner).expect("fixture has name and uid"),
        ]);
        self
    }

    /// Not bound: pinned by node affinity only.
    pub(crate) fn unbound(mut self) -> Self {
        let node = self
            .0
            .spec
            .as_mut()
            .and_then(|s| s.node_name.take())
            .unwrap_or_default();
        let spec = self.0.spec.get_or_insert_with(Default::default);
        spec.affinity = Some(super::pods::replace_node_name_affinity(None, &node));
        self
    }

    /// The pod as the controller's cache keeps it.
    pub(crate) fn build(self) -> crate::trim::PodRecord {
        crate::trim::kept_as::<crate::trim::ControllerPod>(&self.0)
    }
}
