//! OpenAPI v3: the `/openapi/v3` index and one document per served group version.
//!
//! kubectl uses these for three things (contract §3.12, §4.1):
//! - deciding the server validates fields: some PATCH operation tagged with the object's
//!   `x-kubernetes-group-version-kind` must list the `fieldValidation` query parameter,
//!   otherwise apply/create/edit validate on the client against `/openapi/v2`
//!   (`crate::openapi_v2`, made from the same [`GvSpec`]s);
//! - `kubectl explain`: it finds the path of the resource, takes the GVK of its operations,
//!   finds the schema in `components.schemas` carrying that GVK and walks `properties`,
//!   `allOf` and `$ref`; the `<Type>` it prints is the last dotted segment of the schema name;
//! - client-side apply: it builds its strategic merge patch from the
//!   `x-kubernetes-patch-strategy`/`x-kubernetes-patch-merge-key` extensions of the schema.
//!
//! Schemas come from k8s-openapi's schemars impls, generated with OpenAPI 3.0 settings (refs
//! under `#/components/schemas/`, a `$ref` with siblings wrapped in `allOf` as upstream
//! does). k8s-openapi does not carry the patch extensions nor enums, so those are added from
//! small tables below; list kinds are built here because `k8s_openapi::List` has no schema.
//! Documents are generated once and cached.

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::admissionregistration::v1 as admissionregistration;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{self as core, Binding, Event, Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::api::storage::v1 as storage;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    DeleteOptions, ListMeta, ObjectMeta, Patch, Status,
};
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::catalog::{ResourceInfo, SubresourceInfo, View, group_versions};
use crate::version::GIT_VERSION;

pub(crate) const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// One generated group-version document.
#[derive(Debug)]
pub struct GvDocument {
    /// Index key, e.g. `apis/apps/v1`.
    path: String,
    bytes: Vec<u8>,
    hash: String,
}

impl GvDocument {
    fn build(view: &View, group: &str, version: &str) -> GvDocument {
        // Value's Display is infallible and compact, unlike to_vec's Result.
        let bytes = build_document(view, group, version)
            .to_string()
            .into_bytes();
        let hash = format!("{:016X}", fnv1a64(&bytes));
        GvDocument {
            path: gv_path(group, version),
            bytes,
            hash,
        }
    }

    /// The JSON document.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The hash the index puts in the document's URL (usable as an ETag).
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// The documents of the built-in group versions: the same in every server, built once.
fn builtin_documents() -> &'static [Arc<GvDocument>] {
    static DOCS: OnceLock<Vec<Arc<GvDocument>>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let view = View::builtin();
        group_versions()
            .into_iter()
            .map(|(group, version)| Arc::new(GvDocument::build(&view, group, version)))
            .collect()
    })
}

/// The OpenAPI documents of one served set ([`View`]): the v3 document of each group version
/// (built-in ones shared, those with custom resources built for this set) and the v2
/// document, built on its first request.
#[derive(Debug)]
pub struct OpenApi {
    view: Arc<View>,
    v3: Vec<Arc<GvDocument>>,
    v2: OnceLock<Arc<crate::openapi_v2::V2Document>>,
}

impl OpenApi {
    /// The documents of `view`.
    pub fn for_view(view: Arc<View>) -> OpenApi {
        let builtin = builtin_documents();
        let v3 = view
            .group_versions()
            .into_iter()
            .map(|(group, version)| {
                let has_custom = view
                    .custom()
                    .iter()
                    .any(|r| r.group == group && r.version == version);
                let path = gv_path(group, version);
                match builtin.iter().find(|d| d.path == path) {
                    Some(doc) if !has_custom => doc.clone(),
                    _ => Arc::new(GvDocument::build(&view, group, version)),
                }
            })
            .collect();
        OpenApi {
            view,
            v3,
            v2: OnceLock::new(),
        }
    }

    /// The generation of the set these documents describe.
    pub fn generation(&self) -> u64 {
        self.view.generation()
    }

    /// The body of `GET /openapi/v3`.
    pub fn index(&self) -> Value {
        index_of(&self.v3)
    }

    /// The document of one group version (`apis/apps/v1`; a leading `/` is ignored).
    pub fn document(&self, path: &str) -> Option<Arc<GvDocument>> {
        let path = path.trim_matches('/');
        self.v3.iter().find(|d| d.path == path).cloned()
    }

    /// `/openapi/v2` of this set, in the representation `accept` asks for (see
    /// [`crate::openapi_v2_for`]).
    pub fn v2_for(&self, accept: &str) -> Option<crate::OpenApiV2Body> {
        let doc = if self.view.custom().is_empty() {
            crate::openapi_v2::builtin_v2()
        } else {
            self.v2
                .get_or_init(|| Arc::new(crate::openapi_v2::V2Document::build(&self.view)))
                .clone()
        };
        crate::openapi_v2::negotiate(doc, accept)
    }
}

/// `api/v1` for core, `apis/{group}/{version}` otherwise (kubectl's own mapping).
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// A stable content hash for the index URLs (and the v2 ETag); kubectl only needs it to
/// change with the document (it caches by URL), so a 64-bit FNV-1a suffices.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn index_of(docs: &[Arc<GvDocument>]) -> Value {
    let paths: Map<String, Value> = docs
        .iter()
        .map(|d| {
            let url = format!("/openapi/v3/{}?hash={}", d.path, d.hash);
            (d.path.clone(), json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// The body of `GET /openapi/v3` for the built-ins alone.
pub fn openapi_v3_index() -> Value {
    index_of(builtin_documents())
}

/// The JSON document for one built-in group version, e.g. `api/v1` or `apis/apps/v1` (a
/// leading `/` is ignored); `None` if not served. Built on first use and kept for the process
/// lifetime.
pub fn openapi_v3_document(path: &str) -> Option<&'static [u8]> {
    find_document(path).map(|d| d.bytes.as_slice())
}

/// The hash the index puts in the document's URL (usable as an ETag).
pub fn openapi_v3_hash(path: &str) -> Option<&'static str> {
    find_document(path).map(|d| d.hash.as_str())
}

fn find_document(path: &str) -> Option<&'static GvDocument> {
    let path = path.trim_matches('/');
    builtin_documents()
        .iter()
        .find(|d| d.path == path)
        .map(|d| &**d)
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{SCHEMA_PREFIX}{name}") })
}

