//! One audit event (`audit.k8s.io/v1` `Event`) and its line in the log: a JSON object as
//! kube-apiserver's `--audit-log-format=json` writes it, fields in upstream's order, `omitempty`
//! where upstream omits.
//!
//! An [`Event`] carries the request's and response's bodies as received and sent; the sink's
//! writer thread decodes them into `requestObject` and `responseObject` (JSON, YAML or
//! protobuf, as the handlers decode them) when it writes the line, off the request's path.
//! As upstream's `LogRequestObject`, a created or updated object's metadata completes the
//! object reference (name, namespace, uid, resourceVersion) at every level; the body itself is
//! logged from `Request` up. A failure's `Status` body gives `responseStatus` its status,
//! message, reason and details; a success's `responseStatus` is its code alone.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use bytes::Bytes;
use jiff::Timestamp;
use pernode_auth::authorizer::Attributes;
use pernode_auth::user::UserInfo;
use serde::Serialize;
use serde_json::Value;

use super::policy::{Level, Stage};
use crate::codec::{self, BodyKind};

/// Upstream's limit on the logged `userAgent`.
const MAX_USER_AGENT: usize = 1024;

/// What the request targets (`ObjectReference`); absent for non-resource requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
}

impl ObjectRef {
    /// The reference a resource request's attributes give.
    pub fn of(attrs: &Attributes<'_>) -> ObjectRef {
        ObjectRef {
            resource: attrs.resource.to_string(),
            namespace: attrs.namespace.to_string(),
            name: attrs.name.to_string(),
            api_group: attrs.api_group.to_string(),
            api_version: attrs.api_version.to_string(),
            subresource: attrs.subresource.to_string(),
            ..ObjectRef::default()
        }
    }

    /// Fills what the path left empty from the metadata of the request's object.
    fn complete_from(&mut self, object: &Value) {
        let Some(meta) = object.get("metadata") else {
            return;
        };
        for (field, key) in [
            (&mut self.namespace, "namespace"),
            (&mut self.name, "name"),
            (&mut self.uid, "uid"),
            (&mut self.resource_version, "resourceVersion"),
        ] {
            if field.is_empty()
                && let Some(value) = meta.get(key).and_then(Value::as_str)
            {
                *field = value.to_string();
            }
        }
    }
}

/// A request's body as received, to be decoded when the event is written.
#[derive(Clone, Debug)]
pub struct RequestBody {
    pub bytes: Bytes,
    pub content_type: Option<String>,
    /// The type the handler decodes it as; `None` for a patch document.
    pub kind: Option<BodyKind<'static>>,
}

impl RequestBody {
    fn decode(&self) -> Option<Value> {
        let content_type = self.content_type.as_deref();
        match &self.kind {
            Some(kind) => codec::decode_object(content_type, &self.bytes, kind).ok(),
            // A patch is logged as sent; an apply patch's YAML as the JSON it stands for.
            None if codec::media_type(content_type).ends_with("yaml") => {
                codec::parse_yaml(&self.bytes).ok()
            }
            None => codec::parse_json(&self.bytes).ok(),
        }
    }
}

/// How the request was answered.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub code: u16,
    /// Set when no `Status` body says more (a failed authentication's attempted methods).
    pub message: String,
    /// The response's body, when it was kept: a failure's `Status`, or the object at
    /// `RequestResponse`.
    pub body: Option<Bytes>,
}

/// One audit event.
#[derive(Clone, Debug)]
pub struct Event {
    pub level: Level,
    pub audit_id: String,
    pub stage: Stage,
    pub request_uri: String,
    /// The API verb of a resource request, the lowercase method of any other.
    pub verb: String,
    /// `None` when authentication failed (logged as `{}`).
    pub user: Option<Arc<UserInfo>>,
    /// Whom `user` acted as, when it impersonated someone.
    pub impersonated_user: Option<Arc<UserInfo>>,
    pub source_ips: Vec<String>,
    pub user_agent: String,
    pub object_ref: Option<ObjectRef>,
    pub response: Option<Response>,
    pub request_body: Option<RequestBody>,
    pub received: Timestamp,
    pub stage_timestamp: Timestamp,
    pub annotations: BTreeMap<&'static str, String>,
    pub omit_managed_fields: bool,
}

