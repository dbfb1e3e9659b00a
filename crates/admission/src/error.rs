//! Field errors with upstream's wording.
//!
//! This mirrors `k8s.io/apimachinery/pkg/util/validation/field.Error`: the
//! `Display` form is `<field>: <body>` and [`FieldError::cause_message`] is
//! `ErrorBody()`, the text that lands in a 422 Status's `details.causes[].message`
//! and that kubectl prints. Upstream renders the bad value with Go's `fmt`
//! verbs (`%q` for strings, `%v` for numbers, `%#v` for maps and structs), so
//! besides the JSON value each error can carry the Go rendering of a typed
//! value that JSON alone cannot reproduce (for example
//! `intstr.IntOrString{Type:0, IntVal:1, StrVal:""}`).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// The kind of a field error; the `Display` text is upstream's `ErrorType.String()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// `Not found`
    NotFound,
    /// `Required value`
    Required,
    /// `Duplicate value`
    Duplicate,
    /// `Invalid value`
    Invalid,
    /// `Unsupported value`, with the values upstream lists as supported.
    NotSupported {
        /// The supported values, in upstream's order.
        supported: Vec<String>,
    },
    /// `Forbidden`
    Forbidden,
    /// `Too long`; `max` is the limit in bytes (negative: unknown).
    TooLong {
        /// The limit in bytes, or a negative number when upstream gives none.
        max: i64,
    },
    /// `Too many`; `actual` items where at most `max` are allowed.
    TooMany {
        /// How many there were (negative: unknown).
        actual: i64,
        /// The limit (negative: unknown).
        max: i64,
    },
    /// `Internal error`
    Internal,
}

impl ErrorKind {
    /// Upstream's `ErrorType.String()`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::NotFound => "Not found",
            ErrorKind::Required => "Required value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::NotSupported { .. } => "Unsupported value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong { .. } => "Too long",
            ErrorKind::TooMany { .. } => "Too many",
            ErrorKind::Internal => "Internal error",
        }
    }
}

/// One validation failure at one field path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// The field path as upstream prints it (`spec.template.spec.containers[0].name`).
    pub field: String,
    /// The offending value as JSON, if upstream reports one.
    pub bad_value: Option<Value>,
    /// Upstream's detail text (may be empty).
    pub detail: String,
    /// The Go `fmt` rendering of a typed bad value, when it cannot be derived
    /// from `bad_value` (structs such as `v1.LabelSelector{...}`). Takes
    /// precedence over `bad_value` in [`FieldError::cause_message`].
    pub go_value: Option<String>,
}

impl FieldError {
    fn new(kind: ErrorKind, field: &str, bad_value: Option<Value>, detail: &str) -> Self {
        FieldError {
            kind,
            field: field.to_string(),
            bad_value,
            detail: detail.to_string(),
            go_value: None,
        }
    }

    /// `field.Required(path, detail)`.
    pub fn required(field: &str, detail: &str) -> Self {
        Self::new(ErrorKind::Required, field, None, detail)
    }

    /// `field.Invalid(path, value, detail)`.
    pub fn invalid(field: &str, value: impl Into<Value>, detail: &str) -> Self {
        Self::new(ErrorKind::Invalid, field, Some(value.into()), detail)
    }

    /// `field.Invalid` for a typed Go value whose `%#v` form is given.
    pub fn invalid_go(field: &str, value: Value, go: String, detail: &str) -> Self {
        let mut e = Self::new(ErrorKind::Invalid, field, Some(value), detail);
        e.go_value = Some(go);
        e
    }

