//! Field selectors, as apimachinery's `pkg/fields` (`fields.ParseSelector`).
//!
//! Terms are comma-separated `field=value`, `field==value` or `field!=value`; values may escape
//! `\`, `,` and `=` with a backslash; `field=` (empty value) matches an empty or absent field.
//! The API server inspects [`FieldSelector::requirements`] to reject fields a resource does not
//! support, then filters with [`FieldSelector::matches`].

use std::collections::BTreeMap;
use std::fmt;

use crate::labels::SelectorError;

/// Operator of a field requirement. `=` and `==` are the same operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOp {
    /// `field=value` or `field==value`
    Equals,
    /// `field!=value`
    NotEquals,
}

/// One `field op value` term (value already unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// The operator.
    pub op: FieldOp,
    /// The unescaped value.
    pub value: String,
}

impl FieldRequirement {
    fn matches<'v>(&self, get: &impl Fn(&str) -> Option<&'v str>) -> bool {
        let have = get(&self.field).unwrap_or("");
        match self.op {
            FieldOp::Equals => have == self.value,
            FieldOp::NotEquals => have != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            FieldOp::Equals => "=",
            FieldOp::NotEquals => "!=",
        };
        write!(f, "{}{}{}", self.field, op, escape_value(&self.value))
    }
}

/// A parsed field selector: the AND of its requirements. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// `fields.ParseSelector`.
    pub fn parse(s: &str) -> Result<FieldSelector, SelectorError> {
        parse(s)
    }

    /// The selector matching everything.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// `fields.OneTermEqualSelector`.
    pub fn one_term_equal(field: &str, value: &str) -> FieldSelector {
        FieldSelector {
            requirements: vec![FieldRequirement {
                field: field.to_string(),
                op: FieldOp::Equals,
                value: value.to_string(),
            }],
        }
    }

    /// True when nothing is restricted.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements (in upstream's order: terms sorted as strings).
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when every requirement holds; `get` returns a field's value, and an absent field
    /// counts as the empty string.
    pub fn matches<'v>(&self, get: impl Fn(&str) -> Option<&'v str>) -> bool {
        self.requirements.iter().all(|r| r.matches(&get))
    }

    /// [`FieldSelector::matches`] over a map of field values.
    pub fn matches_map(&self, fields: &BTreeMap<String, String>) -> bool {
        self.matches(|f| fields.get(f).map(String::as_str))
    }

    /// `Selector.RequiresExactMatch`: the value an `=` term requires for `field`, if any.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.op == FieldOp::Equals && r.field == field)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// `Selector.String()`: terms joined by `,`, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// `fields.EscapeValue`: prefixes `\`, `,` and `=` with a backslash.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `fields.UnescapeValue`.
pub fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => return Err(SelectorError::FieldEscape(format!("\\{c}"))),
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(SelectorError::FieldUnescaped(c)),
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::FieldEscape("\\".to_string()));
    }
    Ok(out)
}

/// Splits on commas not escaped by a backslash (the backslash stays in the term).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits at the first `!=`, `==` or `=` (checked in that order at each position).
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        if let Some(r) = rest.strip_prefix("!=") {
            return Some((&term[..i], FieldOp::NotEquals, r));
        }
        if let Some(r) = rest.strip_prefix("==") {
            return Some((&term[..i], FieldOp::Equals, r));
        }
        if let Some(r) = rest.strip_prefix('=') {
            return Some((&term[..i], FieldOp::Equals, r));
        }
    }
    None
}

