//! The hostile-request corpus (issue 22): a server seeded with one object of each kind covered,
//! then a table generated in code of kinds × verbs × malformations (wrong JSON types, non-JSON,
//! bad YAML, wrong apiVersion/kind, path/body name and namespace mismatches, bad query
//! parameters, unknown content types, patch types on the wrong verb, oversize bodies, deep
//! nesting, huge numbers, invalid UTF-8, null bytes). Each request must get upstream's code (or,
//! where upstream's exact code is not pinned here, some 4xx) with a Status body carrying that
//! code, and leave every key of the store and its bytes as they were.
//!
//! `bad_input.rs` keeps the hand-written cases with upstream's exact messages; `dry_run.rs` the
//! dry runs that succeed. This file is breadth: every kind, every verb.

mod support;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use pernode_apiserver::ApiServer;
use serde_json::{Value, json};
use tower::ServiceExt;

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// One served kind the corpus covers: where it lives, a valid object named `h1`, and a member
/// whose value of the wrong JSON type the kind's decoding must refuse.
struct Kind {
    /// The collection's path (namespaced kinds in `default`).
    collection: &'static str,
    namespaced: bool,
    /// A custom resource: decoded as unstructured, so type confusion is the schema's 422 rather
    /// than the typed decoder's 400; only "some 4xx" is asserted for those.
    custom: bool,
    /// Whether the kind has a `status` the typed decoder reads.
    has_status: bool,
    object: Value,
    /// A member of the object and a value of the wrong JSON type for it.
    confused: (&'static str, Value),
}

impl Kind {
    fn item(&self) -> String {
        let name = self.object["metadata"]["name"].as_str().unwrap_or("h1");
        format!("{}/{name}", self.collection)
    }

    fn with(&self, member: &str, value: Value) -> Value {
        let mut object = self.object.clone();
        object[member] = value;
        object
    }

    fn named(&self, name: &str) -> Value {
        let mut object = self.object.clone();
        object["metadata"]["name"] = json!(name);
        object
    }

    /// `code` for a built-in kind; "some 4xx" for a custom one.
    fn typed(&self, code: u16) -> Option<u16> {
        (!self.custom).then_some(code)
    }
}

fn kinds() -> Vec<Kind> {
    let rules = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
    let subjects = json!([{"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"}]);
    let kind = |collection, namespaced, has_status, object, confused| Kind {
        collection,
        namespaced,
        custom: false,
        has_status,
        object,
        confused,
    };
    vec![
        kind(
            "/api/v1/namespaces/default/pods",
            true,
            true,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "h1"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
            ("spec", json!("x")),
        ),
        kind(
            "/api/v1/nodes",
            false,
            true,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "h1"}}),
            ("spec", json!(5)),
        ),
        kind(
            "/apis/apps/v1/namespaces/default/daemonsets",
            true,
            true,
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "h1"},
                "spec": {"selector": {"matchLabels": {"app": "h1"}},
                    "template": {"metadata": {"labels": {"app": "h1"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
            ("spec", json!([1])),
        ),
        kind(
            "/api/v1/namespaces/default/configmaps",
            true,
            false,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h1"},
                "data": {"a": "b"}}),
            ("data", json!(5)),
        ),
        kind(
            "/api/v1/namespaces/default/secrets",
            true,
            false,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "h1"},
                "data": {"a": "Yg=="}}),
            ("data", json!("x")),
        ),
        kind(
            "/api/v1/namespaces/default/services",
            true,
            true,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "h1"},
                "spec": {"selector": {"app": "h1"}, "ports": [{"port": 80}]}}),
            ("spec", json!(true)),
        ),
        kind(
            "/api/v1/namespaces",
            false,
            true,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "h1"}}),
            ("spec", json!("x")),
        ),
        kind(
            "/api/v1/namespaces/default/serviceaccounts",
            true,
            false,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "h1"}}),
            ("secrets", json!("x")),
        ),
        kind(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            true,
            false,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "h1"}, "rules": rules}),
            ("rules", json!({})),
        ),
        kind(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            true,
            false,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "h1"}, "subjects": subjects,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "h1"}}),
            ("subjects", json!(5)),
        ),
        kind(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            false,
            false,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "h1"}, "rules": rules}),
            ("rules", json!("x")),
        ),
        kind(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            false,
            false,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "h1"}, "subjects": subjects,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "h1"}}),
            ("roleRef", json!([])),
        ),
        kind(
            "/apis/coordination.k8s.io/v1/namespaces/default/leases",
            true,
            false,
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "h1"}, "spec": {"holderIdentity": "x"}}),
            ("spec", json!(7)),
        ),
        kind(
            "/api/v1/namespaces/default/events",
            true,
            false,
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "h1"},
                "involvedObject": {"kind": "Pod", "name": "h1", "namespace": "default"},
                "reason": "Seen", "message": "m", "type": "Normal",
                "source": {"component": "test"}}),
            ("involvedObject", json!("x")),
        ),
        kind(
            "/apis/scheduling.k8s.io/v1/priorityclasses",
            false,
            false,
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "h1"}, "value": 1000}),
            ("value", json!("high")),
        ),
        kind(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            false,
            true,
            crd(),
            ("spec", json!(5)),
        ),
        Kind {
            collection: "/apis/example.com/v1/namespaces/default/gizmos",
            namespaced: true,
            custom: true,
            has_status: false,
            object: json!({"apiVersion": "example.com/v1", "kind": "Gizmo",
                "metadata": {"name": "h1"}, "spec": {"size": 1}}),
            confused: ("spec", json!("x")),
        },
    ]
}

