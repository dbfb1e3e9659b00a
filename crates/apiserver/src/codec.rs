//! Request bodies in (JSON, YAML or protobuf, size-limited) and lists out (stored JSON bytes joined
//! without re-encoding, which is what keeps a 10,000-object list cheap), whole or as
//! `meta.k8s.io/v1` PartialObjectMetadata (the stored `metadata` bytes, verbatim).

use std::borrow::Cow;
use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use pernode_core::json::ObjectMembers;
use pernode_resources::ResourceInfo;
use pernode_store::Entry;
use serde_json::Value;

use crate::error::ApiError;

pub mod protobuf;

/// kube-apiserver's request body limit.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The type a request body must be: the resource's kind (or its subresource's: `Binding`,
/// `Eviction`; `DeleteOptions` for a DELETE). A protobuf body names its type in its envelope,
/// which must agree; a JSON or YAML body's `kind` is checked by its handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyKind<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
}

impl BodyKind<'static> {
    /// The options of a DELETE (`meta.k8s.io/v1`, which every group version also registers).
    pub const DELETE_OPTIONS: Self = BodyKind {
        group: "meta.k8s.io",
        version: "v1",
        kind: "DeleteOptions",
    };

    /// The objects of a resource.
    pub fn of(info: &'static ResourceInfo) -> Self {
        BodyKind {
            group: info.group,
            version: info.version,
            kind: info.kind,
        }
    }

    /// The body a create or update of the resource, or of its `subresource`, must be: the
    /// subresource's kind where the catalogue lists one, else the resource's.
    pub fn of_request(info: &'static ResourceInfo, subresource: Option<&str>) -> Self {
        subresource
            .and_then(|name| Self::of_subresource(info, name))
            .unwrap_or(Self::of(info))
    }

    /// The body of a subresource (`binding`, `eviction`), as the catalogue lists its kind.
    pub fn of_subresource(info: &'static ResourceInfo, name: &str) -> Option<Self> {
        info.subresources
            .iter()
            .find(|s| s.name == name)
            .map(|s| BodyKind {
                group: s.group,
                version: s.version,
                kind: s.kind,
            })
    }
}

/// The body formats accepted for create and update, as upstream lists them in its 415.
const BODY_MEDIA_TYPES: &[&str] = &["application/json", "application/yaml", protobuf::MEDIA_TYPE];

