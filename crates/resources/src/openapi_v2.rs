//! OpenAPI v2 (Swagger 2.0): `/openapi/v2`, one document for every served group version, as
//! JSON and as gnostic's protobuf.
//!
//! Why v2 still matters: kubectl validates each object of a manifest before sending it. When
//! the v3 document of its group version has no PATCH operation for its kind (a kind pernode
//! does not serve, in a group version it may or may not serve), kubectl validates it on the
//! client against `/openapi/v2` (`GET` with `Accept:
//! application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, decoded as gnostic's
//! `openapi_v2.Document`). A kind missing there passes; the object then fails alone with
//! "resource mapping not found" and the rest of the file applies, as against Kubernetes. A
//! 404 (or a document kube-openapi cannot parse) instead aborts the whole file.
//!
//! The document is made from the same [`GvSpec`]s as the v3 ones (one source: the catalogue
//! and k8s-openapi's schemas), converted the way kube-apiserver's v2 builder differs from its
//! v3 one: refs under `#/definitions/`, a `$ref` with siblings written directly instead of
//! wrapped in a one-element `allOf`, int-or-string as `type: string, format: int-or-string`,
//! request bodies as `in: body` parameters, `consumes`/`produces` instead of media-type maps,
//! parameters' `type` inline. Definitions shared by several group versions are merged (their
//! `x-kubernetes-group-version-kind` lists joined). Built once, on first use, and kept.
//!
//! The HTTP side follows kube-openapi's handler: JSON for `application/json`, protobuf for
//! either protobuf media type, the first match in the sorted Accept clauses wins, 406 when
//! none matches; one ETag for both encodings.

mod gnostic;

use std::sync::{Arc, OnceLock};

use prost::Message;
use serde_json::{Map, Value, json};

use crate::catalog::View;
use crate::openapi::{GvSpec, SCHEMA_PREFIX, fnv1a64, gv_spec};
use crate::version::GIT_VERSION;

/// The protobuf media type kube-apiserver answers with.
pub const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

const V2_PREFIX: &str = "#/definitions/";

/// Accept subtypes served, in kube-openapi's order: JSON, the deprecated protobuf name
/// client-go still sends, the current one.
const SUBTYPES: &[(&str, Encoding)] = &[
    ("json", Encoding::Json),
    (
        "com.github.proto-openapi.spec.v2@v1.0+protobuf",
        Encoding::Protobuf,
    ),
    (
        "com.github.proto-openapi.spec.v2.v1.0+protobuf",
        Encoding::Protobuf,
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Json,
    Protobuf,
}

/// One `/openapi/v2` document in both encodings.
#[derive(Debug)]
pub struct V2Document {
    json: Vec<u8>,
    protobuf: Vec<u8>,
    /// Quoted, as the header carries it.
    etag: String,
}

impl V2Document {
    /// The document of every group version `view` serves.
    pub(crate) fn build(view: &View) -> V2Document {
        let doc = build(view);
        let protobuf = gnostic::document(&doc).encode_to_vec();
        // Value's Display is infallible and compact, unlike to_vec's Result.
        let json = doc.to_string().into_bytes();
        let etag = format!("\"{:016X}\"", fnv1a64(&json));
        V2Document {
            json,
            protobuf,
            etag,
        }
    }
}

/// The document of the built-ins: the same in every server, built once.
pub(crate) fn builtin_v2() -> Arc<V2Document> {
    builtin_static().clone()
}

fn builtin_static() -> &'static Arc<V2Document> {
    static DOC: OnceLock<Arc<V2Document>> = OnceLock::new();
    DOC.get_or_init(|| Arc::new(V2Document::build(&View::builtin())))
}

/// The body of `GET /openapi/v2` as JSON (built-ins).
pub fn openapi_v2_json() -> &'static [u8] {
    &builtin_static().json
}

/// The body of `GET /openapi/v2` as gnostic's `openapi_v2.Document` in protobuf (built-ins).
pub fn openapi_v2_protobuf() -> &'static [u8] {
    &builtin_static().protobuf
}

