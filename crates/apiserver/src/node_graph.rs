//! The Node authorizer's graph ([`pernode_auth::node::NodeGraph`]) over the store, and what a
//! pod references ([`PodRefs`], upstream's `podutil.VisitPodSecretNames` and
//! `VisitPodConfigmapNames`), which NodeRestriction reads too.
//!
//! Upstream keeps a graph of pods, secrets, configmaps, claims, volumes and nodes, fed by
//! informers, and walks it on each decision. pernode keeps no graph of its own: the store holds
//! every object in memory, indexes each pod's `spec.nodeName` and `spec.serviceAccountName`
//! among its attributes at write time, and keeps a reverse index of `spec.nodeName` (as
//! kube-apiserver's watch cache indexes pods by node). A question ("does a pod bound to `web-1`
//! reference secret `default/tls`?") is answered from the store when it is asked:
//!
//! 1. the node's pods in the object's namespace come from the reverse index
//!    ([`Store::list_field_equals`]: O(log n) plus the pods found, nothing parsed);
//! 2. those pods (a few) are parsed, only the members that can reference something
//!    ([`PodRefs`]), and their references compared.
//!
//! A pod needs its key alone, a service account step 1 and its indexed field. The answer is
//! always current: a secret is readable the moment the pod referencing it is bound, and not a
//! moment after the pod is gone, where upstream's graph trails its informers.
//!
//! Cost: it runs only for a node's requests for secrets, configmaps, PVCs, PVs, tokens and
//! single pods (the kubelet's, a few per pod started), never for other users (the simulated
//! nodes of `pernode up` run in-process as a trusted identity) nor for a node's status, lease
//! or scoped pod list. It does not grow with the cluster: with 10,000 pods in one namespace (a
//! DaemonSet on 10,000 nodes) one answer takes about 12 µs in a debug build, parsing the one
//! pod included (`tests::one_answer_looks_up_the_nodes_pods`); a scan of the namespace's
//! attributes instead took about 0.8 ms.
//!
//! Mirror pods reference nothing, as upstream's graph adds no edges for them (NodeRestriction
//! keeps nodes from creating pods that reference anything; this is the defence in depth).

use std::collections::BTreeMap;

use pernode_auth::node::{NodeGraph, Vertex};
use pernode_store::{Entry, Store};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::kinds::POD_NODE_NAME;
use crate::service_account::MIRROR_POD_ANNOTATION;

/// The indexed field of a pod's service account.
const POD_SERVICE_ACCOUNT: &str = "spec.serviceAccountName";

/// The graph over a store.
#[derive(Clone)]
pub struct StoreGraph {
    store: Store,
}

impl StoreGraph {
    pub fn new(store: Store) -> StoreGraph {
        StoreGraph { store }
    }

    /// The pods of `namespace` bound to `node`, found by their indexed attributes.
    fn pods_on(&self, node: &str, namespace: &str) -> Vec<Entry> {
        self.store
            .list_field_equals(&format!("pods/{namespace}/"), POD_NODE_NAME, node)
    }

    /// Whether a pod of `namespace` bound to `node` references `name` as `refs` reads it.
    fn referenced(
        &self,
        node: &str,
        namespace: &str,
        name: &str,
        refs: impl Fn(&PodRefs) -> Vec<String>,
    ) -> bool {
        self.pods_on(node, namespace).iter().any(|pod| {
            PodRefs::parse(&pod.json)
                .is_ok_and(|p| !p.is_mirror() && refs(&p).iter().any(|r| r == name))
        })
    }
}

impl NodeGraph for StoreGraph {
    fn related(&self, node: &str, vertex: Vertex, namespace: &str, name: &str) -> bool {
        match vertex {
            Vertex::Pod => self
                .store
                .get(&format!("pods/{namespace}/{name}"))
                .is_some_and(|pod| pod.attrs.field(POD_NODE_NAME) == Some(node)),
            Vertex::ServiceAccount => self.pods_on(node, namespace).iter().any(|pod| {
                pod.attrs.field(POD_SERVICE_ACCOUNT) == Some(name)
                    && PodRefs::parse(&pod.json).is_ok_and(|p| !p.is_mirror())
            }),
            Vertex::Secret => self.referenced(node, namespace, name, |p| owned(p.secrets())),
            Vertex::ConfigMap => self.referenced(node, namespace, name, |p| owned(p.config_maps())),
            Vertex::PersistentVolumeClaim => {
                self.referenced(node, namespace, name, PodRefs::claims)
            }
            // pv -> pvc: the claim the volume is bound to, used by a pod on the node.
            Vertex::PersistentVolume => self
                .object(&format!("persistentvolumes/{name}"))
                .and_then(|pv| {
                    let claim = pv.pointer("/spec/claimRef")?;
                    let text = |f: &str| claim.get(f).and_then(Value::as_str).map(str::to_string);
                    Some((text("namespace")?, text("name")?))
                })
                .is_some_and(|(ns, claim)| {
                    self.related(node, Vertex::PersistentVolumeClaim, &ns, &claim)
                }),
            Vertex::VolumeAttachment => self
                .object(&format!("volumeattachments/{name}"))
                .is_some_and(|va| {
                    va.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node)
                }),
        }
    }
}