/// Adds `T` (and everything it references) to the generator; returns its schema name.
fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// The k8s-openapi type of each kind a served operation accepts or returns.
fn add_kind(
    generator: &mut SchemaGenerator,
    group: &str,
    version: &str,
    kind: &str,
) -> Option<String> {
    Some(match (group, version, kind) {
        ("", "v1", "Namespace") => add::<Namespace>(generator),
        ("", "v1", "Node") => add::<Node>(generator),
        ("", "v1", "Pod") => add::<Pod>(generator),
        ("", "v1", "Event") => add::<Event>(generator),
        ("", "v1", "Binding") => add::<Binding>(generator),
        ("policy", "v1", "Eviction") => add::<Eviction>(generator),
        ("authentication.k8s.io", "v1", "TokenRequest") => {
            add::<k8s_openapi::api::authentication::v1::TokenRequest>(generator)
        }
        ("authentication.k8s.io", "v1", "TokenReview") => {
            add::<k8s_openapi::api::authentication::v1::TokenReview>(generator)
        }
        ("authentication.k8s.io", "v1", "SelfSubjectReview") => {
            add::<k8s_openapi::api::authentication::v1::SelfSubjectReview>(generator)
        }
        ("authorization.k8s.io", "v1", "LocalSubjectAccessReview") => {
            add::<k8s_openapi::api::authorization::v1::LocalSubjectAccessReview>(generator)
        }
        ("authorization.k8s.io", "v1", "SelfSubjectAccessReview") => {
            add::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>(generator)
        }
        ("authorization.k8s.io", "v1", "SelfSubjectRulesReview") => {
            add::<k8s_openapi::api::authorization::v1::SelfSubjectRulesReview>(generator)
        }
        ("authorization.k8s.io", "v1", "SubjectAccessReview") => {
            add::<k8s_openapi::api::authorization::v1::SubjectAccessReview>(generator)
        }
        ("apps", "v1", "DaemonSet") => add::<DaemonSet>(generator),
        ("", "v1", "PersistentVolumeClaim") => add::<core::PersistentVolumeClaim>(generator),
        ("", "v1", "PersistentVolume") => add::<core::PersistentVolume>(generator),
        ("", "v1", "ReplicationController") => add::<core::ReplicationController>(generator),
        ("apps", "v1", "Deployment") => add::<k8s_openapi::api::apps::v1::Deployment>(generator),
        ("apps", "v1", "ReplicaSet") => add::<k8s_openapi::api::apps::v1::ReplicaSet>(generator),
        ("apps", "v1", "StatefulSet") => add::<k8s_openapi::api::apps::v1::StatefulSet>(generator),
        ("batch", "v1", "CronJob") => add::<k8s_openapi::api::batch::v1::CronJob>(generator),
        ("batch", "v1", "Job") => add::<k8s_openapi::api::batch::v1::Job>(generator),
        ("certificates.k8s.io", "v1", "CertificateSigningRequest") => {
            add::<k8s_openapi::api::certificates::v1::CertificateSigningRequest>(generator)
        }
        ("networking.k8s.io", "v1", "Ingress") => {
            add::<k8s_openapi::api::networking::v1::Ingress>(generator)
        }
        ("apps", "v1", "ControllerRevision") => add::<ControllerRevision>(generator),
        ("coordination.k8s.io", "v1", "Lease") => add::<Lease>(generator),
        ("events.k8s.io", "v1", "Event") => add::<k8s_openapi::api::events::v1::Event>(generator),
        ("", "v1", "ConfigMap") => add::<core::ConfigMap>(generator),
        ("", "v1", "Endpoints") => add::<core::Endpoints>(generator),
        ("", "v1", "Secret") => add::<core::Secret>(generator),
        ("", "v1", "ServiceAccount") => add::<core::ServiceAccount>(generator),
        ("", "v1", "Service") => add::<core::Service>(generator),
        ("networking.k8s.io", "v1", "NetworkPolicy") => {
            add::<k8s_openapi::api::networking::v1::NetworkPolicy>(generator)
        }
        ("policy", "v1", "PodDisruptionBudget") => {
            add::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(generator)
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            add::<rbac::ClusterRoleBinding>(generator)
        }
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => add::<rbac::ClusterRole>(generator),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => add::<rbac::RoleBinding>(generator),
        ("rbac.authorization.k8s.io", "v1", "Role") => add::<rbac::Role>(generator),
        ("storage.k8s.io", "v1", "CSIDriver") => add::<storage::CSIDriver>(generator),
        ("storage.k8s.io", "v1", "CSINode") => add::<storage::CSINode>(generator),
        ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration") => {
            add::<admissionregistration::MutatingWebhookConfiguration>(generator)
        }
        ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration") => {
            add::<admissionregistration::ValidatingWebhookConfiguration>(generator)
        }
        ("scheduling.k8s.io", "v1", "PriorityClass") => {
            add::<k8s_openapi::api::scheduling::v1::PriorityClass>(generator)
        }
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => {
            add::<CustomResourceDefinition>(generator)
        }
        ("autoscaling", "v1", "Scale") => add::<Scale>(generator),
        ("discovery.k8s.io", "v1", "EndpointSlice") => {
            add::<k8s_openapi::api::discovery::v1::EndpointSlice>(generator)
        }
        _ => return None,
    })
}

/// Schema names of the kinds used by a document's operations.
struct Names {
    /// Per resource (catalogue order): object schema, list schema.
    resources: Vec<(&'static ResourceInfo, String, String)>,
    /// Per (resource plural, subresource name) with a kind of its own: schema name.
    subresources: Vec<(&'static str, &'static str, String)>,
    status: String,
    delete_options: String,
    patch: String,
}

/// The operations and schemas of one served group version, in OpenAPI 3.0 form (refs under
/// `#/components/schemas/`): the one source of both documents. `/openapi/v3/<gv>` wraps it
/// as is; `/openapi/v2` (`crate::openapi_v2`) converts and merges those of every group
/// version, so a kind added to the catalogue (and to `add_kind`) appears in both.
pub(crate) struct GvSpec {
    pub paths: Map<String, Value>,
    pub schemas: Map<String, Value>,
}

fn build_document(view: &View, group: &str, version: &str) -> Value {
    let spec = gv_spec(view, group, version);
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": GIT_VERSION },
        "paths": spec.paths,
        "components": { "schemas": spec.schemas },
    })
}