    /// `field.NotSupported(path, value, supported)`; the detail lists the
    /// supported values quoted, as upstream does.
    pub fn not_supported(field: &str, value: impl Into<Value>, supported: &[&str]) -> Self {
        let supported: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            ErrorKind::NotSupported { supported },
            field,
            Some(value.into()),
            &detail,
        )
    }

    /// `field.Forbidden(path, detail)`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(ErrorKind::Forbidden, field, None, detail)
    }

    /// `field.Duplicate(path, value)`.
    pub fn duplicate(field: &str, value: impl Into<Value>) -> Self {
        Self::new(ErrorKind::Duplicate, field, Some(value.into()), "")
    }

    /// `field.NotFound(path, value)`.
    pub fn not_found(field: &str, value: impl Into<Value>) -> Self {
        Self::new(ErrorKind::NotFound, field, Some(value.into()), "")
    }

    /// `field.TooLong(path, value, max)`: "may not be more than N bytes".
    pub fn too_long(field: &str, max: i64) -> Self {
        let detail = if max >= 0 {
            let unit = if max == 1 { "byte" } else { "bytes" };
            format!("may not be more than {max} {unit}")
        } else {
            "value is too long".to_string()
        };
        Self::new(ErrorKind::TooLong { max }, field, None, &detail)
    }

    /// `field.TooMany(path, actual, max)`.
    pub fn too_many(field: &str, actual: i64, max: i64) -> Self {
        let detail = if max >= 0 {
            let unit = if max == 1 { "item" } else { "items" };
            format!("must have at most {max} {unit}")
        } else {
            "has too many items".to_string()
        };
        let value = if actual >= 0 {
            Some(Value::from(actual))
        } else {
            None
        };
        Self::new(ErrorKind::TooMany { actual, max }, field, value, &detail)
    }

    /// `field.InternalError(path, err)`.
    pub fn internal(field: &str, detail: &str) -> Self {
        Self::new(ErrorKind::Internal, field, None, detail)
    }

    /// Upstream's `metav1.CauseType` for this error (`FieldValueRequired`, ...).
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::NotFound => "FieldValueNotFound",
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::NotSupported { .. } => "FieldValueNotSupported",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong { .. } => "FieldValueTooLong",
            ErrorKind::TooMany { .. } => "FieldValueTooMany",
            ErrorKind::Internal => "InternalError",
        }
    }

    /// Upstream's `field.Error.ErrorBody()`: the type, the bad value where the
    /// type shows one, and the detail.
    pub fn cause_message(&self) -> String {
        let mut s = match self.kind {
            // These types never print the value upstream.
            ErrorKind::Required
            | ErrorKind::Forbidden
            | ErrorKind::TooLong { .. }
            | ErrorKind::Internal => self.kind.as_str().to_string(),
            _ => {
                let v = match (&self.go_value, &self.bad_value) {
                    (Some(g), _) => g.clone(),
                    (None, Some(v)) => go_render(v),
                    (None, None) => "null".to_string(),
                };
                format!("{}: {}", self.kind.as_str(), v)
            }
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.cause_message())
    }
}

impl std::error::Error for FieldError {}

/// Upstream's `apierrors.NewInvalid(...).Error()`: `Kind.group "name" is invalid: ...`.
///
/// Like `utilerrors.Aggregate`, identical messages are printed once; one
/// message prints bare, several print as `[a, b]`. An empty group gives the
/// core form (`Pod "x" is invalid: ...`).
pub fn invalid_message(kind: &str, group: &str, name: &str, errs: &[FieldError]) -> String {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let head = format!("{qualified} {} is invalid", go_quote(name));
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let m = e.to_string();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => head,
        1 => format!("{head}: {}", seen[0]),
        _ => format!("{head}: [{}]", seen.join(", ")),
    }
}

/// Go's `strconv.Quote`, shared with pernode-core's selector messages.
pub use pernode_core::goquote::quote as go_quote;

