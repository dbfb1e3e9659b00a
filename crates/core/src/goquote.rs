//! Go-style rendering of values inside upstream error messages (`%q`, `%#v` of `[]string`,
//! and `field.Error` bodies), so our texts match kube-apiserver's byte for byte.

use std::fmt::Write;

/// Go's `strconv.Quote` (what `%q` prints for a string).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#v` of a `[]string` (`None` is a nil slice).
pub fn string_slice(values: Option<&[String]>) -> String {
    match values {
        None => "[]string(nil)".to_string(),
        Some(vals) => {
            let inner: Vec<String> = vals.iter().map(|v| quote(v)).collect();
            format!("[]string{{{}}}", inner.join(", "))
        }
    }
}

/// `field.Invalid(path, value, detail).Error()` where the value is already rendered.
pub(crate) fn invalid(path: &str, rendered_value: &str, detail: &str) -> String {
    if detail.is_empty() {
        format!("{path}: Invalid value: {rendered_value}")
    } else {
        format!("{path}: Invalid value: {rendered_value}: {detail}")
    }
}

/// `utilerrors.NewAggregate(errs).Error()`: one message as is, several de-duplicated inside `[...]`.
pub fn aggregate(msgs: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for m in msgs {
        if !seen.contains(&m.as_str()) {
            seen.push(m);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen[0].to_string(),
        _ => format!("[{}]", seen.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("a\"b\\"), "\"a\\\"b\\\\\"");
        assert_eq!(quote("\n\u{1}"), "\"\\n\\x01\"");
        assert_eq!(quote("é"), "\"é\"");
    }

    #[test]
    fn slices_like_go() {
        assert_eq!(string_slice(None), "[]string(nil)");
        assert_eq!(string_slice(Some(&[])), "[]string{}");
        assert_eq!(
            string_slice(Some(&["a".to_string(), "b".to_string()])),
            "[]string{\"a\", \"b\"}"
        );
    }

    #[test]
    fn aggregates_like_go() {
        assert_eq!(aggregate(&[]), "");
        assert_eq!(aggregate(&["x".into()]), "x");
        assert_eq!(aggregate(&["x".into(), "x".into()]), "x");
        assert_eq!(aggregate(&["x".into(), "y".into()]), "[x, y]");
    }
}