/// Generates the schemas (with their GVK, patch and enum extensions) and the paths of the
/// resources the catalogue serves in `group`/`version`.
pub(crate) fn gv_spec(view: &View, group: &str, version: &str) -> GvSpec {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    // (schema name, GVK) pairs to tag once the definitions exist.
    let mut tags: Vec<(String, Value)> = Vec::new();
    let mut names = Names {
        resources: Vec::new(),
        subresources: Vec::new(),
        status: add::<Status>(&mut generator),
        delete_options: add::<DeleteOptions>(&mut generator),
        patch: add::<Patch>(&mut generator),
    };
    tags.push((names.status.clone(), gvk("", "v1", "Status")));
    let list_meta = add::<ListMeta>(&mut generator);

    let served: Vec<&'static ResourceInfo> = view
        .resources()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    // Custom resources' schemas come from their CRD, once the generator's are taken.
    let mut custom: Vec<(String, &'static ResourceInfo)> = Vec::new();
    let object_meta = if served.iter().any(|r| r.custom.is_some()) {
        Some(add::<ObjectMeta>(&mut generator))
    } else {
        None
    };
    for r in &served {
        let name = match r.custom {
            Some(_) => {
                let name = custom_schema_name(r);
                custom.push((name.clone(), r));
                name
            }
            None => match add_kind(&mut generator, r.group, r.version, r.kind) {
                Some(name) => name,
                None => continue,
            },
        };
        tags.push((name.clone(), gvk(r.group, r.version, r.kind)));
        let list_name = format!("{name}List");
        names.resources.push((r, name, list_name));
        for s in r.subresources {
            if s.kind == r.kind && s.group == r.group {
                continue;
            }
            if let Some(sub_name) = add_kind(&mut generator, s.group, s.version, s.kind) {
                tags.push((sub_name.clone(), gvk(s.group, s.version, s.kind)));
                names.subresources.push((r.plural, s.name, sub_name));
            }
        }
    }

    let mut schemas = generator.take_definitions(true);
    if let Some(object_meta) = &object_meta {
        for (name, r) in &custom {
            schemas.insert(name.clone(), custom_schema(r, object_meta));
        }
    }
    for (r, name, list_name) in &names.resources {
        // A kind that is only created (TokenReview) has no list, as upstream publishes none.
        if r.has_verb("list") {
            let list = list_schema(&schemas, r, name, &list_meta);
            schemas.insert(list_name.clone(), list);
            tags.push((
                list_name.clone(),
                gvk(r.group, r.version, &format!("{}List", r.kind)),
            ));
        }
        // k8s-openapi marks metadata required because its field is not an Option; upstream's
        // schema does not, and `kubectl explain` would print `-required-` next to it.
        if let Some(Value::Object(obj)) = schemas.get_mut(name) {
            if let Some(Value::Array(required)) = obj.get_mut("required") {
                required.retain(|f| f != "metadata");
            }
            if obj
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
            {
                obj.remove("required");
            }
        }
    }
    for (name, tag) in tags {
        if let Some(Value::Object(obj)) = schemas.get_mut(&name) {
            obj.insert(
                "x-kubernetes-group-version-kind".into(),
                Value::Array(vec![tag]),
            );
        }
    }
    annotate(&mut schemas);

    GvSpec {
        paths: paths(group, version, &names),
        schemas,
    }
}

/// Upstream's name for a custom resource's schema: the group reversed, the version, the
/// kind (`com.example.v1.Widget`).
fn custom_schema_name(r: &ResourceInfo) -> String {
    let mut parts: Vec<&str> = r.group.split('.').collect();
    parts.reverse();
    format!("{}.{}.{}", parts.join("."), r.version, r.kind)
}

/// A custom resource's published schema: its CRD's `openAPIV3Schema` with `apiVersion`,
/// `kind` and `metadata` (a reference to ObjectMeta) filled in, as upstream's builder does.
fn custom_schema(r: &ResourceInfo, object_meta: &str) -> Value {
    let mut schema = r
        .custom
        .and_then(|c| c.schema.clone())
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let Some(obj) = schema.as_object_mut() else {
        return schema;
    };
    let props = obj.entry("properties").or_insert_with(|| json!({}));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            "apiVersion".into(),
            json!({"description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources", "type": "string"}),
        );
        props.insert(
            "kind".into(),
            json!({"description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", "type": "string"}),
        );
        props.insert(
            "metadata".into(),
            json!({"description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", "allOf": [schema_ref(object_meta)]}),
        );
    }
    schema
}

/// The `XList` schema of a resource, shaped as upstream's list kinds.
fn list_schema(
    schemas: &Map<String, Value>,
    r: &ResourceInfo,
    item: &str,
    list_meta: &str,
) -> Value {
    // apiVersion and kind read the same on every object: borrow the item's.
    let prop = |field: &str| {
        schemas
            .get(item)
            .and_then(|s| s["properties"].get(field))
            .cloned()
            .unwrap_or_else(|| json!({ "type": "string" }))
    };
    json!({
        "description": format!("{}List is a list of {} objects.", r.kind, r.kind),
        "type": "object",
        "properties": {
            "apiVersion": prop("apiVersion"),
            "items": {
                "description": format!("List of {}.", r.plural),
                "type": "array",
                "items": schema_ref(item),
            },
            "kind": prop("kind"),
            "metadata": {
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "allOf": [schema_ref(list_meta)],
            },
        },
        "required": ["items"],
    })
}

