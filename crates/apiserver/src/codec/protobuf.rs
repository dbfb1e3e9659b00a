//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), turned into the JSON tree
//! the rest of the request path works on, as kube-apiserver decodes them: kubectl and client-go
//! send protobuf for the built-in kinds (`kubectl create namespace|configmap|secret`, `kubectl
//! debug`, a DELETE's options).
//!
//! The wire form is the 4-byte magic `k8s\0` and a `runtime.Unknown` envelope: the object's
//! `apiVersion` and `kind`, and `raw`, the object's own message. Decoding is generic: the
//! messages are described by upstream's `generated.proto` files (vendored under `proto/`,
//! compiled by `build.rs` into a descriptor set), and one walk over a `prost_reflect`
//! `DynamicMessage` writes any of them as JSON. The message of `(group, version, kind)` is
//! found by upstream's naming rule (`k8s.io.api.<first label of the group, or core>.<version>.
//! <Kind>`), so every kind whose group's file is vendored decodes without a line here; a kind
//! with no message is refused with a 415, as upstream refuses protobuf for custom resources.
//! k8s-pb (the kube-rs bindings) has prost structs only, without descriptors or serde, so it
//! cannot drive a generic decoder; its structs build the bodies of this module's tests.
//!
//! The JSON is what Go's `encoding/json` writes of the object Go's protobuf decoder fills, so a
//! protobuf create stores what the JSON create of the same object stores:
//! - field names are the `.proto` names, which are the JSON names but for a few, corrected by
//!   the served OpenAPI schema of the message (k8s-openapi's, from the Go tags): a field the
//!   schema does not list is the property it names in another case (`Webhooks` is
//!   `webhooks`; `DaemonEndpoint.Port` stays `Port`) or, if none, a Go struct embedded with
//!   `json:",inline"` whose fields join its parent's (`Probe.handler`, `Volume.volumeSource`,
//!   `EphemeralContainer.ephemeralContainerCommon`, the `localObjectReference` of key
//!   selectors, `RuleWithOperations.rule`);
//! - a field absent on the wire is absent; one present is written even when zero, since Go
//!   sends its non-pointer fields always and a pointer's zero (`gracePeriodSeconds: 0`) counts
//!   (admission then drops the empty strings Go's `omitempty` drops, as for a JSON body);
//! - `int64` are JSON numbers, `bytes` base64 (Go's standard encoding), maps objects;
//! - `meta.v1.Time` is RFC 3339 in seconds (Go drops the nanoseconds) and `MicroTime` has six
//!   fractional digits, an empty one of either being Go's zero time, `null`; `Duration` is
//!   Go's `time.Duration` string; `IntOrString` a number or a string by its `type`; `Quantity`
//!   its string; `RawExtension` and `FieldsV1` the JSON they carry; a message that is only
//!   `repeated string items` (`Verbs`, `ExtraValue`: Go slices) an array.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use base64::Engine as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MapKey, MessageDescriptor, ReflectMessage,
};
use serde_json::{Map, Number, Value};

use super::BodyKind;
use crate::error::ApiError;

/// The prefix of every protobuf-encoded object: `k8s` and the encoding, 0 (`runtime.Unknown`).
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// The media type of protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/k8s.binpb"))[..])
        .expect("the descriptors build.rs compiled decode")
});

/// The JSON property names of each schema the served OpenAPI documents define, by the proto
/// name of its message (`io.k8s.api.core.v1.Probe` is `k8s.io.api.core.v1.Probe`).
static PROPERTIES: LazyLock<HashMap<String, BTreeSet<String>>> = LazyLock::new(|| {
    let mut out = HashMap::new();
    let index = pernode_resources::openapi_v3_index();
    let Some(paths) = index.get("paths").and_then(Value::as_object) else {
        return out;
    };
    for path in paths.keys() {
        let Some(doc) = pernode_resources::openapi_v3_document(path)
            .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
        else {
            continue;
        };
        let Some(schemas) = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (name, schema) in schemas {
            let (Some(rest), Some(props)) = (
                name.strip_prefix("io.k8s."),
                schema.get("properties").and_then(Value::as_object),
            ) else {
                continue;
            };
            out.entry(format!("k8s.io.{rest}"))
                .or_insert_with(|| props.keys().cloned().collect());
        }
    }
    out
});

