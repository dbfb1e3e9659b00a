//! Label selectors, as apimachinery's `pkg/labels` and `metav1.LabelSelectorAsSelector`.
//!
//! [`parse`] reads upstream's string syntax (`a=b,c!=d,e in (x,y),f notin (z),g,!h`, plus `gt`/`lt`
//! written `k>1`, `k<1`), validating keys and values as upstream and returning upstream's error
//! texts; [`from_k8s`] converts a `metav1.LabelSelector`. A [`LabelSelector`] matches label maps
//! and prints upstream's canonical string (requirements sorted by key, set values sorted).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

use crate::goquote;
use crate::names;

/// A selector that could not be parsed or converted. `Display` is upstream's error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector string is malformed (upstream's `labels.Parse` message, e.g.
    /// `unable to parse requirement: <nil>: Invalid value: "a b": ...` or
    /// `found ',', expected: !, identifier, or 'end of string'`).
    #[error("{0}")]
    Parse(String),
    /// A requirement failed validation (upstream's `labels.NewRequirement` aggregate).
    #[error("{0}")]
    InvalidRequirement(String),
    /// A `metav1.LabelSelector` uses an operator other than In/NotIn/Exists/DoesNotExist.
    #[error("{} is not a valid pod selector operator", goquote::quote(.0))]
    InvalidOperator(String),
    /// A field selector term has no `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    FieldTerm {
        /// The whole selector as given.
        selector: String,
        /// The term that could not be understood.
        term: String,
    },
    /// A field selector value has a backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    FieldEscape(String),
    /// A field selector value has an unescaped `,` or `=` (upstream prints the code point).
    #[error("invalid field selector: unescaped character in value: {}", *.0 as u32)]
    FieldUnescaped(char),
}

/// Operator of one label requirement (upstream's `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `k=v`
    Equals,
    /// `k==v`
    DoubleEquals,
    /// `k!=v` (also true when the label is absent)
    NotEquals,
    /// `k in (a,b)`
    In,
    /// `k notin (a,b)` (also true when the label is absent)
    NotIn,
    /// `k`
    Exists,
    /// `!k`
    DoesNotExist,
    /// `k>n` (node selectors; integer compare)
    GreaterThan,
    /// `k<n` (node selectors; integer compare)
    LessThan,
}

impl Operator {
    /// Upstream's operator string (`=`, `==`, `!=`, `in`, `notin`, `exists`, `!`, `gt`, `lt`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One requirement of a selector: key, operator and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    op: Operator,
    values: Vec<String>,
}

fn validate_label_key(key: &str, path: &str) -> Option<String> {
    let errs = names::is_qualified_name(key);
    if errs.is_empty() {
        None
    } else {
        Some(goquote::invalid(
            path,
            &goquote::quote(key),
            &errs.join("; "),
        ))
    }
}