/// The CRD the corpus seeds (a CRD's name must be `<plural>.<group>`, so not `h1`).
fn crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo", "listKind": "GizmoList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}})
}

/// One request of the corpus and what it must get.
struct Case {
    label: String,
    method: Method,
    path: String,
    content_type: &'static str,
    accept: Option<&'static str>,
    body: Vec<u8>,
    /// Upstream's code, or `None`: some 4xx.
    expect: Option<u16>,
}

fn case(
    label: impl Into<String>,
    method: Method,
    path: impl Into<String>,
    content_type: &'static str,
    body: impl Into<Vec<u8>>,
    expect: Option<u16>,
) -> Case {
    Case {
        label: label.into(),
        method,
        path: path.into(),
        content_type,
        accept: None,
        body: body.into(),
        expect,
    }
}

fn bytes(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// A JSON object nested past every decoder's depth limit (Go's 10,000; serde_json's 128).
fn deeply_nested(object: &Value) -> Vec<u8> {
    let text = object.to_string();
    let inner = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    format!(r#"{{"deep":{inner},{}"#, &text[1..]).into_bytes()
}

/// The object with `metadata.name` holding bytes that are not UTF-8.
fn invalid_utf8_name(object: &Value) -> Vec<u8> {
    let marker = "@@NAME@@";
    let mut named = object.clone();
    named["metadata"]["name"] = json!(marker);
    let text = named.to_string();
    let mut out = Vec::new();
    let (before, after) = text.split_once(marker).unwrap_or((&text, ""));
    out.extend_from_slice(before.as_bytes());
    out.extend_from_slice(b"h\xff\xfe1");
    out.extend_from_slice(after.as_bytes());
    out
}

fn oversize(object: &Value) -> Vec<u8> {
    let mut big = object.clone();
    big["metadata"]["annotations"] = json!({"a": "x".repeat(4 * 1024 * 1024)});
    bytes(&big)
}

/// The creates of one kind: every malformation of a POST to the collection.
fn creates(kind: &Kind, out: &mut Vec<Case>) {
    let path = kind.collection;
    let post = |label: &str, content_type, body: Vec<u8>, expect| {
        case(
            format!("create {label}"),
            Method::POST,
            path,
            content_type,
            body,
            expect,
        )
    };
    let fresh = kind.named("h2");
    let (member, wrong) = &kind.confused;
    out.extend([
        post("non-JSON", JSON, b"{not json".to_vec(), Some(400)),
        post("bad YAML", YAML, b"a: [unclosed".to_vec(), Some(400)),
        post("a JSON array", JSON, b"[1,2]".to_vec(), Some(400)),
        post("a JSON string", JSON, b"\"pod\"".to_vec(), Some(400)),
        post("an empty body", JSON, Vec::new(), None),
        post(
            "metadata a string",
            JSON,
            bytes(&kind.with("metadata", json!("x"))),
            kind.typed(400),
        ),
        post(
            "metadata.name a number",
            JSON,
            bytes(&kind.with("metadata", json!({"name": 5}))),
            kind.typed(400),
        ),
        post(
            "labels of numbers",
            JSON,
            bytes(&kind.with("metadata", json!({"name": "h2", "labels": {"a": 5}}))),
            kind.typed(400),
        ),
        post(
            &format!("{member} of the wrong type"),
            JSON,
            bytes(&{
                let mut object = fresh.clone();
                object[*member] = wrong.clone();
                object
            }),
            kind.typed(400),
        ),
        post(
            "YAML with the wrong type",
            YAML,
            format!("metadata: {{name: h2}}\n{member}: {wrong}\n").into_bytes(),
            kind.typed(400),
        ),
        post(
            "a Kind of another kind",
            JSON,
            bytes(&{
                let mut object = fresh.clone();
                object["kind"] = json!("Bogus");
                object
            }),
            kind.typed(400),
        ),
        post(
            "an unserved apiVersion",
            JSON,
            bytes(&{
                let mut object = fresh.clone();
                object["apiVersion"] = json!("bogus.example/v9");
                object
            }),
            kind.typed(400),
        ),
        post(
            "a List instead of an object",
            JSON,
            bytes(&json!({"apiVersion": fresh["apiVersion"], "kind": "List", "items": 5})),
            None,
        ),
        post("text/plain", "text/plain", bytes(&fresh), Some(415)),
        post(
            "an unknown content type",
            "application/x-bogus",
            bytes(&fresh),
            Some(415),
        ),
        post("a merge patch type", MERGE, bytes(&fresh), Some(415)),
        post("an oversize body", JSON, oversize(&fresh), Some(413)),
        post("deep nesting", JSON, deeply_nested(&fresh), None),
        post(
            "a huge number",
            JSON,
            bytes(&kind.with("metadata", json!({"name": "h2", "generation": 1}))).replace_number(),
            None,
        ),
        post("invalid UTF-8", JSON, invalid_utf8_name(&fresh), None),
        // Not in the name: RBAC names are only path segments upstream, which may hold one.
        post(
            "a null byte in a label",
            JSON,
            bytes(&{
                let mut object = fresh.clone();
                object["metadata"]["labels"] = json!({"a": "b\u{0}c"});
                object
            }),
            Some(422),
        ),
        case(
            "create fieldValidation=Bogus",
            Method::POST,
            format!("{path}?fieldValidation=Bogus"),
            JSON,
            bytes(&fresh),
            Some(422),
        ),
        case(
            "create dryRun=all",
            Method::POST,
            format!("{path}?dryRun=all"),
            JSON,
            bytes(&fresh),
            Some(422),
        ),
        case(
            "create with an existing name",
            Method::POST,
            path,
            JSON,
            bytes(&kind.object),
            Some(409),
        ),
    ]);
    if kind.has_status {
        out.push(post(
            "status of the wrong type",
            JSON,
            bytes(&{
                let mut object = fresh.clone();
                object["status"] = json!("x");
                object
            }),
            kind.typed(400),
        ));
    }
    if kind.namespaced {
        out.push(post(
            "a namespace other than the path's",
            JSON,
            bytes(&{
                let mut object = fresh.clone();
                object["metadata"]["namespace"] = json!("kube-system");
                object
            }),
            Some(400),
        ));
    }
}

/// Replaces `"generation":1` with a number no integer type holds.
trait ReplaceNumber {
    fn replace_number(self) -> Vec<u8>;
}

impl ReplaceNumber for Vec<u8> {
    fn replace_number(self) -> Vec<u8> {
        String::from_utf8_lossy(&self)
            .replace("\"generation\":1", "\"generation\":1e400")
            .into_bytes()
    }
}

/// The updates of one kind: every malformation of a PUT to its object.
fn updates(kind: &Kind, out: &mut Vec<Case>) {
    let item = kind.item();
    let put = |label: &str, query: &str, content_type, body: Vec<u8>, expect| {
        case(
            format!("update {label}"),
            Method::PUT,
            format!("{item}{query}"),
            content_type,
            body,
            expect,
        )
    };
    let (member, wrong) = &kind.confused;
    out.extend([
        put("non-JSON", "", JSON, b"{oops".to_vec(), Some(400)),
        put("bad YAML", "", YAML, b"metadata: [".to_vec(), Some(400)),
        put("a JSON number", "", JSON, b"42".to_vec(), Some(400)),
        put(
            "metadata a string",
            "",
            JSON,
            bytes(&kind.with("metadata", json!("x"))),
            kind.typed(400),
        ),
        put(
            &format!("{member} of the wrong type"),
            "",
            JSON,
            bytes(&kind.with(member, wrong.clone())),
            kind.typed(400),
        ),
        put(
            "a name other than the path's",
            "",
            JSON,
            bytes(&kind.named("h2")),
            Some(400),
        ),
        put(
            "a Kind of another kind",
            "",
            JSON,
            bytes(&kind.with("kind", json!("Bogus"))),
            kind.typed(400),
        ),
        put(
            "an unparsable resourceVersion",
            "",
            JSON,
            bytes(&{
                let mut object = kind.object.clone();
                object["metadata"]["resourceVersion"] = json!("abc");
                object
            }),
            None,
        ),
        put(
            "a stale resourceVersion",
            "",
            JSON,
            bytes(&{
                let mut object = kind.object.clone();
                object["metadata"]["resourceVersion"] = json!("1");
                object["metadata"]["labels"] = json!({"changed": "yes"});
                object
            }),
            Some(409),
        ),
        put(
            "text/plain",
            "",
            "text/plain",
            bytes(&kind.object),
            Some(415),
        ),
        put(
            "a merge patch type",
            "",
            MERGE,
            bytes(&kind.object),
            Some(415),
        ),
        put(
            "a JSON patch type",
            "",
            JSON_PATCH,
            b"[]".to_vec(),
            Some(415),
        ),
        put(
            "fieldValidation=Bogus",
            "?fieldValidation=Bogus",
            JSON,
            bytes(&kind.object),
            Some(422),
        ),
        put(
            "dryRun=all",
            "?dryRun=all",
            JSON,
            bytes(&kind.object),
            Some(422),
        ),
        put(
            "an oversize body",
            "",
            JSON,
            oversize(&kind.object),
            Some(413),
        ),
        put("deep nesting", "", JSON, deeply_nested(&kind.object), None),
        put(
            "invalid UTF-8",
            "",
            JSON,
            invalid_utf8_name(&kind.object),
            None,
        ),
    ]);
    if kind.namespaced {
        out.push(put(
            "a namespace other than the path's",
            "",
            JSON,
            bytes(&{
                let mut object = kind.object.clone();
                object["metadata"]["namespace"] = json!("kube-system");
                object
            }),
            Some(400),
        ));
    }
}

/// The patches of one kind: every malformation of a PATCH to its object.
fn patches(kind: &Kind, out: &mut Vec<Case>) {
    let item = kind.item();
    let patch = |label: &str, query: &str, content_type, body: &[u8], expect| {
        case(
            format!("patch {label}"),
            Method::PATCH,
            format!("{item}{query}"),
            content_type,
            body.to_vec(),
            expect,
        )
    };
    let (member, wrong) = &kind.confused;
    let confused = bytes(&json!({ *member: wrong }));
    let strategic = if kind.custom { None } else { Some(400) };
    out.extend([
        patch("merge non-JSON", "", MERGE, b"{oops", Some(400)),
        patch(
            "strategic non-JSON",
            "",
            STRATEGIC,
            b"{oops",
            if kind.custom { Some(415) } else { strategic },
        ),
        patch("JSON patch non-JSON", "", JSON_PATCH, b"[{", Some(400)),
        patch("JSON patch an object", "", JSON_PATCH, b"{}", None),
        patch(
            "JSON patch removing a missing member",
            "",
            JSON_PATCH,
            br#"[{"op":"remove","path":"/nope/deeper"}]"#,
            Some(422),
        ),
        patch(
            "JSON patch a bogus op",
            "",
            JSON_PATCH,
            br#"[{"op":"bogus","path":"/a"}]"#,
            None,
        ),
        patch(
            "merge metadata a string",
            "",
            MERGE,
            br#"{"metadata":"x"}"#,
            None,
        ),
        patch(
            &format!("merge {member} of the wrong type"),
            "",
            MERGE,
            &confused,
            None,
        ),
        patch(
            "merge renaming",
            "",
            MERGE,
            br#"{"metadata":{"name":"h2"}}"#,
            None,
        ),
        patch(
            "merge a huge number",
            "",
            MERGE,
            br#"{"metadata":{"generation":1e400}}"#,
            None,
        ),
        patch("merge a JSON array", "", MERGE, b"[1]", None),
        patch("application/json", "", JSON, b"{}", Some(415)),
        patch("text/plain", "", "text/plain", b"{}", Some(415)),
        patch(
            "an unknown patch type",
            "",
            "application/x-bogus-patch",
            b"{}",
            Some(415),
        ),
        patch(
            "apply without fieldManager",
            "",
            APPLY,
            &bytes(&kind.object),
            None,
        ),
        patch(
            "apply of non-YAML",
            "?fieldManager=m",
            APPLY,
            b"metadata: [",
            Some(400),
        ),
        patch(
            "fieldValidation=Bogus",
            "?fieldValidation=Bogus",
            MERGE,
            b"{}",
            Some(422),
        ),
        patch("dryRun=all", "?dryRun=all", MERGE, b"{}", Some(422)),
        patch(
            "an oversize body",
            "",
            MERGE,
            &oversize(&json!({"metadata": {}})),
            Some(413),
        ),
        patch(
            "deep nesting",
            "",
            MERGE,
            &deeply_nested(&json!({"metadata": {}})),
            None,
        ),
        patch(
            "invalid UTF-8",
            "",
            MERGE,
            b"{\"metadata\":{\"labels\":{\"a\":\"\xff\"}}}",
            None,
        ),
    ]);
}

/// The deletes of one kind: bad options in the query and the body.
fn deletes(kind: &Kind, out: &mut Vec<Case>) {
    let item = kind.item();
    let delete = |label: &str, query: &str, body: &[u8], expect| {
        case(
            format!("delete {label}"),
            Method::DELETE,
            format!("{item}{query}"),
            JSON,
            body.to_vec(),
            expect,
        )
    };
    out.extend([
        delete("gracePeriodSeconds=x", "?gracePeriodSeconds=x", b"", Some(400)),
        delete("propagationPolicy=Bogus", "?propagationPolicy=Bogus", b"", Some(422)),
        delete("dryRun=all", "?dryRun=all", b"", Some(422)),
        delete("a non-JSON body", "", b"{oops", Some(400)),
        delete("a body of another kind", "", br#"{"kind":"Pod","apiVersion":"v1"}"#, None),
        delete(
            "gracePeriodSeconds a string in the body",
            "",
            br#"{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":"x"}"#,
            Some(400),
        ),
        delete(
            "propagationPolicy Bogus in the body",
            "",
            br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Bogus"}"#,
            Some(422),
        ),
        delete(
            "a UID precondition that fails",
            "",
            br#"{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"nope"}}"#,
            Some(409),
        ),
        delete(
            "a resourceVersion precondition that fails",
            "",
            br#"{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"resourceVersion":"1"}}"#,
            Some(409),
        ),
    ]);
    // Namespaces have no deletecollection route: the method is refused before the selector
    // is read.
    let no_delete_collection = kind.collection == "/api/v1/namespaces";
    out.push(case(
        "delete collection labelSelector unparsable",
        Method::DELETE,
        format!("{}?labelSelector=a%20in%20(b", kind.collection),
        JSON,
        Vec::new(),
        Some(if no_delete_collection { 405 } else { 400 }),
    ));
}

/// The reads of one kind: bad list, get and watch parameters, and verbs no route has.
fn reads(kind: &Kind, out: &mut Vec<Case>) {
    let collection = kind.collection;
    let item = kind.item();
    let get = |label: &str, path: String, expect| {
        case(
            format!("read {label}"),
            Method::GET,
            path,
            JSON,
            Vec::new(),
            expect,
        )
    };
    out.extend([
        get("limit=abc", format!("{collection}?limit=abc"), Some(400)),
        get(
            "resourceVersion=abc",
            format!("{collection}?resourceVersion=abc"),
            None,
        ),
        get(
            "resourceVersionMatch=Bogus",
            format!("{collection}?resourceVersion=1&resourceVersionMatch=Bogus"),
            Some(422),
        ),
        get(
            "resourceVersionMatch without resourceVersion",
            format!("{collection}?resourceVersionMatch=Exact"),
            Some(422),
        ),
        get(
            "labelSelector unparsable",
            format!("{collection}?labelSelector=a%20in%20(b"),
            Some(400),
        ),
        get(
            "fieldSelector on an unknown field",
            format!("{collection}?fieldSelector=bogus.field%3Dx"),
            Some(400),
        ),
        get(
            "watch timeoutSeconds=soon",
            format!("{collection}?watch=true&timeoutSeconds=soon"),
            Some(400),
        ),
        get(
            "continue=garbage",
            format!("{collection}?continue=garbage"),
            None,
        ),
        get(
            "an item resourceVersion=abc",
            format!("{item}?resourceVersion=abc"),
            None,
        ),
        get("a missing item", format!("{collection}/absent"), Some(404)),
    ]);
    out.push(Case {
        accept: Some("application/x-bogus"),
        ..get("an unknown Accept", item.clone(), Some(406))
    });
    out.extend([
        case(
            "PUT on the collection",
            Method::PUT,
            collection,
            JSON,
            bytes(&kind.object),
            Some(405),
        ),
        case(
            "PATCH on the collection",
            Method::PATCH,
            collection,
            MERGE,
            b"{}".to_vec(),
            Some(405),
        ),
        case(
            "POST on an item",
            Method::POST,
            item.as_str(),
            JSON,
            bytes(&kind.object),
            Some(405),
        ),
    ]);
}

fn corpus() -> Vec<Case> {
    let mut out = Vec::new();
    for kind in kinds() {
        let start = out.len();
        creates(&kind, &mut out);
        updates(&kind, &mut out);
        patches(&kind, &mut out);
        deletes(&kind, &mut out);
        reads(&kind, &mut out);
        for case in &mut out[start..] {
            case.label = format!("{}: {}", kind.collection, case.label);
        }
    }
    out
}

/// Every key of the store with its bytes, and the store's version.
fn dump(server: &ApiServer) -> (u64, Vec<(String, Vec<u8>)>) {
    let store = server.store();
    let (_, entries) = store.list("", |_| true);
    (
        store.current_rv(),
        entries
            .iter()
            .map(|e| (e.key.to_string(), e.json.to_vec()))
            .collect(),
    )
}

async fn send(router: &Router, case: &Case) -> (StatusCode, Value, Vec<u8>) {
    let mut request = Request::builder()
        .method(case.method.clone())
        .uri(&case.path)
        .header("content-type", case.content_type);
    if let Some(accept) = case.accept {
        request = request.header("accept", accept);
    }
    let request = request
        .body(Body::from(case.body.clone()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        bytes,
    )
}

/// A server holding one object named `h1` of every kind in [`kinds`] (the CRD under its own
/// name), and nothing in flight.
async fn seeded() -> (ApiServer, Router) {
    let server = support::server_with_accounts().await;
    let router = server.router();
    let mut kinds = kinds();
    // The CRD first, so that its objects are served; then the rest.
    kinds.sort_by_key(|k| !k.collection.ends_with("customresourcedefinitions"));
    for kind in &kinds {
        let seed = case(
            "seed",
            Method::POST,
            kind.collection,
            JSON,
            bytes(&kind.object),
            None,
        );
        let (code, reply, _) = send(&router, &seed).await;
        assert_eq!(code, StatusCode::CREATED, "{}: {reply}", kind.collection);
    }
    (server, router)
}

fn check(case: &Case, code: StatusCode, reply: &Value, raw: &[u8]) -> Result<(), String> {
    let what = || {
        format!(
            "{} {} {}: {code} {}",
            case.method,
            case.label,
            case.path.chars().take(120).collect::<String>(),
            String::from_utf8_lossy(&raw[..raw.len().min(300)])
        )
    };
    match case.expect {
        Some(expected) if code.as_u16() != expected => {
            return Err(format!("expected {expected}: {}", what()));
        }
        None if !code.is_client_error() => return Err(format!("expected a 4xx: {}", what())),
        _ => {}
    }
    if reply["kind"] != "Status"
        || reply["apiVersion"] != "v1"
        || reply["status"] != "Failure"
        || reply["code"] != code.as_u16()
        || !reply["reason"].is_string()
    {
        return Err(format!("not a Status with its code: {}", what()));
    }
    Ok(())
}

#[tokio::test]
async fn every_kind_and_verb_refuses_hostile_requests_and_changes_nothing() {
    let (server, router) = seeded().await;
    let corpus = corpus();
    assert!(
        corpus.len() >= 300,
        "the corpus has {} requests",
        corpus.len()
    );
    eprintln!("{} hostile requests", corpus.len());
    let mut failures = Vec::new();
    let mut before = dump(&server);
    for case in &corpus {
        let (code, reply, raw) = send(&router, case).await;
        if let Err(why) = check(case, code, &reply, &raw) {
            failures.push(why);
        }
        let after = dump(&server);
        if after != before {
            let changed: Vec<&String> = after
                .1
                .iter()
                .filter(|entry| !before.1.contains(entry))
                .map(|(key, _)| key)
                .chain(
                    before
                        .1
                        .iter()
                        .filter(|entry| !after.1.contains(entry))
                        .map(|(key, _)| key),
                )
                .collect();
            failures.push(format!(
                "{} {}: {code} changed the store: {changed:?}",
                case.method, case.label
            ));
            before = after;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    let still = case(
        "get",
        Method::GET,
        "/api/v1/namespaces/default/pods/h1",
        JSON,
        Vec::new(),
        None,
    );
    let (code, reply, _) = send(&router, &still).await;
    assert_eq!(code, StatusCode::OK, "still serving: {reply}");
}

/// Non-canonical paths are answered as upstream answers them, never cleaned into another
/// object's path. Go's http.Server does not clean `URL.Path` (only http.ServeMux redirects, and
/// kube-apiserver does not route through one); kube-apiserver's director gives go-restful only
/// paths starting with a web service's root, so `//api/v1/pods` falls to the PathRecorderMux
/// and its 404; go-restful's CurlyRouter matches segments as sent, so `pods/../secrets` is a
/// subresource no route has (404); and the storage's key functions refuse the names `.` and
/// `..` (`path.IsValidPathSegmentName`) with a 400 before any read or write.
#[tokio::test]
async fn non_canonical_paths_are_not_cleaned() {
    let (server, router) = seeded().await;
    let before = dump(&server);
    let pod = bytes(
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "."},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    );
    let cases = [
        (
            "/api/v1/namespaces/default/pods/../secrets",
            Method::GET,
            404,
            None,
        ),
        (
            "/api/v1/namespaces/default/pods/../secrets/h1",
            Method::GET,
            404,
            None,
        ),
        ("//api/v1/pods", Method::GET, 404, None),
        (
            "//api/v1/namespaces/default/pods/h1",
            Method::DELETE,
            404,
            None,
        ),
        ("/api/v1//namespaces/default/pods", Method::GET, 404, None),
        ("//version", Method::GET, 404, None),
        (
            "/api/v1/namespaces/default/pods/.",
            Method::GET,
            400,
            Some(r#"Name parameter invalid: ".": may not be '.'"#),
        ),
        (
            "/api/v1/namespaces/default/pods/..",
            Method::GET,
            400,
            Some(r#"Name parameter invalid: "..": may not be '..'"#),
        ),
        (
            "/api/v1/namespaces/default/pods/./status",
            Method::GET,
            400,
            None,
        ),
        ("/api/v1/namespaces/default/pods/.", Method::PUT, 400, None),
        (
            "/api/v1/namespaces/default/pods/..",
            Method::DELETE,
            400,
            None,
        ),
        ("/api/v1/nodes/..", Method::DELETE, 400, None),
        (
            "/api/v1/namespaces/default/configmaps/a%25b",
            Method::GET,
            400,
            None,
        ),
    ];
    for (path, method, expected, message) in cases {
        let request = case(
            path,
            method.clone(),
            path,
            JSON,
            pod.clone(),
            Some(expected),
        );
        let (code, reply, raw) = send(&router, &request).await;
        if let Err(why) = check(&request, code, &reply, &raw) {
            panic!("{why}");
        }
        if let Some(message) = message {
            assert_eq!(reply["message"], message, "{method} {path}");
        }
        assert_eq!(dump(&server), before, "{method} {path} changed the store");
    }
    // The canonical paths still serve.
    for path in [
        "/api/v1/namespaces/default/pods/h1",
        "/api/v1/pods",
        "/version",
    ] {
        let request = case(path, Method::GET, path, JSON, Vec::new(), None);
        let (code, reply, _) = send(&router, &request).await;
        assert_eq!(code, StatusCode::OK, "{path}: {reply}");
    }
}