/// Strategic-merge-patch metadata of the served types, from upstream's Go struct tags
/// (`patchStrategy`, `patchMergeKey`): schema, property, strategy, merge key.
const PATCH_META: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "merge",
        None,
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "merge",
        Some("uid"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        "merge",
        Some("topologyKey"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        "merge,retainKeys",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        "merge",
        Some("containerPort"),
    ),
    ("io.k8s.api.core.v1.Container", "env", "merge", Some("name")),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        "merge",
        Some("containerPort"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        "merge",
        Some("name"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        "merge",
        Some("mountPath"),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        "merge",
        Some("devicePath"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "hostIPs",
        "merge",
        Some("ip"),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        "merge,retainKeys",
        Some("name"),
    ),
    ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", "merge", None),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "addresses",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        "merge",
        Some("type"),
    ),
];

const TAINT_EFFECTS: &[&str] = &["NoExecute", "NoSchedule", "PreferNoSchedule"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const MESSAGE_POLICIES: &[&str] = &["FallbackToLogsOnError", "File"];

/// Upstream's `+enum` string types among the served kinds' fields; `kubectl explain` prints
/// them as `enum:`/`ENUM:` (k8s-openapi keeps only the descriptions).
const ENUMS: &[(&str, &str, &[&str])] = &[
    (
        "io.k8s.api.apps.v1.DaemonSetUpdateStrategy",
        "type",
        &["OnDelete", "RollingUpdate"],
    ),
    (
        "io.k8s.api.core.v1.Container",
        "imagePullPolicy",
        PULL_POLICIES,
    ),
    (
        "io.k8s.api.core.v1.Container",
        "terminationMessagePolicy",
        MESSAGE_POLICIES,
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "imagePullPolicy",
        PULL_POLICIES,
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "terminationMessagePolicy",
        MESSAGE_POLICIES,
    ),
    (
        "io.k8s.api.core.v1.ContainerPort",
        "protocol",
        &["SCTP", "TCP", "UDP"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "restartPolicy",
        &["Always", "Never", "OnFailure"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "dnsPolicy",
        &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "preemptionPolicy",
        &["Never", "PreemptLowerPriority"],
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "phase",
        &["Failed", "Pending", "Running", "Succeeded", "Unknown"],
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "qosClass",
        &["BestEffort", "Burstable", "Guaranteed"],
    ),
    (
        "io.k8s.api.core.v1.Toleration",
        "operator",
        &["Equal", "Exists"],
    ),
    ("io.k8s.api.core.v1.Toleration", "effect", TAINT_EFFECTS),
    ("io.k8s.api.core.v1.Taint", "effect", TAINT_EFFECTS),
    (
        "io.k8s.api.core.v1.NodeSelectorRequirement",
        "operator",
        &["DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn"],
    ),
    (
        "io.k8s.api.core.v1.HTTPGetAction",
        "scheme",
        &["HTTP", "HTTPS"],
    ),
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        "whenUnsatisfiable",
        &["DoNotSchedule", "ScheduleAnyway"],
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "phase",
        &["Active", "Terminating"],
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        "phase",
        &["Pending", "Running", "Terminated"],
    ),
];

fn property_mut<'a>(
    schemas: &'a mut Map<String, Value>,
    schema: &str,
    prop: &str,
) -> Option<&'a mut Map<String, Value>> {
    schemas
        .get_mut(schema)?
        .get_mut("properties")?
        .get_mut(prop)?
        .as_object_mut()
}

/// Adds the patch extensions and enums to whichever of their schemas this document holds.
fn annotate(schemas: &mut Map<String, Value>) {
    for (schema, prop, strategy, key) in PATCH_META {
        if let Some(p) = property_mut(schemas, schema, prop) {
            p.insert("x-kubernetes-patch-strategy".into(), (*strategy).into());
            if let Some(key) = key {
                p.insert("x-kubernetes-patch-merge-key".into(), (*key).into());
            }
        }
    }
    for (schema, prop, values) in ENUMS {
        if let Some(p) = property_mut(schemas, schema, prop) {
            p.insert("enum".into(), json!(values));
        }
    }
}

// --- paths -------------------------------------------------------------------------------

fn param(name: &str, location: &str, ty: &str, description: &str) -> Value {
    let mut p = json!({
        "name": name,
        "in": location,
        "description": description,
        "schema": { "type": ty, "uniqueItems": true },
    });
    if location == "path" {
        p["required"] = true.into();
    }
    p
}

fn list_params() -> Vec<Value> {
    vec![
        param(
            "allowWatchBookmarks",
            "query",
            "boolean",
            "Ask for BOOKMARK watch events; servers may ignore it.",
        ),
        param(
            "continue",
            "query",
            "string",
            "The continue token of the previous page of a paginated list.",
        ),
        param(
            "fieldSelector",
            "query",
            "string",
            "Restrict the list to objects whose fields match. Defaults to everything.",
        ),
        param(
            "labelSelector",
            "query",
            "string",
            "Restrict the list to objects whose labels match. Defaults to everything.",
        ),
        param(
            "limit",
            "query",
            "integer",
            "The maximum number of objects to return; the reply carries a continue token if more remain.",
        ),
        param(
            "resourceVersion",
            "query",
            "string",
            "The resourceVersion the list or watch starts from.",
        ),
        param(
            "resourceVersionMatch",
            "query",
            "string",
            "How resourceVersion applies to a list: Exact or NotOlderThan.",
        ),
        param(
            "sendInitialEvents",
            "query",
            "boolean",
            "Start a watch with synthetic events for the current state.",
        ),
        param(
            "timeoutSeconds",
            "query",
            "integer",
            "Limit the duration of the list or watch call.",
        ),
        param(
            "watch",
            "query",
            "boolean",
            "Watch for changes instead of listing; the reply is a stream of watch events.",
        ),
    ]
}

fn dry_run() -> Value {
    param(
        "dryRun",
        "query",
        "string",
        "When present (All), the request is validated and defaulted but not persisted.",
    )
}

fn field_manager() -> Value {
    param(
        "fieldManager",
        "query",
        "string",
        "The name of the actor making the change, recorded in managedFields.",
    )
}

/// The parameter kubectl looks for to decide the server validates fields (§4.1).
fn field_validation() -> Value {
    param(
        "fieldValidation",
        "query",
        "string",
        "How to handle unknown or duplicate fields in the request: Ignore, Warn or Strict.",
    )
}

fn write_params() -> Vec<Value> {
    vec![dry_run(), field_manager(), field_validation()]
}

fn delete_params() -> Vec<Value> {
    vec![
        dry_run(),
        param(
            "gracePeriodSeconds",
            "query",
            "integer",
            "Seconds before the object is deleted; zero means immediately.",
        ),
        param(
            "orphanDependents",
            "query",
            "boolean",
            "Deprecated: use propagationPolicy.",
        ),
        param(
            "propagationPolicy",
            "query",
            "string",
            "Whether and how dependents are garbage collected: Orphan, Background or Foreground.",
        ),
    ]
}

fn content(schema_name: &str, media_types: &[&str]) -> Value {
    let map: Map<String, Value> = media_types
        .iter()
        .map(|m| {
            (
                (*m).to_string(),
                json!({ "schema": schema_ref(schema_name) }),
            )
        })
        .collect();
    Value::Object(map)
}

fn responses(codes: &[&str], schema_name: &str) -> Value {
    let mut map = Map::new();
    for code in codes {
        let description = match *code {
            "201" => "Created",
            "202" => "Accepted",
            _ => "OK",
        };
        map.insert(
            (*code).to_string(),
            json!({
                "description": description,
                "content": content(schema_name, &["application/json", "application/yaml"]),
            }),
        );
    }
    map.insert("401".into(), json!({ "description": "Unauthorized" }));
    Value::Object(map)
}

/// Upstream-style operation ids: `patchAppsV1NamespacedDaemonSetStatus`.
fn operation_id(
    verb: &str,
    r: &ResourceInfo,
    collection: bool,
    namespaced: bool,
    sub: &str,
    all_ns: bool,
) -> String {
    fn capitalize(s: &str) -> String {
        let mut chars = s.chars();
        chars
            .next()
            .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
            .unwrap_or_default()
    }
    let group = if r.group.is_empty() {
        "Core".to_string()
    } else {
        capitalize(r.group.split('.').next().unwrap_or(r.group))
    };
    format!(
        "{verb}{group}{}{}{}{}{}{}",
        capitalize(r.version),
        if collection { "Collection" } else { "" },
        if namespaced { "Namespaced" } else { "" },
        r.kind,
        capitalize(sub),
        if all_ns { "ForAllNamespaces" } else { "" },
    )
}

struct Op {
    action: &'static str,
    id: String,
    description: String,
    gvk: Value,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Value,
}

impl Op {
    fn into_value(self, tag: &str) -> Value {
        let mut op = json!({
            "tags": [tag],
            "description": self.description,
            "operationId": self.id,
            "parameters": self.params,
            "responses": self.responses,
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.gvk,
        });
        if let Some(body) = self.body {
            op["requestBody"] = body;
        }
        op
    }
}

fn body(schema_name: &str, required: bool) -> Value {
    json!({ "content": content(schema_name, &["*/*"]), "required": required })
}

fn patch_body(patch: &str) -> Value {
    json!({
        "content": content(
            patch,
            &[
                "application/apply-patch+yaml",
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ],
        ),
        "required": true,
    })
}

fn paths(group: &str, version: &str, names: &Names) -> Map<String, Value> {
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let tag = if group.is_empty() {
        format!("core_{version}")
    } else {
        format!("{}_{version}", group.split('.').next().unwrap_or(group))
    };
    let mut out = Map::new();
    let mut add_path = |path: String, path_params: Vec<Value>, ops: Vec<(&str, Op)>| {
        if ops.is_empty() {
            return;
        }
        let mut item = Map::new();
        item.insert("parameters".into(), Value::Array(path_params));
        for (method, op) in ops {
            item.insert(method.into(), op.into_value(&tag));
        }
        out.insert(path, Value::Object(item));
    };

    for (r, name, list_name) in &names.resources {
        let ns = r.namespaced;
        let ns_seg = if ns { "/namespaces/{namespace}" } else { "" };
        let kind_gvk = gvk(r.group, r.version, r.kind);
        let pretty = param(
            "pretty",
            "query",
            "string",
            "If 'true', the output is pretty printed.",
        );
        let ns_param = param(
            "namespace",
            "path",
            "string",
            "object name and auth scope, such as for teams and projects",
        );
        let name_param = param("name", "path", "string", &format!("name of the {}", r.kind));
        let mut scope_params = Vec::new();
        if ns {
            scope_params.push(ns_param.clone());
        }
        scope_params.push(pretty.clone());
        let mut item_params = vec![name_param.clone()];
        item_params.extend(scope_params.iter().cloned());

        // Collection: list, create, deletecollection.
        let mut ops = Vec::new();
        if r.has_verb("list") {
            ops.push((
                "get",
                Op {
                    action: "list",
                    id: operation_id("list", r, false, ns, "", false),
                    description: format!("list or watch objects of kind {}", r.kind),
                    gvk: kind_gvk.clone(),
                    params: list_params(),
                    body: None,
                    responses: responses(&["200"], list_name),
                },
            ));
        }
        if r.has_verb("create") {
            ops.push((
                "post",
                Op {
                    action: "post",
                    id: operation_id("create", r, false, ns, "", false),
                    description: format!("create a {}", r.kind),
                    gvk: kind_gvk.clone(),
                    params: write_params(),
                    body: Some(body(name, true)),
                    responses: responses(&["200", "201", "202"], name),
                },
            ));
        }
        if r.has_verb("deletecollection") {
            let mut params = list_params();
            params.extend(delete_params());
            ops.push((
                "delete",
                Op {
                    action: "deletecollection",
                    id: operation_id("delete", r, true, ns, "", false),
                    description: format!("delete collection of {}", r.kind),
                    gvk: kind_gvk.clone(),
                    params,
                    body: Some(body(&names.delete_options, false)),
                    responses: responses(&["200"], &names.status),
                },
            ));
        }
        add_path(
            format!("{prefix}{ns_seg}/{}", r.plural),
            scope_params.clone(),
            ops,
        );

        // Every namespace at once: list only.
        if ns && r.has_verb("list") {
            let op = Op {
                action: "list",
                id: operation_id("list", r, false, false, "", true),
                description: format!("list or watch objects of kind {}", r.kind),
                gvk: kind_gvk.clone(),
                params: list_params(),
                body: None,
                responses: responses(&["200"], list_name),
            };
            add_path(
                format!("{prefix}/{}", r.plural),
                vec![pretty.clone()],
                vec![("get", op)],
            );
        }

        // Item: read, replace, patch, delete.
        let mut ops = Vec::new();
        if r.has_verb("get") {
            ops.push((
                "get",
                item_op("get", "read", r, "", name, &names.patch, &kind_gvk),
            ));
        }
        if r.has_verb("update") {
            ops.push((
                "put",
                item_op("put", "replace", r, "", name, &names.patch, &kind_gvk),
            ));
        }
        if r.has_verb("patch") {
            ops.push((
                "patch",
                item_op("patch", "patch", r, "", name, &names.patch, &kind_gvk),
            ));
        }
        if r.has_verb("delete") {
            ops.push((
                "delete",
                Op {
                    action: "delete",
                    id: operation_id("delete", r, false, ns, "", false),
                    description: format!("delete a {}", r.kind),
                    gvk: kind_gvk.clone(),
                    params: delete_params(),
                    body: Some(body(&names.delete_options, false)),
                    responses: responses(&["200", "202"], &names.status),
                },
            ));
        }
        let item_path = format!("{prefix}{ns_seg}/{}/{{name}}", r.plural);
        add_path(item_path.clone(), item_params.clone(), ops);

        // Subresources.
        for s in r.subresources {
            if s.is_connect() {
                let sub_gvk = gvk(s.group, s.version, s.kind);
                let ops = s
                    .verbs
                    .iter()
                    .filter_map(|verb| connect_op(verb, r, s, &sub_gvk))
                    .collect();
                add_path(format!("{item_path}/{}", s.name), item_params.clone(), ops);
                continue;
            }
            let (schema, sub_gvk) = subresource_schema(r, s, name, names);
            let Some(schema) = schema else { continue };
            let mut ops = Vec::new();
            for verb in s.verbs {
                let (method, action, id_verb) = match *verb {
                    "get" => ("get", "get", "read"),
                    "update" => ("put", "put", "replace"),
                    "patch" => ("patch", "patch", "patch"),
                    "create" => ("post", "post", "create"),
                    _ => continue,
                };
                let mut op = item_op(action, id_verb, r, s.name, &schema, &names.patch, &sub_gvk);
                if action == "post" {
                    op.description = format!("create {} of a {}", s.kind, r.kind);
                }
                ops.push((method, op));
            }
            add_path(format!("{item_path}/{}", s.name), item_params.clone(), ops);
        }
    }
    out
}

/// The schema name and GVK of what a subresource accepts and returns.
fn subresource_schema(
    r: &ResourceInfo,
    s: &SubresourceInfo,
    parent: &str,
    names: &Names,
) -> (Option<String>, Value) {
    if s.kind == r.kind && s.group == r.group {
        return (Some(parent.to_string()), gvk(r.group, r.version, r.kind));
    }
    let schema = names
        .subresources
        .iter()
        .find(|(plural, sub, _)| *plural == r.plural && *sub == s.name)
        .map(|(_, _, n)| n.clone());
    (schema, gvk(s.group, s.version, s.kind))
}

/// A `connect` operation (exec, attach, portforward, proxy): upstream's
/// `connectCoreV1GetNamespacedPodExec`, answering a stream described as a string.
fn connect_op(
    verb: &str,
    r: &ResourceInfo,
    s: &SubresourceInfo,
    op_gvk: &Value,
) -> Option<(&'static str, Op)> {
    let (method, go_method) = match verb {
        "get" => ("get", "Get"),
        "create" => ("post", "Post"),
        "update" => ("put", "Put"),
        "patch" => ("patch", "Patch"),
        "delete" => ("delete", "Delete"),
        _ => return None,
    };
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}}),
    );
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));
    let op = Op {
        action: "connect",
        id: {
            // Upstream puts the method after the group and version:
            // connectCoreV1GetNamespacedPodExec.
            let with_kind = operation_id("connect", r, false, false, "", false);
            let group_version = with_kind.strip_suffix(r.kind).unwrap_or(&with_kind);
            let rest = operation_id("", r, false, r.namespaced, s.name, false);
            let rest = rest
                .strip_prefix(&group_version["connect".len()..])
                .unwrap_or(&rest);
            format!("{group_version}{go_method}{rest}")
        },
        description: format!(
            "connect {} requests to {} of {}",
            go_method.to_uppercase(),
            s.name,
            r.kind
        ),
        gvk: op_gvk.clone(),
        params: Vec::new(),
        body: None,
        responses: Value::Object(responses),
    };
    Some((method, op))
}