impl StoreGraph {
    fn object(&self, key: &str) -> Option<Value> {
        self.store.get(key)?.value().ok()
    }
}

fn owned(names: Vec<&str>) -> Vec<String> {
    names.into_iter().map(str::to_string).collect()
}

/// The members of a pod that can reference other objects: what the graph and NodeRestriction
/// read of it. Decoding ignores every other member, and a `null` anywhere reads as absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodRefs {
    metadata: Option<Meta>,
    spec: Option<Spec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Meta {
    name: Option<String>,
    annotations: Option<BTreeMap<String, IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    service_account_name: Option<String>,
    /// The deprecated field, which v1 conversion takes when `serviceAccountName` is empty.
    service_account: Option<String>,
    image_pull_secrets: Option<Vec<Named>>,
    containers: Option<Vec<Container>>,
    init_containers: Option<Vec<Container>>,
    ephemeral_containers: Option<Vec<Container>>,
    volumes: Option<Vec<Volume>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Container {
    env: Option<Vec<EnvVar>>,
    env_from: Option<Vec<EnvFrom>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EnvVar {
    value_from: Option<EnvVarSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EnvVarSource {
    secret_key_ref: Option<Named>,
    config_map_key_ref: Option<Named>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct EnvFrom {
    secret_ref: Option<Named>,
    config_map_ref: Option<Named>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SecretName {
    secret_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WithSecretRef {
    secret_ref: Option<Named>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Csi {
    node_publish_secret_ref: Option<Named>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ClaimSource {
    claim_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Projected {
    sources: Option<Vec<Projection>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Projection {
    secret: Option<Named>,
    config_map: Option<Named>,
    cluster_trust_bundle: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Volume {
    name: Option<String>,
    secret: Option<SecretName>,
    config_map: Option<Named>,
    projected: Option<Projected>,
    persistent_volume_claim: Option<ClaimSource>,
    ephemeral: Option<IgnoredAny>,
    azure_file: Option<SecretName>,
    cephfs: Option<WithSecretRef>,
    cinder: Option<WithSecretRef>,
    flex_volume: Option<WithSecretRef>,
    rbd: Option<WithSecretRef>,
    #[serde(rename = "scaleIO")]
    scale_io: Option<WithSecretRef>,
    iscsi: Option<WithSecretRef>,
    storageos: Option<WithSecretRef>,
    csi: Option<Csi>,
}

fn name_of(named: &Option<Named>) -> Option<&str> {
    named.as_ref()?.name.as_deref()
}

fn secret_ref(source: &Option<WithSecretRef>) -> Option<Option<&str>> {
    source.as_ref().map(|s| name_of(&s.secret_ref))
}

impl PodRefs {
    /// From a stored pod's JSON.
    pub fn parse(json: &[u8]) -> Result<PodRefs, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// From a pod being admitted.
    pub fn of(pod: &Value) -> Result<PodRefs, serde_json::Error> {
        PodRefs::deserialize(pod)
    }

    fn spec(&self) -> Option<&Spec> {
        self.spec.as_ref()
    }

    fn volumes(&self) -> &[Volume] {
        self.spec()
            .and_then(|s| s.volumes.as_deref())
            .unwrap_or_default()
    }

    /// Every container: init, regular and ephemeral (upstream's `AllContainers`).
    fn containers(&self) -> impl Iterator<Item = &Container> {
        self.spec().into_iter().flat_map(|s| {
            [&s.init_containers, &s.containers, &s.ephemeral_containers]
                .into_iter()
                .flat_map(|c| c.as_deref().unwrap_or_default())
        })
    }

    /// Whether it is a mirror pod (annotation `kubernetes.io/config.mirror`).
    pub fn is_mirror(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref())
            .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
    }

    /// Its service account: `serviceAccountName`, else the deprecated `serviceAccount`.
    pub fn service_account(&self) -> &str {
        fn field(f: &Option<String>) -> Option<&str> {
            f.as_deref().filter(|s| !s.is_empty())
        }
        self.spec()
            .and_then(|s| field(&s.service_account_name).or_else(|| field(&s.service_account)))
            .unwrap_or("")
    }

    /// The secrets it references (`VisitPodSecretNames`): image pull secrets, containers' env
    /// and envFrom, and volumes (secret, projected, and the volume plugins' secret refs).
    pub fn secrets(&self) -> Vec<&str> {
        let mut out = Vec::new();
        if let Some(pull) = self.spec().and_then(|s| s.image_pull_secrets.as_ref()) {
            out.extend(pull.iter().filter_map(|n| n.name.as_deref()));
        }
        for c in self.containers() {
            for from in c.env_from.as_deref().unwrap_or_default() {
                out.extend(name_of(&from.secret_ref));
            }
            for env in c.env.as_deref().unwrap_or_default() {
                out.extend(
                    env.value_from
                        .as_ref()
                        .and_then(|v| name_of(&v.secret_key_ref)),
                );
            }
        }
        for v in self.volumes() {
            // One source per volume: the first present, in upstream's order.
            let found = if let Some(azure) = &v.azure_file {
                Some(azure.secret_name.as_deref())
            } else if let Some(name) = secret_ref(&v.cephfs)
                .or_else(|| secret_ref(&v.cinder))
                .or_else(|| secret_ref(&v.flex_volume))
            {
                Some(name)
            } else if let Some(projected) = &v.projected {
                let sources = projected.sources.as_deref().unwrap_or_default();
                out.extend(sources.iter().filter_map(|s| name_of(&s.secret)));
                None
            } else if let Some(name) = secret_ref(&v.rbd) {
                Some(name)
            } else if let Some(secret) = &v.secret {
                Some(secret.secret_name.as_deref())
            } else if let Some(name) = secret_ref(&v.scale_io)
                .or_else(|| secret_ref(&v.iscsi))
                .or_else(|| secret_ref(&v.storageos))
            {
                Some(name)
            } else {
                v.csi.as_ref().map(|c| name_of(&c.node_publish_secret_ref))
            };
            out.extend(found.flatten());
        }
        out.retain(|n| !n.is_empty());
        out
    }

    /// The configmaps it references (`VisitPodConfigmapNames`): containers' env and envFrom,
    /// configMap and projected volumes.
    pub fn config_maps(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for c in self.containers() {
            for from in c.env_from.as_deref().unwrap_or_default() {
                out.extend(name_of(&from.config_map_ref));
            }
            for env in c.env.as_deref().unwrap_or_default() {
                out.extend(
                    env.value_from
                        .as_ref()
                        .and_then(|v| name_of(&v.config_map_key_ref)),
                );
            }
        }
        for v in self.volumes() {
            if let Some(projected) = &v.projected {
                let sources = projected.sources.as_deref().unwrap_or_default();
                out.extend(sources.iter().filter_map(|s| name_of(&s.config_map)));
            } else if v.config_map.is_some() {
                out.extend(name_of(&v.config_map));
            }
        }
        out.retain(|n| !n.is_empty());
        out
    }

    /// The claims its volumes use: `persistentVolumeClaim.claimName`, and an ephemeral
    /// volume's claim `<pod>-<volume>`.
    pub fn claims(&self) -> Vec<String> {
        let pod = self
            .metadata
            .as_ref()
            .and_then(|m| m.name.as_deref())
            .unwrap_or("");
        self.volumes()
            .iter()
            .filter_map(|v| {
                if let Some(claim) = &v.persistent_volume_claim {
                    claim.claim_name.clone()
                } else if v.ephemeral.is_some() {
                    Some(format!("{pod}-{}", v.name.as_deref().unwrap_or("")))
                } else {
                    None
                }
            })
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// Whether a volume is a `persistentVolumeClaim` (NodeRestriction's check of mirror pods).
    pub fn has_claim_volume(&self) -> bool {
        self.volumes()
            .iter()
            .any(|v| v.persistent_volume_claim.is_some())
    }

    /// Whether a projected volume has a `clusterTrustBundle` source.
    pub fn has_cluster_trust_bundle(&self) -> bool {
        self.volumes().iter().any(|v| {
            v.projected.as_ref().is_some_and(|p| {
                p.sources
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|s| s.cluster_trust_bundle.is_some())
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use pernode_store::Op;
    use serde_json::json;

    use super::*;

    fn pod(ns: &str, name: &str, node: &str, spec: Value) -> Value {
        let mut spec = spec;
        if !node.is_empty() {
            spec["nodeName"] = json!(node);
        }
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        })
    }

    fn every_reference() -> Value {
        json!({
            "serviceAccountName": "app",
            "imagePullSecrets": [{"name": "pull"}, {"name": ""}],
            "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
            "containers": [{
                "name": "c",
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                    {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}},
                    {"name": "C", "value": "plain"},
                    {"name": "D", "valueFrom": null},
                ],
                "envFrom": [{"configMapRef": {"name": "envfrom-cm"}}],
            }],
            "ephemeralContainers": [{"name": "debug", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "debug-secret"}}}]}],
            "volumes": [
                {"name": "s", "secret": {"secretName": "vol-secret"}},
                {"name": "m", "configMap": {"name": "vol-cm"}},
                {"name": "p", "projected": {"sources": [
                    {"secret": {"name": "proj-secret"}},
                    {"configMap": {"name": "proj-cm"}},
                    {"serviceAccountToken": {"path": "token"}},
                ]}},
                {"name": "c", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi-secret"}}},
                {"name": "r", "rbd": {"monitors": ["m"], "image": "i", "secretRef": {"name": "rbd-secret"}}},
                {"name": "a", "azureFile": {"secretName": "azure-secret", "shareName": "s"}},
                {"name": "i", "scaleIO": {"gateway": "g", "system": "s", "secretRef": {"name": "scaleio-secret"}}},
                {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            ],
        })
    }

    #[test]
    fn pods_reference_what_upstreams_visitors_visit() {
        let refs = PodRefs::of(&pod("default", "p", "web-1", every_reference())).unwrap();
        let mut secrets = refs.secrets();
        secrets.sort();
        assert_eq!(
            secrets,
            [
                "azure-secret",
                "csi-secret",
                "debug-secret",
                "env-secret",
                "init-env",
                "proj-secret",
                "pull",
                "rbd-secret",
                "scaleio-secret",
                "vol-secret",
            ]
        );
        let mut config_maps = refs.config_maps();
        config_maps.sort();
        assert_eq!(config_maps, ["env-cm", "envfrom-cm", "proj-cm", "vol-cm"]);
        assert_eq!(refs.claims(), ["data", "p-scratch"]);
        assert_eq!(refs.service_account(), "app");
        assert!(refs.has_claim_volume());
        assert!(!refs.has_cluster_trust_bundle());
        assert!(!refs.is_mirror());

        let bare = PodRefs::of(&json!({"metadata": null, "spec": {"volumes": null}})).unwrap();
        assert!(bare.secrets().is_empty() && bare.config_maps().is_empty());
        assert_eq!(bare.service_account(), "");
        let deprecated = PodRefs::of(&json!({"spec": {"serviceAccount": "old"}})).unwrap();
        assert_eq!(deprecated.service_account(), "old");
        let bundle = PodRefs::of(&json!({"spec": {"volumes": [{"name": "b", "projected": {"sources": [{"clusterTrustBundle": {"path": "b"}}]}}]}})).unwrap();
        assert!(bundle.has_cluster_trust_bundle());
        assert!(PodRefs::of(&json!({"spec": {"volumes": "nope"}})).is_err());
    }

    async fn store_with(pods: Vec<Value>) -> Store {
        let store = Store::in_memory(crate::registry::indexer(), Default::default());
        let ops = pods
            .into_iter()
            .map(|p| Op::Create {
                key: format!(
                    "pods/{}/{}",
                    p["metadata"]["namespace"].as_str().unwrap(),
                    p["metadata"]["name"].as_str().unwrap()
                ),
                obj: p,
            })
            .collect();
        for result in store.commit(ops).await {
            result.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn what_a_node_is_related_to() {
        let mut mirror = pod(
            "default",
            "static",
            "web-1",
            json!({"volumes": [{"name": "s", "secret": {"secretName": "mirror-secret"}}]}),
        );
        mirror["metadata"]["annotations"] = json!({MIRROR_POD_ANNOTATION: "hash"});
        let store = store_with(vec![
            pod("default", "on-1", "web-1", every_reference()),
            pod(
                "default",
                "on-2",
                "web-2",
                json!({"volumes": [{"name": "s", "secret": {"secretName": "other"}}], "serviceAccountName": "other-sa"}),
            ),
            pod(
                "default",
                "pending",
                "",
                json!({"volumes": [{"name": "s", "secret": {"secretName": "unbound"}}]}),
            ),
            mirror,
        ])
        .await;
        let graph = StoreGraph::new(store.clone());
        let yes = |vertex, ns, name| graph.related("web-1", vertex, ns, name);
        assert!(yes(Vertex::Pod, "default", "on-1"));
        assert!(yes(Vertex::Pod, "default", "static"));
        assert!(!yes(Vertex::Pod, "default", "on-2"));
        assert!(!yes(Vertex::Pod, "default", "pending"));
        assert!(!yes(Vertex::Pod, "default", "missing"));
        assert!(yes(Vertex::Secret, "default", "vol-secret"));
        assert!(yes(Vertex::Secret, "default", "pull"));
        assert!(!yes(Vertex::Secret, "kube-system", "vol-secret"));
        assert!(!yes(Vertex::Secret, "default", "other"));
        assert!(!yes(Vertex::Secret, "default", "unbound"));
        assert!(!yes(Vertex::Secret, "default", "mirror-secret"));
        assert!(yes(Vertex::ConfigMap, "default", "proj-cm"));
        assert!(!yes(Vertex::ConfigMap, "default", "vol-secret"));
        assert!(yes(Vertex::PersistentVolumeClaim, "default", "data"));
        assert!(yes(
            Vertex::PersistentVolumeClaim,
            "default",
            "on-1-scratch"
        ));
        assert!(yes(Vertex::ServiceAccount, "default", "app"));
        assert!(!yes(Vertex::ServiceAccount, "default", "other-sa"));
        assert!(graph.related("web-2", Vertex::ServiceAccount, "default", "other-sa"));
        assert!(graph.related("web-2", Vertex::Secret, "default", "other"));

        // A PV follows its claim; a VolumeAttachment names its node.
        store
            .create(
                "persistentvolumes/pv-1",
                json!({"metadata": {"name": "pv-1"}, "spec": {"claimRef": {"namespace": "default", "name": "data"}}}),
            )
            .await
            .unwrap();
        store
            .create(
                "persistentvolumes/pv-2",
                json!({"metadata": {"name": "pv-2"}, "spec": {"claimRef": {"namespace": "default", "name": "elsewhere"}}}),
            )
            .await
            .unwrap();
        store
            .create(
                "volumeattachments/va-1",
                json!({"metadata": {"name": "va-1"}, "spec": {"nodeName": "web-1"}}),
            )
            .await
            .unwrap();
        assert!(yes(Vertex::PersistentVolume, "", "pv-1"));
        assert!(!yes(Vertex::PersistentVolume, "", "pv-2"));
        assert!(!yes(Vertex::PersistentVolume, "", "pv-3"));
        assert!(yes(Vertex::VolumeAttachment, "", "va-1"));
        assert!(!graph.related("web-2", Vertex::VolumeAttachment, "", "va-1"));

        // Always current: once the pod goes, so does the relationship.
        store.delete("pods/default/on-1", None).await.unwrap();
        assert!(!yes(Vertex::Secret, "default", "vol-secret"));
    }

    /// The per-request cost at the benchmark's scale: a DaemonSet's 10,000 pods, one per node,
    /// in one namespace, each referencing a secret. Measured on the 2-core development machine
    /// in a debug build (`cargo test`, the store optimised as the workspace's dev profile
    /// has it): about 12 µs per answer through the reverse index, where a scan of the
    /// namespace's attributes took about 0.8 ms.
    #[tokio::test]
    async fn one_answer_looks_up_the_nodes_pods() {
        const PODS: usize = 10_000;
        let spec = json!({"volumes": [{"name": "s", "secret": {"secretName": "shared"}}]});
        let pods = (0..PODS)
            .map(|i| {
                pod(
                    "kube-system",
                    &format!("ds-{i}"),
                    &format!("n-{i}"),
                    spec.clone(),
                )
            })
            .collect();
        let graph = StoreGraph::new(store_with(pods).await);
        let rounds: u32 = 50;
        let start = Instant::now();
        for i in 0..rounds {
            let node = format!("n-{}", i as usize * 97 % PODS);
            assert!(graph.related(&node, Vertex::Secret, "kube-system", "shared"));
            assert!(!graph.related(&node, Vertex::Secret, "kube-system", "private"));
        }
        let each = start.elapsed() / (2 * rounds);
        eprintln!("one answer over {PODS} pods: {each:?}");
        assert!(!graph.related("n-none", Vertex::Secret, "kube-system", "shared"));
    }
}