/// What `GET /openapi/v2` answers.
#[derive(Debug, Clone)]
pub struct OpenApiV2Body {
    pub content_type: &'static str,
    doc: Arc<V2Document>,
    encoding: Encoding,
}

impl OpenApiV2Body {
    /// The document in the negotiated encoding.
    pub fn body(&self) -> &[u8] {
        match self.encoding {
            Encoding::Json => &self.doc.json,
            Encoding::Protobuf => &self.doc.protobuf,
        }
    }

    /// The `ETag` header value (quoted); the same for both encodings, as upstream.
    pub fn etag(&self) -> &str {
        &self.doc.etag
    }
}

/// The representation of the built-ins' `/openapi/v2` an `Accept` header asks for
/// (kube-openapi's negotiation: goautoneg's clause order, the first clause matching a served
/// type wins; an empty header means `*/*`, i.e. JSON). `None`: 406 Not Acceptable.
pub fn openapi_v2_for(accept: &str) -> Option<OpenApiV2Body> {
    negotiate(builtin_v2(), accept)
}

pub(crate) fn negotiate(doc: Arc<V2Document>, accept: &str) -> Option<OpenApiV2Body> {
    let accept = if accept.trim().is_empty() {
        "*/*"
    } else {
        accept
    };
    for (ty, sub) in accept_clauses(accept) {
        for (served, encoding) in SUBTYPES {
            if (ty != "application" && ty != "*") || (sub != *served && sub != "*") {
                continue;
            }
            let content_type = match encoding {
                Encoding::Json => "application/json",
                Encoding::Protobuf => OPENAPI_V2_PROTOBUF,
            };
            return Some(OpenApiV2Body {
                content_type,
                doc,
                encoding: *encoding,
            });
        }
    }
    None
}

/// The media ranges of an Accept header, ordered as goautoneg's `ParseAccept` orders them:
/// higher q first, then concrete types before wildcards (a stable sort here).
fn accept_clauses(accept: &str) -> Vec<(&str, &str)> {
    let mut clauses: Vec<(f64, &str, &str)> = Vec::new();
    for part in accept.split(',') {
        let mut pieces = part.trim().split(';');
        let range = pieces.next().unwrap_or_default();
        let (ty, sub) = match range.split_once('/') {
            Some((t, s)) if !s.contains('/') => (t.trim(), s.trim()),
            None if range.trim() == "*" => ("*", "*"),
            _ => continue,
        };
        let q = pieces
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim() == "q")
            .map_or(1.0, |(_, v)| v.trim().parse().unwrap_or(0.0));
        clauses.push((q, ty, sub));
    }
    let rank = |&(q, ty, sub): &(f64, &str, &str)| (-q, ty == "*", sub == "*");
    clauses.sort_by(|a, b| {
        rank(a)
            .partial_cmp(&rank(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    clauses.into_iter().map(|(_, t, s)| (t, s)).collect()
}

// --- the document ------------------------------------------------------------------------

fn build(view: &View) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for (group, version) in view.group_versions() {
        let GvSpec {
            paths: gv_paths,
            schemas,
        } = gv_spec(view, group, version);
        for (name, schema) in schemas {
            let schema = v2_schema(schema);
            match definitions.get_mut(&name) {
                None => {
                    definitions.insert(name, schema);
                }
                Some(existing) => join_gvks(existing, &schema),
            }
        }
        for (path, item) in gv_paths {
            paths.insert(path, v2_path_item(&item));
        }
    }
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": GIT_VERSION },
        "paths": paths,
        "definitions": definitions,
    })
}

/// A definition several group versions carry (meta/v1's Status, DeleteOptions, ...) is the
/// same schema in each; upstream lists every GVK it stands for.
fn join_gvks(existing: &mut Value, other: &Value) {
    const GVK: &str = "x-kubernetes-group-version-kind";
    let Some(Value::Array(more)) = other.get(GVK) else {
        return;
    };
    let Some(obj) = existing.as_object_mut() else {
        return;
    };
    let list = obj.entry(GVK).or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        for gvk in more {
            if !list.contains(gvk) {
                list.push(gvk.clone());
            }
        }
    }
}

