//! Query parameters and content negotiation of resource requests (list/watch options, dry run,
//! field validation, the Table Accept header).

use std::collections::HashMap;

use pernode_core::fields::FieldSelector;
use pernode_core::labels::LabelSelector;
use pernode_printers::IncludeObject;

use crate::error::ApiError;

/// The query parameters kubectl and client-go send, parsed. Unknown ones are ignored, as
/// upstream ignores them.
#[derive(Debug, Default, Clone)]
pub struct Query {
    raw: HashMap<String, String>,
    /// The query string as sent, for requests forwarded to a node (exec's repeated `command`).
    original: String,
}

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let original = query.unwrap_or("").to_string();
        Query {
            raw: pairs(&original).collect(),
            original,
        }
    }

    /// The query string as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw.get(key).map(String::as_str)
    }

    /// A boolean parameter as upstream's parameter codec reads one
    /// (`Convert_Slice_string_To_bool`): `None` when absent; `0` and `false` in any case are
    /// false; any other value, even an empty one or Python's `True`, is true.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key)
            .map(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
    }

    /// Whether the boolean parameter `key` is set and true (see [`Query::flag`]).
    pub fn is_true(&self, key: &str) -> bool {
        self.flag(key) == Some(true)
    }

    pub fn watch(&self) -> bool {
        self.is_true("watch")
    }

    pub fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }

    /// Every `dryRun` value sent (the parameter may repeat).
    pub fn dry_run_values(&self) -> Vec<String> {
        pairs(&self.original)
            .filter(|(k, _)| k == "dryRun")
            .map(|(_, v)| v)
            .collect()
    }

    pub fn field_validation(&self) -> FieldValidation {
        match self.get("fieldValidation") {
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            _ => FieldValidation::Warn,
        }
    }

    pub fn label_selector(&self) -> Result<Option<LabelSelector>, ApiError> {
        match self.get("labelSelector").filter(|s| !s.trim().is_empty()) {
            None => Ok(None),
            Some(s) => pernode_core::labels::parse(s)
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}"))),
        }
    }

    pub fn field_selector(&self) -> Result<Option<FieldSelector>, ApiError> {
        match self.get("fieldSelector").filter(|s| !s.trim().is_empty()) {
            None => Ok(None),
            Some(s) => FieldSelector::parse(s)
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}"))),
        }
    }

    pub fn limit(&self) -> Option<usize> {
        self.get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0)
    }

    pub fn timeout_seconds(&self) -> Option<u64> {
        self.get("timeoutSeconds").and_then(|t| t.parse().ok())
    }

    pub fn include_object(&self) -> IncludeObject {
        IncludeObject::from_query(self.get("includeObject"))
    }
}

/// `fieldValidation`: what to do with unknown or duplicate fields in a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Strict,
    Warn,
    Ignore,
}

/// The decoded `key=value` pairs of a query string, repeated keys included, in order.
fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

/// Percent-decoding of one query component (`+` is a space in form encoding).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Upstream's validation of a write's options (`CreateOptions`, `UpdateOptions`,
/// `PatchOptions`, `DeleteOptions`), before anything is written: `dryRun` values
/// ([`validate_dry_run`]) and `fieldValidation`.
pub fn validate_write_options(options_kind: &str, query: &Query) -> Result<(), ApiError> {
    validate_dry_run(options_kind, &query.dry_run_values())?;
    if options_kind != "DeleteOptions"
        && let Some(v) = query.get("fieldValidation")
        && !matches!(v, "" | "Ignore" | "Strict" | "Warn")
    {
        return Err(unsupported(
            options_kind,
            "fieldValidation",
            &pernode_core::goquote::quote(v),
            &["", "Ignore", "Strict", "Warn"],
        ));
    }
    Ok(())
}