/// Render a JSON value as upstream's `ErrorBody` would render the Go value it
/// came from: strings quoted (`%q`), numbers and booleans bare (`%v`), maps of
/// strings as `map[string]string{"k":"v"}` and lists of strings as
/// `[]string{"a", "b"}` (`%#v`). Anything else falls back to compact JSON.
pub fn go_render(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Object(m) if m.values().all(Value::is_string) => {
            let map: BTreeMap<&String, &str> = m
                .iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
                .collect();
            go_string_map(map.into_iter().map(|(k, v)| (k.as_str(), v)))
        }
        Value::Array(a) if a.iter().all(Value::is_string) => {
            let items: Vec<String> = a
                .iter()
                .map(|s| go_quote(s.as_str().unwrap_or_default()))
                .collect();
            format!("[]string{{{}}}", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// `%+v` of a JSON value as Go decodes it into `interface{}` (upstream prints a strategic
/// merge patch this way in its errors): `map[k:v ...]` with sorted keys, `[a b]`, strings
/// bare, numbers as float64's `%v`, `<nil>` for null.
pub fn go_map_render(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or_default()),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_map_render).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let items: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_map_render(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Go's `%v` of a float64: the shortest digits, in exponent form below 1e-4 or from 1e6
/// (`1e+06`, `1.5e-05`).
fn go_float(f: f64) -> String {
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if f != 0.0 && !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// `%#v` of a `map[string]string` (keys sorted, as Go's fmt does).
pub(crate) fn go_string_map<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let items: Vec<String> = entries
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
        .collect();
    format!("map[string]string{{{}}}", items.join(", "))
}

/// `%#v` of an optional `map[string]string` field: nil prints as
/// `map[string]string(nil)`.
pub(crate) fn go_opt_string_map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "map[string]string(nil)".to_string(),
        Some(m) => go_string_map(m.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn not_supported_body() {
        let e = FieldError::not_supported("spec.template.spec.restartPolicy", "Never", &["Always"]);
        assert_eq!(
            e.cause_message(),
            r#"Unsupported value: "Never": supported values: "Always""#
        );
        assert_eq!(e.reason(), "FieldValueNotSupported");
    }

    #[test]
    fn invalid_map_body() {
        let e = FieldError::invalid(
            "spec.template.metadata.labels",
            json!({"app": "two", "a": "b"}),
            "`selector` does not match template `labels`",
        );
        assert_eq!(
            e.cause_message(),
            r#"Invalid value: map[string]string{"a":"b", "app":"two"}: `selector` does not match template `labels`"#
        );
    }

    #[test]
    fn required_hides_value() {
        let e = FieldError::required("spec.containers", "");
        assert_eq!(e.to_string(), "spec.containers: Required value");
        assert_eq!(e.reason(), "FieldValueRequired");
    }

    #[test]
    fn quote_escapes() {
        assert_eq!(go_quote("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\x01é""#);
    }

    #[test]
    fn message_forms() {
        let a = FieldError::required("spec.a", "");
        let b = FieldError::invalid("spec.b", 3, "bad");
        assert_eq!(
            invalid_message("DaemonSet", "apps", "x", std::slice::from_ref(&a)),
            r#"DaemonSet.apps "x" is invalid: spec.a: Required value"#
        );
        assert_eq!(
            invalid_message("DaemonSet", "apps", "x", &[a.clone(), b.clone(), a.clone()]),
            r#"DaemonSet.apps "x" is invalid: [spec.a: Required value, spec.b: Invalid value: 3: bad]"#
        );
        assert_eq!(
            invalid_message("Pod", "", "p", &[b]),
            r#"Pod "p" is invalid: spec.b: Invalid value: 3: bad"#
        );
        assert_eq!(
            invalid_message("Pod", "", "p", &[]),
            r#"Pod "p" is invalid"#
        );
    }
}

#[cfg(test)]
mod go_map_tests {
    use super::*;

    #[test]
    fn maps_print_as_go_prints_interfaces() {
        let v = serde_json::json!({"spec": {"renewTime": "2024-01-02T03:04:05Z", "n": 1000000,
            "m": 3, "f": 0.5, "l": ["a", null, true]}});
        assert_eq!(
            go_map_render(&v),
            "map[spec:map[f:0.5 l:[a <nil> true] m:3 n:1e+06 renewTime:2024-01-02T03:04:05Z]]"
        );
    }
}