impl Event {
    /// The event's line: one JSON object, no newline.
    pub fn to_json(&self) -> String {
        let mut object_ref = self.object_ref.clone();
        let request_object = self.request_body.as_ref().and_then(|body| {
            let mut object = body.decode()?;
            if body.kind.is_some()
                && let Some(reference) = &mut object_ref
            {
                reference.complete_from(&object);
            }
            if self.omit_managed_fields {
                drop_managed_fields(&mut object);
            }
            Some(object)
        });
        let response_body = self
            .response
            .as_ref()
            .and_then(|r| r.body.as_ref())
            .and_then(|b| serde_json::from_slice::<Value>(b).ok());
        let response_status = self
            .response
            .as_ref()
            .map(|r| WireStatus::of(r, response_body.as_ref()));
        let response_object = response_body
            .filter(|_| self.level >= Level::RequestResponse)
            .map(|mut object| {
                if self.omit_managed_fields {
                    drop_managed_fields(&mut object);
                }
                object
            });
        let wire = Wire {
            kind: "Event",
            api_version: "audit.k8s.io/v1",
            level: self.level.as_str(),
            audit_id: &self.audit_id,
            stage: self.stage.as_str(),
            request_uri: &self.request_uri,
            verb: &self.verb,
            user: WireUser::of(self.user.as_deref()),
            impersonated_user: self
                .impersonated_user
                .as_deref()
                .map(|u| WireUser::of(Some(u))),
            source_ips: &self.source_ips,
            user_agent: &self.user_agent,
            object_ref: object_ref.as_ref(),
            response_status,
            request_object: request_object.filter(|_| self.level >= Level::Request),
            response_object,
            request_received_timestamp: micro_time(self.received),
            stage_timestamp: micro_time(self.stage_timestamp),
            annotations: &self.annotations,
        };
        // Serializing strings and JSON values into a String cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }
}

/// `metav1.MicroTime` as JSON: RFC 3339 in UTC with exactly six fractional digits (truncated).
pub fn micro_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Drops `metadata.managedFields` from an object, or from each item of a list.
fn drop_managed_fields(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
        for item in items {
            if let Some(meta) = item.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
    }
}

/// The source addresses upstream's `SourceIPs` lists: each valid `X-Forwarded-For` address,
/// `X-Real-Ip` unless already listed, then the connection's address unless it is the last.
/// (All but the last can be set by the client.)
pub fn source_ips(headers: &HeaderMap, remote: Option<IpAddr>) -> Vec<String> {
    let parse = |s: &str| s.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    let mut ips: Vec<IpAddr> = Vec::new();
    if let Some(forwarded) = header(headers, "x-forwarded-for") {
        ips.extend(forwarded.split(',').filter_map(parse));
    }
    if let Some(real) = header(headers, "x-real-ip").and_then(parse)
        && !ips.contains(&real)
    {
        ips.push(real);
    }
    if let Some(remote) = remote.map(|ip| ip.to_canonical())
        && ips.last() != Some(&remote)
    {
        ips.push(remote);
    }
    ips.iter().map(IpAddr::to_string).collect()
}

/// The client's `User-Agent`, cut at upstream's 1024 bytes.
pub fn user_agent(headers: &HeaderMap) -> String {
    let agent = header(headers, "user-agent").unwrap_or("");
    if agent.len() <= MAX_USER_AGENT {
        return agent.to_string();
    }
    let mut end = MAX_USER_AGENT;
    while !agent.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...TRUNCATED", &agent[..end])
}

/// The message upstream's failed-authentication audit gives a 401: the methods the request
/// attempted.
pub fn failed_authentication_message(
    headers: &HeaderMap,
    query: Option<&str>,
    certificate: bool,
) -> String {
    let mut methods = Vec::new();
    let authorization = header(headers, "authorization").unwrap_or("").trim();
    if is_basic_auth(authorization) {
        methods.push("basic");
    }
    let mut parts = authorization.split(' ');
    if let (Some(scheme), Some(_)) = (parts.next(), parts.next())
        && scheme.eq_ignore_ascii_case("bearer")
    {
        methods.push("bearer");
    }
    let access_token = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "access_token")
        .is_some_and(|(_, v)| !v.trim().is_empty());
    if access_token {
        methods.push("access_token");
    }
    if certificate {
        methods.push("x509");
    }
    if methods.is_empty() {
        "Authentication failed, no credentials provided".to_string()
    } else {
        format!("Authentication failed, attempted: {}", methods.join(", "))
    }
}