/// A request body (create, update, DeleteOptions, binding, eviction) as a JSON object, from
/// JSON, YAML or protobuf (`expect` is the type a protobuf body must be).
pub fn decode_object(
    content_type: Option<&str>,
    body: &[u8],
    expect: &BodyKind<'_>,
) -> Result<Value, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::too_large());
    }
    let media = media_type(content_type);
    let value = match media.as_str() {
        "application/json" | "" | "*/*" => parse_json(body)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml(body)?,
        protobuf::MEDIA_TYPE => protobuf::decode(body, expect)?,
        _ => {
            return Err(ApiError::unsupported_media_type(
                if protobuf::accepts(expect) {
                    BODY_MEDIA_TYPES
                } else {
                    &BODY_MEDIA_TYPES[..2]
                },
            ));
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    Ok(value)
}

/// The media type without parameters, lower-cased.
pub fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("invalid UTF-8 in YAML body: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// Fields of `input` that the typed round trip dropped: the unknown fields that
/// `fieldValidation=Strict` rejects. Paths are dotted (`spec.template.spec.foo`); `at` is the
/// path of `input` itself (empty for a whole object, `status` for its status alone).
pub fn unknown_fields(at: &str, input: &Value, typed: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(input, typed, &mut at.to_string(), &mut out);
    out
}

/// `path` is the dotted path of `input`, extended in place and restored on return: the walk
/// runs on every admitted write, and allocating a path per field showed in profiles.
fn walk_unknown(input: &Value, typed: &Value, path: &mut String, out: &mut Vec<String>) {
    let len = path.len();
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => {
            for (k, v) in i {
                if len > 0 {
                    path.push('.');
                }
                path.push_str(k);
                match t.get(k) {
                    Some(tv) => walk_unknown(v, tv, path, out),
                    // Nulls and empty values are dropped by the round trip without being unknown.
                    None if is_empty_value(v) => {}
                    None => out.push(path.clone()),
                }
                path.truncate(len);
            }
        }
        (Value::Array(i), Value::Array(t)) => {
            for (n, (iv, tv)) in i.iter().zip(t.iter()).enumerate() {
                use std::fmt::Write as _;
                let _ = write!(path, "[{n}]");
                walk_unknown(iv, tv, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// What a page of a paged list says of the rest: where to continue, and (when the list has no
/// selector, as upstream) how many items remain.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    pub continue_token: &'a str,
    pub remaining_item_count: Option<usize>,
}

/// A page's `continue` and `remainingItemCount` members of a list's metadata.
fn put_page(out: &mut BytesMut, page: Option<Page<'_>>) {
    if let Some(page) = page {
        out.put_slice(b",\"continue\":");
        out.put_slice(
            Value::String(page.continue_token.to_string())
                .to_string()
                .as_bytes(),
        );
        if let Some(n) = page.remaining_item_count {
            out.put_slice(b",\"remainingItemCount\":");
            out.put_slice(n.to_string().as_bytes());
        }
    }
}

/// Whether stored objects go out with their `metadata.managedFields`. An in-process control
/// loop's lists and watches get them `Stripped` ([`crate::ApiServer::router_for_control_loop`]
/// sets it as a request extension); everyone else gets what is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ManagedFields {
    #[default]
    Kept,
    Stripped,
}

impl ManagedFields {
    /// Appends the stored `entry` as this rendering sends it, in the version `info` serves (a
    /// custom object written through another version is converted).
    pub fn put_entry(self, out: &mut BytesMut, info: &ResourceInfo, entry: &Entry) {
        match crate::crd::conversion::in_version(info, &entry.json) {
            Cow::Borrowed(json) => self.put(out, json, entry.managed_fields()),
            Cow::Owned(json) => {
                let at = pernode_core::json::nested_member(&json, "metadata", "managedFields");
                self.put(out, &json, at);
            }
        }
    }

    /// Appends the stored object `json`, whose `metadata.managedFields` member is at `at`
    /// (from its key to its value's end, as [`Entry::managed_fields`] keeps it: cutting it
    /// out reads nothing), as this rendering sends it.
    fn put(self, out: &mut BytesMut, json: &[u8], at: Option<Range<usize>>) {
        let cut = match self {
            ManagedFields::Kept => None,
            ManagedFields::Stripped => {
                at.map(|member| pernode_core::json::member_cut(json, member))
            }
        };
        put_without(out, json, cut);
    }
}

/// Appends `bytes` less the range `cut`.
fn put_without(out: &mut BytesMut, bytes: &[u8], cut: Option<std::ops::Range<usize>>) {
    match cut {
        Some(cut) => {
            out.put_slice(&bytes[..cut.start]);
            out.put_slice(&bytes[cut.end..]);
        }
        None => out.put_slice(bytes),
    }
}

/// `{"kind":"PodList","apiVersion":"v1","metadata":{...},"items":[...]}` from stored bytes.
pub fn encode_list(
    info: &ResourceInfo,
    rv: u64,
    page: Option<Page<'_>>,
    items: &[Entry],
    managed_fields: ManagedFields,
) -> Bytes {
    let size: usize = items.iter().map(|e| e.json.len() + 1).sum::<usize>() + 160;
    let mut out = BytesMut::with_capacity(size);
    out.put_slice(b"{\"kind\":\"");
    out.put_slice(info.kind.as_bytes());
    out.put_slice(b"List\",\"apiVersion\":\"");
    out.put_slice(info.api_version().as_bytes());
    out.put_slice(b"\",\"metadata\":{\"resourceVersion\":\"");
    out.put_slice(rv.to_string().as_bytes());
    out.put_slice(b"\"");
    put_page(&mut out, page);
    out.put_slice(b"},\"items\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.put_u8(b',');
        }
        // A custom object written through another served version reads in this one.
        managed_fields.put_entry(&mut out, info, item);
    }
    out.put_slice(b"]}");
    out.freeze()
}

/// Content type of a PartialObjectMetadata object or watch event stream.
pub const PARTIAL_METADATA_MIME: &str =
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
/// Content type of a PartialObjectMetadataList.
pub const PARTIAL_METADATA_LIST_MIME: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/// Appends the stored object as a `meta.k8s.io/v1` PartialObjectMetadata: its `metadata`
/// copied verbatim, the rest skipped without building it.
pub fn put_partial_metadata(out: &mut BytesMut, entry: &Entry, managed_fields: ManagedFields) {
    let at = entry.managed_fields();
    let metadata = top_level_field(&entry.json, "metadata", at.clone()).unwrap_or("{}");
    // The member's place in `metadata`'s own bytes.
    let at =
        at.and_then(|at| pernode_core::json::range_within(&entry.json, metadata.as_bytes(), at));
    out.reserve(metadata.len() + 80);
    out.put_slice(br#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#);
    managed_fields.put(out, metadata.as_bytes(), at);
    out.put_u8(b'}');
}

/// The value of a top-level field of a JSON object, found without reading past it, nor
/// through `metadata.managedFields` (at `managed_fields`, if known). Stored objects have sorted
/// keys, so `metadata` comes before `spec` and `status`, most of the bytes: a garbage
/// collector's metadata watch gets every write, and scanning whole objects for it was 3% of a
/// converge's instructions. `None` when absent or not a JSON object.
fn top_level_field<'a>(
    json: &'a [u8],
    name: &str,
    managed_fields: Option<Range<usize>>,
) -> Option<&'a str> {
    ObjectMembers::with_hole(json, managed_fields)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// One stored object as PartialObjectMetadata.
pub fn partial_metadata(entry: &Entry) -> Bytes {
    let mut out = BytesMut::new();
    put_partial_metadata(&mut out, entry, ManagedFields::Kept);
    out.freeze()
}

/// A `meta.k8s.io/v1` PartialObjectMetadataList of the items, as kube-apiserver answers a list
/// asked for with `Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`.
pub fn encode_partial_list(
    rv: u64,
    page: Option<Page<'_>>,
    items: &[Entry],
    managed_fields: ManagedFields,
) -> Bytes {
    let mut out = BytesMut::with_capacity(items.len() * 512 + 160);
    out.put_slice(br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":""#);
    out.put_slice(rv.to_string().as_bytes());
    out.put_slice(b"\"");
    put_page(&mut out, page);
    out.put_slice(b"},\"items\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.put_u8(b',');
        }
        put_partial_metadata(&mut out, item, managed_fields);
    }
    out.put_slice(b"]}");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POD: BodyKind<'static> = BodyKind {
        group: "",
        version: "v1",
        kind: "Pod",
    };

    #[test]
    fn a_top_level_field_is_found_before_the_rest_is_read() {
        fn get<'a>(json: &'a str, name: &str) -> Option<&'a str> {
            top_level_field(json.as_bytes(), name, None)
        }
        let stored = r#"{"apiVersion":"v1","data":{"metadata":{"name":"inner"}},"kind":"X","metadata":{"name":"outer","labels":{"a":"b"}},"spec":{"x":[1,2,{"y":null}]}}"#;
        assert_eq!(
            get(stored, "metadata"),
            Some(r#"{"name":"outer","labels":{"a":"b"}}"#)
        );
        assert_eq!(get(stored, "kind"), Some(r#""X""#));
        assert_eq!(get(stored, "status"), None);
        // Whitespace, escaped keys and a field that is last.
        let spaced = "{ \"k\\u0069nd\" : 1 ,\n \"metadata\" : { \"name\" : \"a\" } }";
        assert_eq!(get(spaced, "kind"), Some("1"));
        assert_eq!(get(spaced, "metadata"), Some(r#"{ "name" : "a" }"#));
        // Not an object, empty, or cut short: nothing.
        for bad in [
            "[1]",
            "{}",
            "",
            "{\"metadata\"",
            "{\"a\":1 \"metadata\":{}}",
        ] {
            assert_eq!(get(bad, "metadata"), None, "{bad}");
        }
        // The field's value cut short.
        let cut = r#"{"metadata":{"name":"#;
        assert_eq!(get(cut, "metadata"), None);
    }

    #[test]
    fn partial_metadata_copies_the_stored_metadata() {
        let stored = Entry::new(
            "pods/default/p".into(),
            1,
            Bytes::from_static(br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","uid":"u"},"spec":{"nodeName":"n"}}"#),
            Default::default(),
        );
        assert_eq!(
            &partial_metadata(&stored)[..],
            br#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"p","uid":"u"}}"#
        );
        assert_eq!(
            &partial_metadata(&stored.with_json(Bytes::from_static(b"{}")))[..],
            br#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{}}"#
        );
    }

    #[test]
    fn yaml_and_json_bodies_decode() {
        let v = decode_object(
            Some("application/yaml"),
            b"kind: Pod\nmetadata:\n  name: x\n",
            &POD,
        )
        .unwrap();
        assert_eq!(v["metadata"]["name"], "x");
        let v = decode_object(
            Some("application/json; charset=utf-8"),
            br#"{"kind":"Pod"}"#,
            &POD,
        )
        .unwrap();
        assert_eq!(v["kind"], "Pod");
    }

    #[test]
    fn bad_bodies_are_rejected_with_upstream_codes() {
        assert_eq!(
            decode_object(Some("application/json"), b"{nope", &POD)
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            decode_object(Some("application/json"), b"[1]", &POD)
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            decode_object(Some("text/plain"), b"{}", &POD)
                .unwrap_err()
                .code,
            415
        );
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            decode_object(Some("application/json"), &big, &POD)
                .unwrap_err()
                .code,
            413
        );
    }

    #[test]
    fn unknown_fields_are_found_by_path() {
        let input = json!({"spec": {"a": 1, "bogus": 2, "list": [{"x": 1, "y": 2}], "gone": null}});
        let typed = json!({"spec": {"a": 1, "list": [{"x": 1}]}});
        assert_eq!(
            unknown_fields("", &input, &typed),
            vec!["spec.bogus", "spec.list[0].y"]
        );
        // A part checked alone is named from the object's root.
        assert_eq!(
            unknown_fields("spec", &input["spec"], &typed["spec"]),
            vec!["spec.bogus", "spec.list[0].y"]
        );
    }
}