/// A v3 schema as the v2 builder writes it.
fn v2_schema(schema: Value) -> Value {
    let Value::Object(mut m) = schema else {
        return schema;
    };
    // `allOf: [{$ref}]` with siblings (description, default) is v3's way to give a $ref
    // siblings; v2 puts them beside the $ref.
    if !m.contains_key("$ref")
        && let Some(Value::Array(all_of)) = m.get("allOf")
        && let [Value::Object(only)] = all_of.as_slice()
        && only.len() == 1
        && let Some(Value::String(target)) = only.get("$ref")
    {
        let target = target.clone();
        m.remove("allOf");
        m.insert("$ref".into(), Value::String(target));
    }
    if let Some(Value::String(target)) = m.get_mut("$ref")
        && let Some(name) = target.strip_prefix(SCHEMA_PREFIX)
    {
        *target = format!("{V2_PREFIX}{name}");
    }
    // v3-only keywords.
    for key in ["nullable", "anyOf", "oneOf", "not"] {
        m.remove(key);
    }
    if m.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) && !m.contains_key("type") {
        m.remove("x-kubernetes-int-or-string");
        m.insert("type".into(), "string".into());
        m.insert("format".into(), "int-or-string".into());
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for p in props.values_mut() {
            *p = v2_schema(p.take());
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub @ Value::Object(_)) = m.get_mut(key) {
            *sub = v2_schema(sub.take());
        }
    }
    if let Some(Value::Array(all_of)) = m.get_mut("allOf") {
        for s in all_of.iter_mut() {
            *s = v2_schema(s.take());
        }
    }
    Value::Object(m)
}