/// Whether `Authorization` holds Basic credentials, as Go's `Request.BasicAuth` reads them.
fn is_basic_auth(authorization: &str) -> bool {
    use base64::Engine;
    let Some((scheme, encoded)) = authorization.split_at_checked(6) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic ")
        && base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .is_ok_and(|decoded| decoded.contains(&b':'))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    kind: &'static str,
    api_version: &'static str,
    level: &'static str,
    #[serde(rename = "auditID")]
    audit_id: &'a str,
    stage: &'static str,
    #[serde(rename = "requestURI")]
    request_uri: &'a str,
    verb: &'a str,
    user: WireUser<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonated_user: Option<WireUser<'a>>,
    #[serde(rename = "sourceIPs", skip_serializing_if = "<[String]>::is_empty")]
    source_ips: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_ref: Option<&'a ObjectRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_status: Option<WireStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_object: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_object: Option<Value>,
    request_received_timestamp: String,
    stage_timestamp: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<&'static str, String>,
}

/// `authentication.k8s.io/v1` `UserInfo`.
#[derive(Serialize, Default)]
struct WireUser<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    username: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    uid: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    extra: Option<&'a BTreeMap<String, Vec<String>>>,
}

impl<'a> WireUser<'a> {
    fn of(user: Option<&'a UserInfo>) -> WireUser<'a> {
        let Some(user) = user else {
            return WireUser::default();
        };
        WireUser {
            username: &user.name,
            uid: &user.uid,
            groups: &user.groups,
            extra: Some(&user.extra).filter(|e| !e.is_empty()),
        }
    }
}

/// `metav1.Status` as upstream fills `responseStatus`.
#[derive(Serialize)]
struct WireStatus {
    metadata: Empty,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
    #[serde(skip_serializing_if = "is_zero")]
    code: u16,
}

/// Go's empty `ListMeta`: `{}`.
#[derive(Serialize)]
struct Empty {}

fn is_zero(code: &u16) -> bool {
    *code == 0
}

impl WireStatus {
    /// The response's code, with a `Status` body's status, message, reason and details.
    fn of(response: &Response, body: Option<&Value>) -> WireStatus {
        let status = body.filter(|b| b.get("kind").and_then(Value::as_str) == Some("Status"));
        let text = |key: &str| {
            status
                .and_then(|s| s.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        WireStatus {
            metadata: Empty {},
            status: text("status"),
            message: text("message")
                .or_else(|| Some(response.message.clone()).filter(|m| !m.is_empty())),
            reason: text("reason"),
            details: status.and_then(|s| s.get("details")).cloned(),
            code: response.code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp::new(seconds, nanos).unwrap()
    }

    fn event() -> Event {
        let mut annotations = BTreeMap::new();
        annotations.insert("authorization.k8s.io/decision", "allow".to_string());
        annotations.insert("authorization.k8s.io/reason", String::new());
        Event {
            level: Level::Metadata,
            audit_id: "0b0e9d4c-55e4-4e5f-9c5e-3f1a2b3c4d5e".into(),
            stage: Stage::ResponseComplete,
            request_uri: "/api/v1/namespaces/default/configmaps?fieldManager=kubectl".into(),
            verb: "create".into(),
            user: Some(Arc::new(UserInfo::new(
                "system:admin",
                ["system:masters", "system:authenticated"],
            ))),
            impersonated_user: None,
            source_ips: vec!["127.0.0.1".into()],
            user_agent: "kubectl/v1.33.0".into(),
            object_ref: Some(ObjectRef {
                resource: "configmaps".into(),
                namespace: "default".into(),
                api_version: "v1".into(),
                ..ObjectRef::default()
            }),
            response: Some(Response {
                code: 201,
                ..Response::default()
            }),
            request_body: Some(RequestBody {
                bytes: Bytes::from_static(
                    br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","uid":"u-1","managedFields":[{"manager":"kubectl"}]},"data":{"a":"b"}}"#,
                ),
                content_type: Some("application/json".into()),
                kind: Some(BodyKind {
                    group: "",
                    version: "v1",
                    kind: "ConfigMap",
                }),
            }),
            received: at(1_700_000_000, 123_456_789),
            stage_timestamp: at(1_700_000_000, 200_000_000),
            annotations,
            omit_managed_fields: false,
        }
    }

    #[test]
    fn a_metadata_event_is_upstreams_line() {
        let line = event().to_json();
        assert_eq!(
            line,
            concat!(
                r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","#,
                r#""auditID":"0b0e9d4c-55e4-4e5f-9c5e-3f1a2b3c4d5e","stage":"ResponseComplete","#,
                r#""requestURI":"/api/v1/namespaces/default/configmaps?fieldManager=kubectl","#,
                r#""verb":"create","user":{"username":"system:admin","groups":["system:masters","system:authenticated"]},"#,
                r#""sourceIPs":["127.0.0.1"],"userAgent":"kubectl/v1.33.0","#,
                r#""objectRef":{"resource":"configmaps","namespace":"default","name":"cm","uid":"u-1","apiVersion":"v1"},"#,
                r#""responseStatus":{"metadata":{},"code":201},"#,
                r#""requestReceivedTimestamp":"2023-11-14T22:13:20.123456Z","#,
                r#""stageTimestamp":"2023-11-14T22:13:20.200000Z","#,
                r#""annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}"#
            )
        );
    }

    #[test]
    fn request_and_response_objects_follow_the_level() {
        let mut e = event();
        e.level = Level::Request;
        e.response.as_mut().unwrap().body = Some(Bytes::from_static(br#"{"kind":"ConfigMap"}"#));
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["requestObject"]["data"], json!({"a": "b"}));
        assert_eq!(
            v["requestObject"]["metadata"]["managedFields"][0]["manager"],
            "kubectl"
        );
        assert!(v.get("responseObject").is_none());

        e.level = Level::RequestResponse;
        e.omit_managed_fields = true;
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["responseObject"], json!({"kind": "ConfigMap"}));
        assert!(
            v["requestObject"]["metadata"]
                .get("managedFields")
                .is_none()
        );
        assert_eq!(v["responseStatus"], json!({"metadata": {}, "code": 201}));
    }

    #[test]
    fn a_yaml_body_and_a_patch_are_logged_as_json() {
        let mut e = event();
        e.level = Level::Request;
        let body = e.request_body.as_mut().unwrap();
        body.bytes =
            Bytes::from_static(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yaml}\n");
        body.content_type = Some("application/yaml".into());
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["requestObject"]["metadata"]["name"], "from-yaml");
        assert_eq!(v["objectRef"]["name"], "from-yaml");

        let mut e = event();
        e.level = Level::Request;
        e.object_ref.as_mut().unwrap().name = "cm".into();
        e.request_body = Some(RequestBody {
            bytes: Bytes::from_static(br#"{"metadata":{"name":"other","labels":{"a":"b"}}}"#),
            content_type: Some("application/merge-patch+json".into()),
            kind: None,
        });
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["requestObject"]["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(
            v["objectRef"]["name"], "cm",
            "a patch does not rename the target"
        );
    }

    #[test]
    fn a_failure_status_fills_the_response_status() {
        let mut e = event();
        e.request_body = None;
        e.response = Some(Response {
            code: 404,
            message: String::new(),
            body: Some(Bytes::from_static(
                br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"configmaps"},"code":404}"#,
            )),
        });
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(
            v["responseStatus"],
            json!({"metadata": {}, "status": "Failure", "message": "configmaps \"x\" not found",
                   "reason": "NotFound", "details": {"name": "x", "kind": "configmaps"}, "code": 404})
        );
        assert!(v.get("responseObject").is_none(), "Metadata logs no bodies");
    }

    #[test]
    fn an_impersonated_user_is_named_beside_the_requester() {
        let mut e = event();
        e.impersonated_user = Some(Arc::new(UserInfo::new("jane", ["dev"])));
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["user"]["username"], "system:admin");
        assert_eq!(
            v["impersonatedUser"],
            json!({"username": "jane", "groups": ["dev"]})
        );
    }