/// `fields.ParseSelector`.
pub fn parse(selector: &str) -> Result<FieldSelector, SelectorError> {
    let mut parts = split_terms(selector);
    parts.sort_unstable();
    let mut requirements = Vec::new();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let Some((lhs, op, rhs)) = split_term(part) else {
            return Err(SelectorError::FieldTerm {
                selector: selector.to_string(),
                term: part.to_string(),
            });
        };
        requirements.push(FieldRequirement {
            field: lhs.to_string(),
            op,
            value: unescape_value(rhs)?,
        });
    }
    Ok(FieldSelector { requirements })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_prints() {
        let cases = [
            ("", ""),
            ("a=b", "a=b"),
            ("a==b", "a=b"),
            ("a!=b", "a!=b"),
            ("b=c,a=b", "a=b,b=c"),
            ("a=", "a="),
            (",a=b,", "a=b"),
            (
                "metadata.name=x,spec.nodeName!=n1",
                "metadata.name=x,spec.nodeName!=n1",
            ),
            ("a=b\\,c", "a=b\\,c"),
            ("a=b\\=c\\\\", "a=b\\=c\\\\"),
            ("=x", "=x"),
        ];
        for (input, want) in cases {
            let sel = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(sel.to_string(), want, "{input}");
        }
        let sel = parse("a=b\\,c,x!=y").expect("escaped");
        assert_eq!(
            sel.requirements(),
            &[
                FieldRequirement {
                    field: "a".into(),
                    op: FieldOp::Equals,
                    value: "b,c".into()
                },
                FieldRequirement {
                    field: "x".into(),
                    op: FieldOp::NotEquals,
                    value: "y".into()
                },
            ]
        );
        assert_eq!(sel.requires_exact_match("a"), Some("b,c"));
        assert_eq!(sel.requires_exact_match("x"), None);
        assert!(parse("").expect("empty").is_empty());
    }

    /// Found by the `selectors` fuzz target: terms are ordered by their text as written, as
    /// upstream's `parseSelector` sorts them, so `==` terms may move when printed as `=` and
    /// parsed again; the terms and what they match stay the same.
    #[test]
    fn terms_sort_by_their_written_text_as_upstream() {
        let sel = parse("in!=notin, a==notin, a=b").expect("valid");
        assert_eq!(sel.to_string(), " a=notin, a=b,in!=notin");
        let again = parse(&sel.to_string()).expect("printed selector parses");
        assert_eq!(again.to_string(), " a=b, a=notin,in!=notin");
        let mut terms: Vec<String> = sel.requirements().iter().map(|r| r.to_string()).collect();
        let mut terms_again: Vec<String> =
            again.requirements().iter().map(|r| r.to_string()).collect();
        terms.sort();
        terms_again.sort();
        assert_eq!(terms, terms_again);
    }

    #[test]
    fn rejects_like_upstream() {
        assert_eq!(
            parse("a,b=c").expect_err("a").to_string(),
            "invalid selector: 'a,b=c'; can't understand 'a'"
        );
        assert_eq!(
            parse("a=b=c").expect_err("=").to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            parse("a=b\\x").expect_err("x").to_string(),
            "invalid field selector: invalid escape sequence: \\x"
        );
        assert_eq!(
            parse("a=b\\").expect_err("end").to_string(),
            "invalid field selector: invalid escape sequence: \\"
        );
        assert!(parse("a!==b").is_err());
        assert_eq!(
            parse("é=ü,ü").expect_err("x").to_string(),
            "invalid selector: 'é=ü,ü'; can't understand 'ü'"
        );
        assert_eq!(parse(r"é=ü\\é").expect("é").requirements()[0].value, r"ü\é");
    }

    #[test]
    fn matches_with_absent_as_empty() {
        let f = fields(&[("metadata.name", "x"), ("spec.nodeName", "")]);
        let yes = [
            "",
            "metadata.name=x",
            "metadata.name==x",
            "metadata.name!=y",
            "spec.nodeName=",
            "status.phase=",
            "status.phase!=Running",
        ];
        for s in yes {
            assert!(parse(s).expect(s).matches_map(&f), "{s}");
        }
        let no = [
            "metadata.name=y",
            "metadata.name!=x",
            "spec.nodeName!=",
            "status.phase=Running",
            "metadata.name=x,spec.nodeName=n",
        ];
        for s in no {
            assert!(!parse(s).expect(s).matches_map(&f), "{s}");
        }
        let sel = FieldSelector::one_term_equal("metadata.name", "x");
        assert!(sel.matches(|k| if k == "metadata.name" {
            Some("x")
        } else {
            None
        }));
        assert_eq!(escape_value("a,b=c\\"), "a\\,b\\=c\\\\");
    }
}