impl Requirement {
    /// `labels.NewRequirement`: validates the key (qualified name), the value count for the
    /// operator, Gt/Lt integers and every value (label value syntax).
    ///
    /// `values` is `None` for a nil slice (only affects the wording of errors).
    pub fn new(
        key: &str,
        op: Operator,
        values: Option<Vec<String>>,
    ) -> Result<Requirement, SelectorError> {
        let mut errs: Vec<String> = Vec::new();
        if let Some(e) = validate_label_key(key, "key") {
            errs.push(e);
        }
        let vals_ref = values.as_deref();
        let vals: &[String] = vals_ref.unwrap_or(&[]);
        let rendered = || goquote::string_slice(vals_ref);
        match op {
            Operator::In | Operator::NotIn => {
                if vals.is_empty() {
                    errs.push(goquote::invalid(
                        "values",
                        &rendered(),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if vals.len() != 1 {
                    errs.push(goquote::invalid(
                        "values",
                        &rendered(),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !vals.is_empty() {
                    errs.push(goquote::invalid(
                        "values",
                        &rendered(),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if vals.len() != 1 {
                    errs.push(goquote::invalid(
                        "values",
                        &rendered(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in vals.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(goquote::invalid(
                            &format!("values[{i}]"),
                            &goquote::quote(v),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in vals.iter().enumerate() {
            let verrs = names::is_valid_label_value(v);
            if !verrs.is_empty() {
                errs.push(goquote::invalid(
                    &format!("values[{i}][{key}]"),
                    &goquote::quote(v),
                    &verrs.join("; "),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(SelectorError::InvalidRequirement(goquote::aggregate(&errs)));
        }
        Ok(Requirement {
            key: key.to_string(),
            op,
            values: values.unwrap_or_default(),
        })
    }

    /// A requirement built without validation (as `labels.SelectorFromSet` does).
    pub fn new_unchecked(key: &str, op: Operator, values: Vec<String>) -> Requirement {
        Requirement {
            key: key.to_string(),
            op,
            values,
        }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.op
    }

    /// The values, in the order given (parsed set values are sorted and de-duplicated).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// `Requirement.Matches`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(&|k| labels.get(k).map(String::as_str))
    }

    /// [`Requirement::matches`] against any label set, given as a lookup (for label sets not
    /// kept in a map, such as the store's compact index).
    pub fn matches_with<'v>(&self, get: &impl Fn(&str) -> Option<&'v str>) -> bool {
        match self.op {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                get(&self.key).is_some_and(|v| self.values.iter().any(|w| w == v))
            }
            Operator::NotIn | Operator::NotEquals => {
                get(&self.key).is_none_or(|v| !self.values.iter().any(|w| w == v))
            }
            Operator::Exists => get(&self.key).is_some(),
            Operator::DoesNotExist => get(&self.key).is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = get(&self.key).and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.op == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// `Requirement.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (open, close) = match self.op {
            Operator::Equals => ("=", ""),
            Operator::DoubleEquals => ("==", ""),
            Operator::NotEquals => ("!=", ""),
            Operator::In => (" in (", ")"),
            Operator::NotIn => (" notin (", ")"),
            Operator::GreaterThan => (">", ""),
            Operator::LessThan => ("<", ""),
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(open)?;
        if self.values.len() == 1 {
            f.write_str(&self.values[0])?;
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            f.write_str(&sorted.join(","))?;
        }
        f.write_str(close)
    }
}

/// A parsed label selector: the AND of its requirements, kept sorted by key.
///
/// The empty selector matches everything; [`LabelSelector::nothing`] (what a nil
/// `metav1.LabelSelector` converts to) matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

/// The selector that matches every label set.
pub fn everything() -> LabelSelector {
    LabelSelector::default()
}

impl LabelSelector {
    /// The selector that matches every label set.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// The selector that matches nothing (`labels.Nothing()`, a nil `metav1.LabelSelector`).
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// `labels.SelectorFromSet`: `k=v` for every pair, unvalidated. An empty map selects
    /// everything.
    pub fn from_set(set: &BTreeMap<String, String>) -> LabelSelector {
        LabelSelector {
            requirements: set
                .iter()
                .map(|(k, v)| Requirement::new_unchecked(k, Operator::Equals, vec![v.clone()]))
                .collect(),
            nothing: false,
        }
    }

    /// Builds a selector from requirements (sorted by key, stably, as `Selector.Add`).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> LabelSelector {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// `Selector.Add`: a copy with more requirements.
    pub fn add(&self, more: impl IntoIterator<Item = Requirement>) -> LabelSelector {
        if self.nothing {
            return self.clone();
        }
        let mut reqs = self.requirements.clone();
        reqs.extend(more);
        LabelSelector::from_requirements(reqs)
    }

    /// True when the selector does not restrict anything (`Selector.Empty()`).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for [`LabelSelector::nothing`].
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when every requirement matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// [`LabelSelector::matches`] against any label set, given as a lookup.
    pub fn matches_with<'v>(&self, get: impl Fn(&str) -> Option<&'v str>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_with(&get))
    }

    /// `Selector.RequiresExactMatch`: the value the selector requires for `label`
    /// (`=`, `==`, or `in` with one value), if any.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match (r.op, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    /// `Selector.String()`: requirements joined by `,` (empty for everything and nothing).
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

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// `metav1.LabelSelectorAsSelector` on a present selector: matchLabels as `=` and
/// matchExpressions (In, NotIn, Exists, DoesNotExist), validated; an empty selector selects
/// everything.
pub fn from_k8s(sel: &metav1::LabelSelector) -> Result<LabelSelector, SelectorError> {
    let mut reqs = Vec::new();
    if let Some(ml) = &sel.match_labels {
        for (k, v) in ml {
            reqs.push(Requirement::new(
                k,
                Operator::Equals,
                Some(vec![v.clone()]),
            )?);
        }
    }
    for expr in sel.match_expressions.iter().flatten() {
        let op = match expr.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => return Err(SelectorError::InvalidOperator(other.to_string())),
        };
        let values = expr.values.clone().filter(|v| !v.is_empty());
        reqs.push(Requirement::new(&expr.key, op, values)?);
    }
    Ok(LabelSelector::from_requirements(reqs))
}

/// `metav1.LabelSelectorAsSelector` including the nil case (`None` selects nothing).
pub fn from_k8s_opt(sel: Option<&metav1::LabelSelector>) -> Result<LabelSelector, SelectorError> {
    match sel {
        None => Ok(LabelSelector::nothing()),
        Some(s) => from_k8s(s),
    }
}

/// `metav1.FormatLabelSelector`: the canonical string, `<none>` when it is empty, `<error>`
/// when the selector is invalid.
pub fn format_label_selector(sel: &metav1::LabelSelector) -> String {
    match from_k8s(sel) {
        Err(_) => "<error>".to_string(),
        Ok(s) => {
            let out = s.to_string();
            if out.is_empty() {
                "<none>".to_string()
            } else {
                out
            }
        }
    }
}

/// `labels.FormatLabels`: `k=v,k2=v2` sorted by key, `<none>` when empty.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".to_string();
    }
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(",")
}

// ---------------------------------------------------------------------------------------------
// The string parser: a port of upstream's lexer and recursive-descent parser.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn literal_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// Next byte, or 0 at the end (upstream treats a NUL byte as the end too).
    fn read(&mut self) -> u8 {
        match self.s.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut end = start;
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if is_special(c) || is_whitespace(c) {
                self.unread();
                break;
            }
            end = self.pos;
        }
        // The delimiters are ASCII, so this slice is valid UTF-8.
        let lit = self.s.get(start..end).unwrap_or_default().to_string();
        match literal_token(lit.as_bytes()) {
            Some(t) => (t, lit),
            None => (Token::Identifier, lit),
        }
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut buffer: Vec<u8> = Vec::new();
        let mut last: Option<(Token, String)> = None;
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if is_special(c) {
                buffer.push(c);
                if let Some(t) = literal_token(&buffer) {
                    last = Some((t, String::from_utf8_lossy(&buffer).into_owned()));
                } else if last.is_some() {
                    self.unread();
                    break;
                }
            } else {
                self.unread();
                break;
            }
        }
        match last {
            Some(t) => t,
            None => (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&buffer)
                ),
            ),
        }
    }

    fn lex(&mut self) -> (Token, String) {
        let mut c = self.read();
        while is_whitespace(c) {
            c = self.read();
        }
        if c == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special(c) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn item(&self, at: usize, ctx: Context) -> (Token, String) {
        let (tok, lit) = self
            .items
            .get(at)
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        if ctx == Context::Values && matches!(tok, Token::In | Token::NotIn) {
            (Token::Identifier, lit)
        } else {
            (tok, lit)
        }
    }

    fn lookahead(&self, ctx: Context) -> (Token, String) {
        self.item(self.position, ctx)
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let it = self.item(self.position, ctx);
        self.position += 1;
        it
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self.parse_requirement().map_err(|e| {
                        SelectorError::Parse(format!("unable to parse requirement: {e}"))
                    })?;
                    reqs.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(reqs),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(SelectorError::Parse(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError::Parse(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Token::EndOfString => return Ok(reqs),
                _ => {
                    return Err(SelectorError::Parse(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    /// Errors here are plain messages; the caller wraps them.
    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = op {
            return Requirement::new(&key, op, Some(Vec::new())).map_err(|e| e.to_string());
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, op, Some(values)).map_err(|e| e.to_string())
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        if let Some(e) = validate_label_key(&lit, "<nil>") {
            return Err(e);
        }
        let (t, _) = self.lookahead(Context::Values);
        if matches!(t, Token::EndOfString | Token::Comma) && op != Some(Operator::DoesNotExist) {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let s = self.parse_identifiers_list()?;
                let (t, _) = self.consume(Context::Values);
                if t != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    /// A sorted, de-duplicated set (upstream's `sets.String.List()`).
    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (t2, l2) = self.lookahead(Context::Values);
                    match t2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set.into_iter().collect()),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (t2, _) = self.lookahead(Context::Values);
                    if t2 == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set.into_iter().collect());
                    }
                    if t2 == Token::Comma {
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Context::Values);
        if matches!(tok, Token::EndOfString | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

/// `labels.Parse`: parses upstream's selector syntax, with upstream's error messages.
///
/// The empty string (or only whitespace) selects everything.
pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
    let mut lexer = Lexer { s, pos: 0 };
    let mut items = Vec::new();
    loop {
        let (tok, lit) = lexer.lex();
        items.push((tok, lit));
        if tok == Token::EndOfString {
            break;
        }
    }
    let mut p = Parser { items, position: 0 };
    let reqs = p.parse()?;
    Ok(LabelSelector::from_requirements(reqs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_valid_selectors_and_prints_canonically() {
        let cases = [
            ("", ""),
            ("   ", ""),
            ("x=a,y=b,z=c", "x=a,y=b,z=c"),
            ("x = a , y = b", "x=a,y=b"),
            ("z=c,y=b,x=a", "x=a,y=b,z=c"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("x in (a,b)", "x in (a,b)"),
            ("x in (b,a,a)", "x in (a,b)"),
            ("x notin (z)", "x notin (z)"),
            (
                "x in (foo,,baz),y,z notin ()",
                "x in (,baz,foo),y,z notin ()",
            ),
            ("x in (,)", "x in ()"),
            ("x in (,a)", "x in (,a)"),
            ("!x", "!x"),
            ("x", "x"),
            ("x=", "x="),
            ("x=,z= ", "x=,z="),
            ("x>1", "x>1"),
            ("x<-1", ""), // invalid: "-1" is not a label value (checked below)
            ("w in (a) , !x,y", "w in (a),!x,y"),
            (
                "a=b,c!=d,e in (x,y),f notin (z),g,!h",
                "a=b,c!=d,e in (x,y),f notin (z),g,!h",
            ),
            ("x in (in)", "x in (in)"),
            ("in in (notin)", "in in (notin)"),
            ("x=in", "x=in"),
            ("example.com/app=web", "example.com/app=web"),
            ("x\tin\n(a)", "x in (a)"),
        ];
        for (input, want) in cases {
            if input == "x<-1" {
                assert!(parse(input).is_err());
                continue;
            }
            let sel = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(sel.to_string(), want, "{input}");
        }
    }

    #[test]
    fn rejects_invalid_selectors_with_upstream_messages() {
        let cases = [
            ("x==a==b", "found '==', expected: ',' or 'end of string'"),
            ("!x=a", "found '=', expected: ',' or 'end of string'"),
            ("x in (a", "found '', expected: ',' or ')'"),
            ("x in a", "found 'a' expected: '('"),
            ("x in (a b)", "found 'b', expected: ',' or ')'"),
            ("x in (a,=)", "found '=', expected: ',', or identifier"),
            ("x in (=)", "found '=', expected: ',', ')' or identifier"),
            ("x=(a)", "found '(', expected: identifier"),
            ("x y", "found 'y', expected: in, notin, =, ==, !=, gt, lt"),
            ("x,", "found '', expected: identifier after ','"),
            (
                ",x",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            ("x,,y", "found ',', expected: identifier after ','"),
            (
                "x>a",
                "values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
        ];
        for (input, want) in cases {
            let err = parse(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input}: got {err:?}, want {want:?}");
        }
        // `x=a||y=b`: the `||` is not a special symbol, so it is lexed into the value.
        let e = parse("x=a||y=b").expect_err("x=a||y=b").to_string();
        assert!(
            e.starts_with("unable to parse requirement: values[0][x]: Invalid value: \"a||y\""),
            "{e}"
        );
        assert_eq!(
            parse("app:monolith").expect_err("colon").to_string(),
            "unable to parse requirement: <nil>: Invalid value: \"app:monolith\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            parse("x=a b").expect_err("space").to_string(),
            "found 'b', expected: ',' or 'end of string'"
        );
        let long = "a".repeat(64);
        assert_eq!(
            parse(&format!("x={long}")).expect_err("long").to_string(),
            format!(
                "unable to parse requirement: values[0][x]: Invalid value: \"{long}\": must be no more than 63 characters"
            )
        );
    }

    #[test]
    fn matches_like_upstream() {
        let l = set(&[("x", "a"), ("y", "b"), ("n", "5")]);
        let yes = [
            "",
            "x=a",
            "x==a",
            "x!=b",
            "z!=a",
            "x in (a,c)",
            "z notin (a)",
            "x notin (c)",
            "x",
            "!z",
            "n>4",
            "n<6",
            "x=a,y=b",
        ];
        for s in yes {
            assert!(parse(s).expect(s).matches(&l), "{s}");
        }
        let no = [
            "x=b",
            "z=a",
            "x!=a",
            "x in (b)",
            "z in (a)",
            "x notin (a)",
            "z",
            "!x",
            "n>5",
            "n<5",
            "x>1",
            "z>1",
            "x=a,y=c",
            "x=",
        ];
        for s in no {
            assert!(!parse(s).expect(s).matches(&l), "{s}");
        }
        assert!(parse("z=").expect("z=").matches(&set(&[("z", "")])));
        assert!(!parse("z=").expect("z=").matches(&set(&[])));
    }

    #[test]
    fn everything_and_nothing() {
        assert!(everything().is_empty());
        assert!(everything().matches(&set(&[])));
        assert!(!LabelSelector::nothing().is_empty());
        assert!(!LabelSelector::nothing().matches(&set(&[])));
        assert!(!parse("a").expect("a").is_empty());
        assert!(from_k8s_opt(None).expect("nil").matches_nothing());
        assert_eq!(
            parse("x in (a)").expect("x").requires_exact_match("x"),
            Some("a")
        );
        assert_eq!(parse("x!=a").expect("x").requires_exact_match("x"), None);
    }

    #[test]
    fn converts_metav1_selectors() {
        let empty = metav1::LabelSelector::default();
        let s = from_k8s(&empty).expect("empty");
        assert!(s.is_empty());
        assert!(s.matches(&set(&[("a", "b")])));
        assert_eq!(format_label_selector(&empty), "<none>");

        let sel = metav1::LabelSelector {
            match_labels: Some(set(&[("name", "fluentd"), ("app", "logs")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["b".into(), "a".into()]),
                },
                LabelSelectorRequirement {
                    key: "debug".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        let s = from_k8s(&sel).expect("sel");
        assert_eq!(s.to_string(), "app=logs,!debug,name=fluentd,tier in (a,b)");
        assert_eq!(
            format_label_selector(&sel),
            "app=logs,!debug,name=fluentd,tier in (a,b)"
        );
        assert!(s.matches(&set(&[("name", "fluentd"), ("app", "logs"), ("tier", "a")])));
        assert!(!s.matches(&set(&[
            ("name", "fluentd"),
            ("app", "logs"),
            ("tier", "a"),
            ("debug", "1")
        ])));

        let bad_op = metav1::LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "Gt".into(),
                values: Some(vec!["1".into()]),
            }]),
            ..Default::default()
        };
        assert_eq!(
            from_k8s(&bad_op).expect_err("gt").to_string(),
            "\"Gt\" is not a valid pod selector operator"
        );
        assert_eq!(format_label_selector(&bad_op), "<error>");

        let empty_in = metav1::LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "In".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert_eq!(
            from_k8s(&empty_in).expect_err("in").to_string(),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
        );
        let exists_vals = metav1::LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a b".into(),
                operator: "Exists".into(),
                values: Some(vec!["x".into()]),
            }]),
            ..Default::default()
        };
        let e = from_k8s(&exists_vals).expect_err("exists").to_string();
        assert!(
            e.starts_with("[key: Invalid value: \"a b\": name part must consist"),
            "{e}"
        );
        assert!(e.contains(", values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist]"), "{e}");
        let bad_value = metav1::LabelSelector {
            match_labels: Some(set(&[("a", "b c")])),
            ..Default::default()
        };
        assert!(
            from_k8s(&bad_value)
                .expect_err("value")
                .to_string()
                .starts_with("values[0][a]: Invalid value: \"b c\": a valid label must be")
        );
    }

    #[test]
    fn non_ascii_input_is_an_error_not_a_panic() {
        for input in ["é", "a=é", "é in (a)", "a in (é,b)", "!é"] {
            assert!(parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn formats_labels() {
        assert_eq!(format_labels(&set(&[])), "<none>");
        assert_eq!(format_labels(&set(&[("b", "2"), ("a", "1")])), "a=1,b=2");
        assert_eq!(format_labels(&set(&[("a", "")])), "a=");
        let s = LabelSelector::from_set(&set(&[("b", "2"), ("a", "1")]));
        assert_eq!(s.to_string(), "a=1,b=2");
        assert!(LabelSelector::from_set(&set(&[])).is_empty());
    }
}