    #[test]
    fn a_failed_authentication_has_no_user() {
        let mut e = event();
        e.user = None;
        e.stage = Stage::ResponseStarted;
        e.annotations.clear();
        e.request_body = None;
        e.response = Some(Response {
            code: 401,
            message: "Authentication failed, no credentials provided".into(),
            body: None,
        });
        let v: Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["user"], json!({}));
        assert_eq!(v["stage"], "ResponseStarted");
        assert!(v.get("annotations").is_none());
        assert_eq!(
            v["responseStatus"],
            json!({"metadata": {}, "message": "Authentication failed, no credentials provided", "code": 401})
        );
    }

    #[test]
    fn micro_times_have_six_digits() {
        assert_eq!(micro_time(at(0, 0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            micro_time(at(1, 999_999_999)),
            "1970-01-01T00:00:01.999999Z"
        );
    }

    #[test]
    fn source_ips_are_upstreams() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(source_ips(&h, Some(local)), ["127.0.0.1"]);
        assert!(source_ips(&h, None).is_empty());
        h.insert(
            "x-forwarded-for",
            "1.2.3.4, bogus, 10.0.0.1".parse().unwrap(),
        );
        h.insert("x-real-ip", "1.2.3.4".parse().unwrap());
        assert_eq!(
            source_ips(&h, Some(local)),
            ["1.2.3.4", "10.0.0.1", "127.0.0.1"]
        );
        h.insert("x-real-ip", "5.6.7.8".parse().unwrap());
        assert_eq!(
            source_ips(&h, Some("5.6.7.8".parse().unwrap())),
            ["1.2.3.4", "10.0.0.1", "5.6.7.8"]
        );
        let mapped: IpAddr = "::ffff:192.168.0.1".parse().unwrap();
        assert_eq!(source_ips(&HeaderMap::new(), Some(mapped)), ["192.168.0.1"]);
    }

    #[test]
    fn long_user_agents_are_truncated() {
        let mut h = HeaderMap::new();
        h.insert("user-agent", "a".repeat(1025).parse().unwrap());
        let agent = user_agent(&h);
        assert_eq!(agent, format!("{}...TRUNCATED", "a".repeat(1024)));
        h.insert("user-agent", "kubectl".parse().unwrap());
        assert_eq!(user_agent(&h), "kubectl");
    }

    #[test]
    fn failed_authentication_names_the_methods_attempted() {
        let mut h = HeaderMap::new();
        assert_eq!(
            failed_authentication_message(&h, None, false),
            "Authentication failed, no credentials provided"
        );
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(
            failed_authentication_message(&h, Some("access_token=x"), true),
            "Authentication failed, attempted: bearer, access_token, x509"
        );
        // "user:pass"
        h.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(
            failed_authentication_message(&h, None, false),
            "Authentication failed, attempted: basic"
        );
    }
}