/// Where a field's value goes in its message's JSON object.
enum Placement {
    Member(String),
    /// An embedded Go struct: its members are the parent's.
    Inline,
}

fn placement(message: &str, field: &prost_reflect::FieldDescriptor) -> Placement {
    let name = field.name();
    let Some(props) = PROPERTIES.get(message) else {
        return Placement::Member(name.to_string());
    };
    if props.contains(name) {
        return Placement::Member(name.to_string());
    }
    if let Some(p) = props.iter().find(|p| p.eq_ignore_ascii_case(name)) {
        return Placement::Member(p.clone());
    }
    match field.kind() {
        Kind::Message(_) if !field.is_list() && !field.is_map() => Placement::Inline,
        _ => Placement::Member(name.to_string()),
    }
}

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// The Go package of a group, as upstream's proto packages and internal types name it:
/// `core` for the legacy group, else the group's first DNS label (`rbac.authorization.k8s.io`
/// is `rbac`).
fn group_package(group: &str) -> &str {
    match group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    }
}

/// The message of a kind, if one is compiled in. Option kinds (`DeleteOptions`) are
/// `meta.k8s.io/v1`'s in every group version, as upstream registers them.
fn message_of(group: &str, version: &str, kind: &str) -> Option<MessageDescriptor> {
    let name = if group == "meta.k8s.io" || kind == "DeleteOptions" {
        format!("{META}.{kind}")
    } else {
        format!("k8s.io.api.{}.{version}.{kind}", group_package(group))
    };
    POOL.get_message_by_name(&name)
}

/// Whether bodies of this kind can be sent as protobuf.
pub fn accepts(expect: &BodyKind<'_>) -> bool {
    message_of(expect.group, expect.version, expect.kind).is_some()
}