/// Upstream's `ValidateDryRun`: `All` is the only dry-run value there is, and anything else is
/// refused, so that a misspelt dry run never becomes a real write.
pub fn validate_dry_run(options_kind: &str, values: &[String]) -> Result<(), ApiError> {
    if values.iter().all(|v| v == "All") {
        return Ok(());
    }
    let go_slice = pernode_core::goquote::string_slice(Some(values));
    Err(unsupported(options_kind, "dryRun", &go_slice, &["All"]))
}

/// The 422 of `field.NotSupported` on an options kind of `meta.k8s.io`.
fn unsupported(options_kind: &str, field: &str, rendered: &str, supported: &[&str]) -> ApiError {
    let supported: Vec<String> = supported
        .iter()
        .map(|v| pernode_core::goquote::quote(v))
        .collect();
    let detail = format!(
        "Unsupported value: {rendered}: supported values: {}",
        supported.join(", ")
    );
    ApiError::invalid(
        "meta.k8s.io",
        options_kind,
        "",
        format!("{options_kind}.meta.k8s.io \"\" is invalid: {field}: {detail}"),
        vec![crate::error::Cause {
            reason: "FieldValueNotSupported".into(),
            message: detail,
            field: field.into(),
        }],
    )
}

/// Upstream's decoding and validation of a list or watch's options: numbers that do not parse
/// are a 400 (as the parameter codec's `strconv.ParseInt`), and `resourceVersionMatch` is one
/// of upstream's values.
pub fn validate_list_options(query: &Query) -> Result<(), ApiError> {
    for number in ["limit", "timeoutSeconds"] {
        if let Some(v) = query.get(number)
            && v.parse::<i64>().is_err()
        {
            return Err(ApiError::bad_request(format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                pernode_core::goquote::quote(v)
            )));
        }
    }
    if query.flag("sendInitialEvents").is_some() {
        let mut errors = Vec::new();
        if query.get("resourceVersionMatch") != Some("NotOlderThan") {
            errors.push("resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan");
        }
        if !query.watch() {
            errors.push("sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list");
        }
        if !errors.is_empty() {
            let joined = match errors.as_slice() {
                [one] => one.to_string(),
                many => format!("[{}]", many.join(", ")),
            };
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                format!("ListOptions.meta.k8s.io \"\" is invalid: {joined}"),
                Vec::new(),
            ));
        }
    }
    // The watch cache's `ParseResourceVersion` refuses a version that is no unsigned number
    // (upstream's storage InvalidError; here always the 400 it is for the client).
    if let Some(rv) = query.get("resourceVersion")
        && !rv.is_empty()
        && rv.parse::<u64>().is_err()
    {
        return Err(ApiError::bad_request(format!(
            "resourceVersion: Invalid value: {}: strconv.ParseUint: parsing {}: invalid syntax",
            pernode_core::goquote::quote(rv),
            pernode_core::goquote::quote(rv)
        )));
    }
    // Upstream's ValidateListOptions: a list's match needs a version to match against (a
    // watch's options are validated apart: a watch-list sends a match without a version).
    if !query.watch()
        && query
            .get("resourceVersionMatch")
            .is_some_and(|m| !m.is_empty())
        && query.get("resourceVersion").is_none_or(str::is_empty)
    {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "ListOptions",
            "",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided".to_string(),
            Vec::new(),
        ));
    }
    if let Some(m) = query.get("resourceVersionMatch")
        && !matches!(m, "" | "Exact" | "NotOlderThan")
    {
        return Err(unsupported(
            "ListOptions",
            "resourceVersionMatch",
            &pernode_core::goquote::quote(m),
            &["Exact", "NotOlderThan", ""],
        ));
    }
    Ok(())
}

/// Whether the Accept header asks for a `meta.k8s.io/v1` Table (what human-readable
/// `kubectl get` sends).
pub fn wants_table(accept: Option<&str>) -> bool {
    wants_as(accept, "as=Table", |v| v.starts_with("v=v1"))
}