/// A v3 non-body parameter: `schema.type` (and format) move beside the name.
fn v2_parameter(p: &Value) -> Value {
    let mut out = Map::new();
    for key in ["name", "in", "description", "required"] {
        if let Some(v) = p.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(Value::Object(schema)) = p.get("schema") {
        for (k, v) in schema {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn v2_parameters(v: &Value) -> Vec<Value> {
    v.get("parameters")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(v2_parameter).collect())
        .unwrap_or_default()
}

/// The media types and the (first) schema of a v3 `content` map.
fn content(v: &Value) -> (Vec<Value>, Option<Value>) {
    let Some(Value::Object(content)) = v.get("content") else {
        return (Vec::new(), None);
    };
    let types = content.keys().map(|k| Value::String(k.clone())).collect();
    let schema = content
        .values()
        .find_map(|m| m.get("schema"))
        .map(|s| v2_schema(s.clone()));
    (types, schema)
}

fn v2_path_item(item: &Value) -> Value {
    let mut out = Map::new();
    let Some(members) = item.as_object() else {
        return Value::Object(out);
    };
    for (key, v) in members {
        match key.as_str() {
            "parameters" => {
                out.insert(key.clone(), Value::Array(v2_parameters(item)));
            }
            "get" | "put" | "post" | "delete" | "options" | "head" | "patch" => {
                out.insert(key.clone(), v2_operation(v));
            }
            _ => {
                out.insert(key.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

fn v2_operation(op: &Value) -> Value {
    let mut out = Map::new();
    let mut parameters = Vec::new();
    let mut consumes = vec![Value::String("*/*".into())];
    if let Some(body) = op.get("requestBody") {
        let (types, schema) = content(body);
        if !types.is_empty() {
            consumes = types;
        }
        let mut p = json!({ "name": "body", "in": "body" });
        if body.get("required") == Some(&Value::Bool(true)) {
            p["required"] = true.into();
        }
        if let Some(schema) = schema {
            p["schema"] = schema;
        }
        parameters.push(p);
    }
    parameters.extend(v2_parameters(op));
    let mut produces: Vec<Value> = Vec::new();
    let mut responses = Map::new();
    if let Some(Value::Object(rs)) = op.get("responses") {
        for (code, r) in rs {
            let (types, schema) = content(r);
            for t in types {
                if !produces.contains(&t) {
                    produces.push(t);
                }
            }
            let mut response = Map::new();
            if let Some(d) = r.get("description") {
                response.insert("description".into(), d.clone());
            }
            if let Some(schema) = schema {
                response.insert("schema".into(), schema);
            }
            responses.insert(code.clone(), Value::Object(response));
        }
    }
    for (key, v) in op.as_object().into_iter().flatten() {
        match key.as_str() {
            "requestBody" | "parameters" | "responses" => {}
            _ => {
                out.insert(key.clone(), v.clone());
            }
        }
    }
    out.insert("consumes".into(), Value::Array(consumes));
    out.insert("produces".into(), Value::Array(produces));
    if !parameters.is_empty() {
        out.insert("parameters".into(), Value::Array(parameters));
    }
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::gnostic::{
        Document, Schema, non_body_parameter, parameter, parameters_item, schema_item,
    };
    use super::*;
    use crate::catalog::RESOURCES;

    fn decoded() -> Document {
        Document::decode(openapi_v2_protobuf()).expect("the protobuf decodes")
    }

    fn json_doc() -> Value {
        serde_json::from_slice(openapi_v2_json()).expect("the JSON parses")
    }

    fn definition<'a>(doc: &'a Document, name: &str) -> Option<&'a Schema> {
        doc.definitions
            .as_ref()?
            .additional_properties
            .iter()
            .find(|d| d.name == name)?
            .value
            .as_ref()
    }

    fn extension<'a>(exts: &'a [super::gnostic::NamedAny], name: &str) -> Option<&'a str> {
        exts.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.as_ref())
            .map(|a| a.yaml.as_str())
    }

    fn query_params(op: &super::gnostic::Operation) -> Vec<String> {
        op.parameters
            .iter()
            .filter_map(|p| match &p.oneof {
                Some(parameters_item::Oneof::Parameter(p)) => match &p.oneof {
                    Some(parameter::Oneof::NonBodyParameter(nb)) => match &nb.oneof {
                        Some(non_body_parameter::Oneof::QueryParameterSubSchema(q)) => {
                            Some(q.name.clone())
                        }
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    #[test]
    fn protobuf_decodes_to_daemonset_definition_and_patch_path() {
        let doc = decoded();
        assert_eq!(doc.swagger, "2.0");
        let ds = definition(&doc, "io.k8s.api.apps.v1.DaemonSet").expect("DaemonSet");
        let gvk = extension(&ds.vendor_extension, "x-kubernetes-group-version-kind")
            .expect("GVK extension");
        let gvk: Value = serde_json::from_str(gvk).unwrap_or_default();
        assert_eq!(
            gvk,
            json!([{"group": "apps", "kind": "DaemonSet", "version": "v1"}])
        );
        assert_eq!(
            ds.r#type.as_ref().map(|t| t.value.clone()),
            Some(vec!["object".to_string()])
        );
        // spec is a $ref with its description beside it, no allOf, no type.
        let props = &ds
            .properties
            .as_ref()
            .expect("properties")
            .additional_properties;
        let spec = props
            .iter()
            .find(|p| p.name == "spec")
            .and_then(|p| p.value.as_ref())
            .expect("spec");
        assert_eq!(spec.ref_, "#/definitions/io.k8s.api.apps.v1.DaemonSetSpec");
        assert!(spec.all_of.is_empty() && spec.r#type.is_none());
        assert!(!spec.description.is_empty());

        let path = "/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}";
        let item = doc
            .paths
            .as_ref()
            .and_then(|p| p.path.iter().find(|p| p.name == path))
            .and_then(|p| p.value.as_ref())
            .expect("DaemonSet item path");
        let patch = item.patch.as_ref().expect("PATCH operation");
        let gvk = extension(&patch.vendor_extension, "x-kubernetes-group-version-kind")
            .expect("operation GVK");
        // client-go's query-param verifier reads it as YAML into map[string]string.
        assert_eq!(
            serde_json::from_str::<Value>(gvk).unwrap_or_default(),
            json!({"group": "apps", "kind": "DaemonSet", "version": "v1"})
        );
        assert!(query_params(patch).contains(&"fieldValidation".to_string()));
        assert_eq!(patch.operation_id, "patchAppsV1NamespacedDaemonSet");
        assert!(
            patch
                .consumes
                .contains(&"application/strategic-merge-patch+json".to_string())
        );
        // The body parameter refers to meta/v1 Patch.
        let body = patch.parameters.iter().find_map(|p| match &p.oneof {
            Some(parameters_item::Oneof::Parameter(p)) => match &p.oneof {
                Some(parameter::Oneof::BodyParameter(b)) => Some(b),
                _ => None,
            },
            _ => None,
        });
        assert_eq!(
            body.and_then(|b| b.schema.as_ref())
                .map(|s| s.ref_.as_str()),
            Some("#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch")
        );
        let ok = patch
            .responses
            .as_ref()
            .and_then(|r| r.response_code.iter().find(|r| r.name == "200"))
            .and_then(|r| r.value.as_ref())
            .and_then(|v| match &v.oneof {
                Some(super::gnostic::response_value::Oneof::Response(r)) => r.schema.as_ref(),
                _ => None,
            })
            .and_then(|s| s.oneof.as_ref())
            .map(|schema_item::Oneof::Schema(s)| s.ref_.as_str());
        assert_eq!(ok, Some("#/definitions/io.k8s.api.apps.v1.DaemonSet"));
        // Path-level parameters are path parameters.
        assert_eq!(item.parameters.len(), 3);
    }

    #[test]
    fn protobuf_is_the_json_document() {
        assert_eq!(
            gnostic::document(&json_doc()).encode_to_vec(),
            openapi_v2_protobuf()
        );
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

    /// The rules kube-openapi's `proto.NewOpenAPIData` enforces on every definition (any
    /// violation makes kubectl refuse the whole document).
    fn check_parsable(s: &Value, path: &str, defs: &Map<String, Value>) {
        let Some(m) = s.as_object() else {
            panic!("{path}: not an object");
        };
        assert!(m.get("allOf").is_none(), "{path}: allOf");
        if let Some(Value::String(r)) = m.get("$ref") {
            let name = r.strip_prefix(V2_PREFIX).expect("a #/definitions/ ref");
            assert!(defs.contains_key(name), "{path}: dangling {r}");
            assert!(m.get("type").is_none(), "{path}: $ref with a type");
            assert!(
                m.get("properties").is_none(),
                "{path}: $ref with properties"
            );
            return;
        }
        match m.get("type") {
            None => {}
            Some(Value::String(t)) => assert!(
                ["object", "array", "string", "integer", "number", "boolean"].contains(&t.as_str()),
                "{path}: type {t}"
            ),
            Some(other) => panic!("{path}: type {other}"),
        }
        if m.get("type") == Some(&json!("array")) {
            let items = m.get("items").expect("array items");
            assert!(items.is_object(), "{path}: one items schema");
            check_parsable(items, &format!("{path}[]"), defs);
        }
        if let Some(sub @ Value::Object(_)) = m.get("additionalProperties") {
            check_parsable(sub, &format!("{path}{{}}"), defs);
        }
        for (name, p) in m
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            check_parsable(p, &format!("{path}.{name}"), defs);
        }
    }

    #[test]
    fn every_definition_parses_as_kube_openapi_requires() {
        let d = json_doc();
        let defs = d["definitions"].as_object().cloned().unwrap_or_default();
        assert!(defs.len() > 100);
        for (name, s) in &defs {
            check_parsable(s, name, &defs);
        }
        let mut refs = Vec::new();
        collect_refs(&d, &mut refs);
        for r in refs {
            assert!(r.starts_with(V2_PREFIX), "{r}");
        }
        let int_or_string = &defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
        assert_eq!(int_or_string["type"], "string");
        assert_eq!(int_or_string["format"], "int-or-string");
    }

    #[test]
    fn every_served_kind_has_a_definition_and_paths() {
        let d = json_doc();
        let tagged = |kind: &str, group: &str| {
            d["definitions"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(_, s)| {
                    s["x-kubernetes-group-version-kind"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|g| g["kind"] == kind && g["group"] == group))
                })
                .count()
        };
        for r in RESOURCES {
            assert_eq!(tagged(r.kind, r.group), 1, "{}", r.kind);
            assert_eq!(
                tagged(&format!("{}List", r.kind), r.group),
                usize::from(r.has_verb("list")),
                "{}List",
                r.kind
            );
            let prefix = if r.group.is_empty() {
                format!("/api/{}", r.version)
            } else {
                format!("/apis/{}/{}", r.group, r.version)
            };
            let ns = if r.namespaced {
                "/namespaces/{namespace}"
            } else {
                ""
            };
            if r.verbs == crate::CREATE_ONLY {
                let create = &d["paths"][format!("{prefix}{ns}/{}", r.plural)]["post"];
                assert_eq!(create["x-kubernetes-action"], "post", "{}", r.kind);
                continue;
            }
            let item = &d["paths"][format!("{prefix}{ns}/{}/{{name}}", r.plural)];
            assert_eq!(item["get"]["x-kubernetes-action"], "get", "{}", r.kind);
            if r.has_verb("patch") {
                let patch = &item["patch"];
                assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], r.kind);
                assert!(
                    patch["parameters"].as_array().is_some_and(|ps| ps
                        .iter()
                        .any(|p| p["name"] == "fieldValidation"
                            && p["in"] == "query"
                            && p["type"] == "string")),
                    "{}",
                    r.kind
                );
            }
        }
        // meta/v1 Status appears once, tagged once though every group version carries it.
        let status = &d["definitions"]["io.k8s.apimachinery.pkg.apis.meta.v1.Status"];
        assert_eq!(
            status["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Status", "version": "v1"}])
        );
        let create = &d["paths"]["/api/v1/namespaces"]["post"];
        assert_eq!(create["consumes"], json!(["*/*"]));
        assert_eq!(create["parameters"][0]["in"], "body");
        assert_eq!(create["parameters"][0]["required"], true);
        assert_eq!(
            create["responses"]["201"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.Namespace"
        );
        assert_eq!(
            d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["get"]["produces"],
            json!(["*/*"])
        );
    }

    #[test]
    fn accept_negotiation_follows_kube_openapi() {
        let pb = |accept: &str| openapi_v2_for(accept).map(|b| b.content_type);
        // client-go's OpenAPISchema asks for the deprecated name and gets the current one.
        assert_eq!(
            pb("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            Some(OPENAPI_V2_PROTOBUF)
        );
        assert_eq!(pb(OPENAPI_V2_PROTOBUF), Some(OPENAPI_V2_PROTOBUF));
        assert_eq!(pb("application/json"), Some("application/json"));
        assert_eq!(pb(""), Some("application/json"));
        assert_eq!(pb("*/*"), Some("application/json"));
        assert_eq!(pb("application/*"), Some("application/json"));
        assert_eq!(
            pb(
                "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            ),
            Some(OPENAPI_V2_PROTOBUF)
        );
        assert_eq!(pb("text/html, */*;q=0.1"), Some("application/json"));
        assert_eq!(pb("application/yaml"), None);
        assert_eq!(pb("text/plain"), None);
        let json = openapi_v2_for("application/json").expect("json");
        let proto = openapi_v2_for(OPENAPI_V2_PROTOBUF).expect("protobuf");
        assert_eq!(json.body(), openapi_v2_json());
        assert_eq!(proto.body(), openapi_v2_protobuf());
        assert_eq!(json.etag(), proto.etag());
        assert!(json.etag().starts_with('"') && json.etag().ends_with('"'));
    }
}