/// A read/replace/patch/create operation on an object or one of its subresources.
#[allow(clippy::too_many_arguments)] // each argument is one facet of the operation
fn item_op(
    action: &'static str,
    id_verb: &str,
    r: &ResourceInfo,
    sub: &str,
    schema: &str,
    patch: &str,
    op_gvk: &Value,
) -> Op {
    let what = if sub.is_empty() {
        format!("the specified {}", r.kind)
    } else {
        format!("{sub} of the specified {}", r.kind)
    };
    let (params, body_value, codes): (Vec<Value>, Option<Value>, &[&str]) = match action {
        "get" => (vec![], None, &["200"]),
        "put" => (write_params(), Some(body(schema, true)), &["200", "201"]),
        "patch" => {
            let mut params = write_params();
            params.push(param(
                "force",
                "query",
                "boolean",
                "Force an apply patch to take over conflicting fields.",
            ));
            (params, Some(patch_body(patch)), &["200", "201"])
        }
        _ => (
            write_params(),
            Some(body(schema, true)),
            &["200", "201", "202"],
        ),
    };
    let verb_text = match action {
        "get" => "read",
        "put" => "replace",
        "patch" => "partially update",
        _ => "create",
    };
    Op {
        action,
        id: operation_id(id_verb, r, false, r.namespaced, sub, false),
        description: format!("{verb_text} {what}"),
        gvk: op_gvk.clone(),
        params,
        body: body_value,
        responses: responses(codes, schema),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str) -> Value {
        let bytes = openapi_v3_document(path).unwrap_or_default();
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    fn schema_with_gvk<'a>(
        d: &'a Value,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Vec<(&'a String, &'a Value)> {
        let want = gvk(group, version, kind);
        d["components"]["schemas"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, s)| {
                        s["x-kubernetes-group-version-kind"]
                            .as_array()
                            .is_some_and(|a| a.contains(&want))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn resolve<'a>(d: &'a Value, reference: &str) -> &'a Value {
        let name = reference.strip_prefix(SCHEMA_PREFIX).unwrap_or(reference);
        &d["components"]["schemas"][name]
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| collect_refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn index_urls_resolve_to_documents() {
        let index = openapi_v3_index();
        let paths = index["paths"].as_object().cloned().unwrap_or_default();
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), group_versions().len());
        for key in ["api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"] {
            let url = paths[key]["serverRelativeURL"].as_str().unwrap_or_default();
            let (path, hash) = url
                .strip_prefix("/openapi/v3/")
                .and_then(|rest| rest.split_once("?hash="))
                .unwrap_or_default();
            assert_eq!(path, key);
            assert_eq!(openapi_v3_hash(path), Some(hash));
            let bytes = openapi_v3_document(path).unwrap_or_default();
            assert!(!bytes.is_empty(), "{key}");
            assert_eq!(format!("{:016X}", fnv1a64(bytes)), hash);
        }
        assert!(openapi_v3_document("/apis/apps/v1").is_some());
        assert!(openapi_v3_document("apis/policy/v1beta1").is_none());
    }

    #[test]
    fn every_ref_resolves() {
        for path in ["api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1"] {
            let d = doc(path);
            assert_eq!(d["openapi"], "3.0.0");
            let mut refs = Vec::new();
            collect_refs(&d, &mut refs);
            assert!(!refs.is_empty());
            for r in refs {
                assert!(r.starts_with(SCHEMA_PREFIX), "{r}");
                assert!(resolve(&d, &r).is_object(), "{path}: dangling {r}");
            }
        }
    }

    #[test]
    fn every_kind_has_one_schema_and_paths() {
        for r in crate::catalog::RESOURCES {
            let d = doc(&gv_path(r.group, r.version));
            assert_eq!(
                schema_with_gvk(&d, r.group, r.version, r.kind).len(),
                1,
                "{}",
                r.kind
            );
            let list = format!("{}List", r.kind);
            assert_eq!(
                schema_with_gvk(&d, r.group, r.version, &list).len(),
                usize::from(r.has_verb("list")),
                "{list}"
            );
            let prefix = if r.group.is_empty() {
                "/api/v1".into()
            } else {
                format!("/apis/{}/v1", r.group)
            };
            let ns = if r.namespaced {
                "/namespaces/{namespace}"
            } else {
                ""
            };
            let item = format!("{prefix}{ns}/{}/{{name}}", r.plural);
            let collection = &d["paths"][format!("{prefix}{ns}/{}", r.plural)];
            if r.verbs == crate::CREATE_ONLY {
                assert!(d["paths"].get(&item).is_none(), "{item}");
                assert_eq!(collection["post"]["x-kubernetes-action"], "post");
                assert!(collection.get("get").is_none(), "{}", r.plural);
                continue;
            }
            assert!(d["paths"][&item]["get"].is_object(), "{item}");
            assert!(collection["get"].is_object());
            if r.namespaced {
                assert_eq!(
                    d["paths"][format!("{prefix}/{}", r.plural)]["get"]["x-kubernetes-action"],
                    "list"
                );
            }
            for s in r.subresources {
                let sub = &d["paths"][format!("{item}/{}", s.name)];
                assert!(sub.is_object(), "{item}/{}", s.name);
            }
        }
    }

    #[test]
    fn connect_subresources_are_connect_operations() {
        let d = doc("api/v1");
        let exec = &d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/exec"];
        assert_eq!(
            exec["post"]["operationId"],
            "connectCoreV1PostNamespacedPodExec"
        );
        assert_eq!(exec["get"]["x-kubernetes-action"], "connect");
        assert_eq!(
            exec["get"]["x-kubernetes-group-version-kind"],
            json!({"group": "", "version": "v1", "kind": "PodExecOptions"})
        );
        let proxy = &d["paths"]["/api/v1/nodes/{name}/proxy"];
        assert_eq!(
            proxy["delete"]["operationId"],
            "connectCoreV1DeleteNodeProxy"
        );
    }

    #[test]
    fn daemonset_patch_operation_supports_field_validation() {
        let d = doc("apis/apps/v1");
        let patch = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "DaemonSet"})
        );
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDaemonSet");
        let has_param = |op: &Value, name: &str| {
            op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "query"))
        };
        assert!(has_param(patch, "fieldValidation"));
        assert!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"]["schema"]["$ref"]
                .as_str()
                .is_some_and(|r| r.ends_with("meta.v1.Patch"))
        );
        // kubectl stops at the first PATCH operation with the GVK, in map order: all must do.
        for d in [
            doc("api/v1"),
            doc("apis/apps/v1"),
            doc("apis/coordination.k8s.io/v1"),
        ] {
            for (path, item) in d["paths"].as_object().cloned().unwrap_or_default() {
                // Connect operations (nodes/proxy) carry an *Options kind, not an object's.
                if let Some(op) = item
                    .get("patch")
                    .filter(|op| op["x-kubernetes-action"] != "connect")
                {
                    assert!(has_param(op, "fieldValidation"), "{path}");
                    assert!(op["x-kubernetes-group-version-kind"].is_object(), "{path}");
                }
            }
        }
        let status = &d["paths"]["/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}/status"];
        assert_eq!(
            status["patch"]["operationId"],
            "patchAppsV1NamespacedDaemonSetStatus"
        );
        assert!(status["post"].is_null());
    }

    #[test]
    fn eviction_and_binding_operations() {
        let d = doc("api/v1");
        let ev = &d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"];
        assert_eq!(
            ev["x-kubernetes-group-version-kind"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"})
        );
        assert_eq!(ev["operationId"], "createCoreV1NamespacedPodEviction");
        assert_eq!(schema_with_gvk(&d, "policy", "v1", "Eviction").len(), 1);
        let binding = &d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/binding"]["post"];
        assert_eq!(
            binding["x-kubernetes-group-version-kind"]["kind"],
            "Binding"
        );
        assert_eq!(
            d["paths"]["/api/v1/nodes/{name}/status"]["put"]["x-kubernetes-action"],
            "put"
        );
        assert!(
            d["paths"]["/api/v1/namespaces"]["delete"].is_null(),
            "namespaces have no deletecollection"
        );
    }

    #[test]
    fn token_request_and_token_review_operations() {
        let d = doc("api/v1");
        let token =
            &d["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"];
        assert_eq!(
            token["operationId"],
            "createCoreV1NamespacedServiceAccountToken"
        );
        assert_eq!(
            token["x-kubernetes-group-version-kind"],
            json!({"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"})
        );
        assert_eq!(
            schema_with_gvk(&d, "authentication.k8s.io", "v1", "TokenRequest").len(),
            1
        );
        let d = doc("apis/authentication.k8s.io/v1");
        let paths: Vec<&String> = d["paths"].as_object().expect("paths").keys().collect();
        assert_eq!(
            paths,
            [
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                "/apis/authentication.k8s.io/v1/tokenreviews"
            ]
        );
        let review = &d["paths"]["/apis/authentication.k8s.io/v1/tokenreviews"];
        assert_eq!(
            review["post"]["operationId"],
            "createAuthenticationV1TokenReview"
        );
        assert!(review.get("get").is_none() && review.get("delete").is_none());
        assert_eq!(
            schema_with_gvk(&d, "authentication.k8s.io", "v1", "TokenReviewList").len(),
            0
        );
    }

    #[test]
    fn access_review_operations() {
        let d = doc("apis/authorization.k8s.io/v1");
        let paths: Vec<&String> = d["paths"].as_object().expect("paths").keys().collect();
        assert_eq!(
            paths,
            [
                "/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                "/apis/authorization.k8s.io/v1/subjectaccessreviews"
            ]
        );
        let local = &d["paths"]["/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews"];
        assert_eq!(
            local["post"]["operationId"],
            "createAuthorizationV1NamespacedLocalSubjectAccessReview"
        );
        assert_eq!(
            d["paths"]["/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"]["post"]["operationId"],
            "createAuthorizationV1SelfSubjectRulesReview"
        );
        for kind in [
            "LocalSubjectAccessReview",
            "SelfSubjectAccessReview",
            "SelfSubjectRulesReview",
            "SubjectAccessReview",
        ] {
            assert_eq!(
                schema_with_gvk(&d, "authorization.k8s.io", "v1", kind).len(),
                1,
                "{kind}"
            );
        }
        let d = doc("apis/authentication.k8s.io/v1");
        assert_eq!(
            schema_with_gvk(&d, "authentication.k8s.io", "v1", "SelfSubjectReview").len(),
            1
        );
    }

    #[test]
    fn daemonset_schema_explains_update_strategy() {
        let d = doc("apis/apps/v1");
        let found = schema_with_gvk(&d, "apps", "v1", "DaemonSet");
        let (name, ds) = found.first().copied().expect("DaemonSet schema");
        assert_eq!(name, "io.k8s.api.apps.v1.DaemonSet");
        assert!(
            ds.get("required").is_none(),
            "metadata is not required upstream"
        );
        let spec = &ds["properties"]["spec"];
        assert!(spec["description"].is_string());
        assert_eq!(
            spec["allOf"],
            json!([{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DaemonSetSpec"}])
        );
        let ds_spec = resolve(&d, "io.k8s.api.apps.v1.DaemonSetSpec");
        let strategy = &ds_spec["properties"]["updateStrategy"];
        assert!(
            strategy["description"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        let target = strategy["allOf"][0]["$ref"].as_str().unwrap_or_default();
        // explain prints the last dotted segment of the referenced name.
        assert_eq!(target.rsplit('.').next(), Some("DaemonSetUpdateStrategy"));
        let strategy_schema = resolve(&d, target);
        assert_eq!(strategy_schema["type"], "object");
        assert!(strategy_schema["description"].is_string());
        assert_eq!(
            strategy_schema["properties"]["type"]["enum"],
            json!(["OnDelete", "RollingUpdate"])
        );
        assert!(strategy_schema["properties"]["rollingUpdate"]["allOf"].is_array());
    }

    #[test]
    fn patch_extensions_present() {
        for path in ["api/v1", "apis/apps/v1"] {
            let d = doc(path);
            let containers = &d["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]
                ["containers"];
            assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
            assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
            assert_eq!(containers["type"], "array");
        }
        // Every table entry names a real property (catches typos against k8s-openapi).
        let core = doc("api/v1");
        let apps = doc("apis/apps/v1");
        let names = PATCH_META
            .iter()
            .map(|(s, p, ..)| (*s, *p))
            .chain(ENUMS.iter().map(|(s, p, _)| (*s, *p)));
        for (schema, prop) in names {
            let in_core = core["components"]["schemas"][schema]["properties"][prop].is_object();
            let in_apps = apps["components"]["schemas"][schema]["properties"][prop].is_object();
            assert!(in_core || in_apps, "{schema}.{prop}");
        }
    }

    #[test]
    fn list_schema_shape() {
        let d = doc("apis/apps/v1");
        let list = &d["components"]["schemas"]["io.k8s.api.apps.v1.DaemonSetList"];
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.DaemonSet"
        );
        assert_eq!(
            list["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "DaemonSetList", "version": "v1"}])
        );
        let list_op = &d["paths"]["/apis/apps/v1/daemonsets"]["get"];
        assert_eq!(
            list_op["operationId"],
            "listAppsV1DaemonSetForAllNamespaces"
        );
    }
}