/// Whether the Accept header asks for `meta.k8s.io/v1` PartialObjectMetadata (one object or
/// watch events; what client-go's metadata informers and kube-rs's `metadata_watcher` send).
pub fn wants_partial_metadata(accept: Option<&str>) -> bool {
    wants_as(accept, "as=PartialObjectMetadata", |v| v == "v=v1")
}

/// Whether the Accept header asks for a `meta.k8s.io/v1` PartialObjectMetadataList.
pub fn wants_partial_metadata_list(accept: Option<&str>) -> bool {
    wants_as(accept, "as=PartialObjectMetadataList", |v| v == "v=v1")
}

/// Whether one of the Accept header's media types is JSON `as` the given meta.k8s.io kind
/// with a version `version` accepts.
fn wants_as(accept: Option<&str>, kind: &str, version: impl Fn(&str) -> bool) -> bool {
    let Some(accept) = accept else { return false };
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&kind)
            && params.contains(&"g=meta.k8s.io")
            && params.iter().any(|p| version(p))
    })
}

/// Upstream's content negotiation of an object or list: an Accept header none of whose media
/// ranges the resource's serializers (JSON, YAML, protobuf) or a wildcard match is a 406
/// `NotAcceptable`, never answered as JSON anyway.
pub fn check_accept(accept: Option<&str>) -> Result<(), ApiError> {
    const SERVED: &[&str] = &[
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    ];
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(());
    };
    let acceptable = accept.split(',').any(|range| {
        let media = crate::codec::media_type(Some(range));
        matches!(media.as_str(), "*/*" | "application/*") || SERVED.contains(&media.as_str())
    });
    if acceptable {
        return Ok(());
    }
    Err(ApiError::from_parts(
        406,
        "NotAcceptable",
        format!(
            "only the following media types are accepted: {}",
            SERVED.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_upstreams_parameter_codec() {
        let q = Query::parse(Some(
            "watch=True&follow=&force=1&a=0&b=FALSE&c=false&d=yes&sendInitialEvents=bogus",
        ));
        // Python's client sends `True`; an empty or unknown value is true as well.
        for key in ["watch", "follow", "force", "d", "sendInitialEvents"] {
            assert_eq!(q.flag(key), Some(true), "{key}");
        }
        for key in ["a", "b", "c"] {
            assert_eq!(q.flag(key), Some(false), "{key}");
        }
        assert_eq!(q.flag("absent"), None);
        assert!(q.watch());
        assert!(!q.is_true("b"));
    }

    #[test]
    fn decodes_selectors() {
        let q = Query::parse(Some(
            "labelSelector=name%21%3Dfilebeat&limit=500&fieldSelector=metadata.name%3Dx&watch=true",
        ));
        assert_eq!(q.get("labelSelector"), Some("name!=filebeat"));
        assert_eq!(q.get("fieldSelector"), Some("metadata.name=x"));
        assert_eq!(q.limit(), Some(500));
        assert!(q.watch());
        assert!(!q.dry_run());
    }

    #[test]
    fn table_accept_is_detected() {
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
        assert!(!wants_table(None));
    }

    #[test]
    fn partial_metadata_accept_is_detected() {
        let one = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
        let list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert!(wants_partial_metadata(Some(one)));
        assert!(!wants_partial_metadata(Some(list)));
        assert!(wants_partial_metadata_list(Some(list)));
        assert!(wants_partial_metadata_list(Some(&format!(
            "{list},application/json"
        ))));
        assert!(!wants_partial_metadata_list(Some(one)));
        assert!(!wants_partial_metadata(Some(
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1"
        )));
        assert!(!wants_partial_metadata(Some("application/json")));
    }

    #[test]
    fn malformed_percent_is_kept() {
        assert_eq!(decode("a%zz"), "a%zz");
        assert_eq!(decode("a%"), "a%");
        assert_eq!(decode("%41"), "A");
    }
}