/// Decodes a protobuf body of the expected kind into JSON, with `apiVersion` and `kind` from its
/// envelope (or absent, where the envelope leaves them empty, for the caller to fill in as for
/// JSON). Errors are the 400s (415 for a kind without protobuf) kube-apiserver answers.
pub fn decode(body: &[u8], expect: &BodyKind<'_>) -> Result<Value, ApiError> {
    if !accepts(expect) {
        return Err(ApiError::unsupported_media_type(&[
            "application/json",
            "application/yaml",
        ]));
    }
    let unrecognized = |why: &str| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): {why} ({})",
            expect.kind,
            summarize(body)
        ))
    };
    let data = match body.strip_prefix(&MAGIC) {
        _ if body.is_empty() => return Err(unrecognized("empty data")),
        None => {
            return Err(unrecognized(
                "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
            ));
        }
        Some([]) => return Err(unrecognized("empty body")),
        Some(data) => data,
    };
    let envelope_desc = POOL
        .get_message_by_name(UNKNOWN)
        .expect("runtime.Unknown is compiled in");
    let envelope = DynamicMessage::decode(envelope_desc, data)
        .map_err(|e| unrecognized(&format!("runtime.Unknown: {e}")))?;
    let type_meta = match envelope.get_field_by_name("typeMeta").as_deref() {
        Some(prost_reflect::Value::Message(m)) => m.clone(),
        _ => DynamicMessage::new(
            POOL.get_message_by_name("k8s.io.apimachinery.pkg.runtime.TypeMeta")
                .expect("runtime.TypeMeta is compiled in"),
        ),
    };
    let text = |m: &DynamicMessage, name: &str| match m.get_field_by_name(name).as_deref() {
        Some(prost_reflect::Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let api_version = text(&type_meta, "apiVersion");
    let kind = text(&type_meta, "kind");
    // An empty kind or version takes the expected one, as upstream's copyKindDefaults.
    let (group, version) = if api_version.is_empty() {
        (expect.group.to_string(), expect.version.to_string())
    } else {
        match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        }
    };
    let sent_kind = if kind.is_empty() { expect.kind } else { &kind };
    let cannot = |why: String| {
        ApiError::bad_request(format!(
            "{sent_kind} in version {version:?} cannot be handled as a {}: {why}",
            expect.kind
        ))
    };
    if sent_kind != expect.kind {
        return Err(cannot(format!(
            "converting ({version}.{sent_kind}) to ({}.{}): unknown conversion",
            group_package(expect.group),
            expect.kind
        )));
    }
    let Some(desc) = message_of(&group, &version, sent_kind) else {
        let gv = if group.is_empty() {
            version.clone()
        } else {
            format!("{group}/{version}")
        };
        return Err(cannot(format!(
            "no kind {sent_kind:?} is registered for version {gv:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )));
    };
    let raw = match envelope.get_field_by_name("raw").as_deref() {
        Some(prost_reflect::Value::Bytes(b)) => b.clone(),
        _ => Default::default(),
    };
    let object = DynamicMessage::decode(desc, raw).map_err(|e| cannot(e.to_string()))?;
    let mut value = message_json(&object).map_err(cannot)?;
    if let Value::Object(map) = &mut value {
        if !api_version.is_empty() {
            map.insert("apiVersion".into(), Value::String(api_version));
        }
        if !kind.is_empty() {
            map.insert("kind".into(), Value::String(kind));
        }
    }
    Ok(value)
}

/// Upstream's `summarizeData(body, 30)`: the first 30 bytes, in hex unless they look like JSON.
fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    let (head, more) = match body.len() > MAX {
        true => (&body[..MAX], " ..."),
        false => (body, ""),
    };
    match body.first() {
        None => "<empty>".into(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(head)),
        Some(_) => {
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}{more}")
        }
    }
}

/// One message as Go's JSON of it: the well-known types by their marshalers, the rest as an
/// object of the fields present.
fn message_json(msg: &DynamicMessage) -> Result<Value, String> {
    let desc = msg.descriptor();
    let field_i64 = |name: &str| match msg.get_field_by_name(name).as_deref() {
        Some(prost_reflect::Value::I64(n)) => *n,
        Some(prost_reflect::Value::I32(n)) => i64::from(*n),
        _ => 0,
    };
    let has = |name: &str| msg.has_field_by_name(name);
    match desc.full_name() {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => {
            if !has("seconds") && !has("nanos") {
                return Ok(Value::Null);
            }
            time_json(field_i64("seconds"), None)
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => {
            if !has("seconds") && !has("nanos") {
                return Ok(Value::Null);
            }
            time_json(field_i64("seconds"), Some(field_i64("nanos")))
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => {
            Ok(Value::String(go_duration(field_i64("duration"))))
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => Ok(match field_i64("type") {
            1 => Value::String(string_field(msg, "strVal")),
            _ => Value::from(field_i64("intVal")),
        }),
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => {
            // An empty message is Go's zero Quantity, which encodes as "0".
            let s = string_field(msg, "string");
            Ok(Value::String(if has("string") { s } else { "0".into() }))
        }
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => embedded_json(msg, "raw"),
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => embedded_json(msg, "Raw"),
        _ if is_string_slice(&desc) => match msg.get_field_by_name("items").as_deref() {
            Some(v @ prost_reflect::Value::List(_)) => value_json(v),
            _ => Ok(Value::Array(Vec::new())),
        },
        _ => {
            let mut out = Map::new();
            for field in desc.fields() {
                if !msg.has_field(&field) {
                    continue;
                }
                let value = value_json(&msg.get_field(&field))?;
                match placement(desc.full_name(), &field) {
                    Placement::Member(name) => {
                        out.insert(name, value);
                    }
                    Placement::Inline => {
                        if let Value::Object(members) = value {
                            out.extend(members);
                        }
                    }
                }
            }
            Ok(Value::Object(out))
        }
    }
}

/// A message that is a Go `[]string` in the types (`metav1.Verbs`, the `ExtraValue`s): its one
/// field is `repeated string items`.
fn is_string_slice(desc: &MessageDescriptor) -> bool {
    let mut fields = desc.fields();
    matches!(
        (fields.next(), fields.next()),
        (Some(f), None) if f.name() == "items" && f.is_list() && f.kind() == Kind::String
    )
}

fn string_field(msg: &DynamicMessage, name: &str) -> String {
    match msg.get_field_by_name(name).as_deref() {
        Some(prost_reflect::Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// `RawExtension.raw` / `FieldsV1.Raw`: the JSON they hold, written as is by Go (`null` when
/// absent or empty).
fn embedded_json(msg: &DynamicMessage, field: &str) -> Result<Value, String> {
    match msg.get_field_by_name(field).as_deref() {
        Some(prost_reflect::Value::Bytes(b)) if !b.is_empty() => serde_json::from_slice(b)
            .map_err(|e| format!("{}.{field} is not JSON: {e}", desc_name(msg))),
        _ => Ok(Value::Null),
    }
}

fn desc_name(msg: &DynamicMessage) -> String {
    msg.descriptor().name().to_string()
}

fn value_json(value: &prost_reflect::Value) -> Result<Value, String> {
    use prost_reflect::Value as V;
    Ok(match value {
        V::Bool(b) => Value::Bool(*b),
        V::I32(n) => Value::from(*n),
        V::I64(n) => Value::from(*n),
        V::U32(n) => Value::from(*n),
        V::U64(n) => Value::from(*n),
        V::EnumNumber(n) => Value::from(*n),
        V::F32(f) => float(f64::from(*f))?,
        V::F64(f) => float(*f)?,
        V::String(s) => Value::String(s.clone()),
        V::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        V::Message(m) => message_json(m)?,
        V::List(items) => Value::Array(items.iter().map(value_json).collect::<Result<_, _>>()?),
        V::Map(entries) => {
            let mut out = Map::new();
            for (key, v) in entries {
                let key = match key {
                    MapKey::String(s) => s.clone(),
                    MapKey::Bool(b) => b.to_string(),
                    MapKey::I32(n) => n.to_string(),
                    MapKey::I64(n) => n.to_string(),
                    MapKey::U32(n) => n.to_string(),
                    MapKey::U64(n) => n.to_string(),
                };
                out.insert(key, value_json(v)?);
            }
            Value::Object(out)
        }
    })
}

fn float(f: f64) -> Result<Value, String> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("unsupported value: {f}"))
}

/// `metav1.Time` (seconds; `nanos: None`) or `MicroTime` as Go's JSON writes it, in UTC.
fn time_json(seconds: i64, nanos: Option<i64>) -> Result<Value, String> {
    let out_of_range = || format!("Time.seconds out of range: {seconds}");
    let ts = jiff::Timestamp::from_second(seconds).map_err(|_| out_of_range())?;
    let date = ts.to_zoned(jiff::tz::TimeZone::UTC);
    // Go's RFC 3339 formatting refuses years outside 0000-9999.
    if !(0..=9999).contains(&date.year()) {
        return Err(out_of_range());
    }
    let base = date.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(Value::String(match nanos {
        None => format!("{base}Z"),
        Some(n) => {
            if !(0..1_000_000_000).contains(&n) {
                return Err(format!("MicroTime.nanos out of range: {n}"));
            }
            format!("{base}.{:06}Z", n / 1000)
        }
    }))
}

/// Go's `time.Duration.String()`: `1h2m3s`, `1.5s`, `300ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    // Under a second: the largest unit that keeps a whole part.
    if u < 1_000_000_000 {
        let (unit, div) = match u {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", fraction(u, div));
    }
    let secs = u / 1_000_000_000;
    let frac = u % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = String::from(sign);
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&fraction(s * 1_000_000_000 + frac, 1_000_000_000));
    out.push('s');
    out
}

/// `n / div` with the remainder as decimals, trailing zeros dropped.
fn fraction(n: u64, div: u64) -> String {
    let whole = n / div;
    let rest = n % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (nanos, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (300_000_000, "300ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_000_000_000, "1h2m3s"),
            (-90_000_000_000, "-1m30s"),
        ] {
            assert_eq!(go_duration(nanos), want, "{nanos}");
        }
    }

    #[test]
    fn times_are_go_json() {
        assert_eq!(time_json(0, None).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            time_json(1_700_000_000, Some(123_456_789)).unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
        assert!(time_json(i64::MAX, None).is_err());
        assert!(time_json(0, Some(-1)).is_err());
    }

    #[test]
    fn every_group_of_the_catalogue_has_messages() {
        for (group, version, kind) in [
            ("", "v1", "Namespace"),
            ("apps", "v1", "DaemonSet"),
            ("coordination.k8s.io", "v1", "Lease"),
            ("policy", "v1", "Eviction"),
            ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
            ("scheduling.k8s.io", "v1", "PriorityClass"),
            ("networking.k8s.io", "v1", "NetworkPolicy"),
            ("storage.k8s.io", "v1", "CSINode"),
            (
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
            ),
            ("apps", "v1", "DeleteOptions"),
            ("meta.k8s.io", "v1", "DeleteOptions"),
        ] {
            assert!(message_of(group, version, kind).is_some(), "{group}/{kind}");
        }
        assert!(message_of("example.com", "v1", "Widget").is_none());
    }
}
