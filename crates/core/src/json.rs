//! The members of a JSON object as slices of its bytes: for reading or editing a few fields
//! of a large object (a stored pod, an API answer) without parsing the rest into a tree.
//!
//! For JSON the server wrote (stored objects, its own answers): members are found by brackets,
//! quotes and delimiters, and values are not checked beyond that, so that finding the end of a
//! pod's `metadata` costs a few instructions a byte rather than a parse of it. Whoever reads a
//! value parses it then.

use std::borrow::Cow;
use std::ops::Range;

/// The members of a JSON object in order, each value unparsed (a slice of the input, read only
/// as far as needed to find its end): for edits of a few fields of a stored object that copy
/// the rest of its bytes as they are. Iteration ends at the object's end or where its structure
/// breaks; [`ObjectMembers::complete`] tells which.
pub struct ObjectMembers<'a> {
    json: &'a [u8],
    at: usize,
    state: MembersState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MembersState {
    First,
    Next,
    Done,
    Malformed,
}

impl<'a> ObjectMembers<'a> {
    pub fn of(json: &'a [u8]) -> ObjectMembers<'a> {
        let at = skip_ws(json, 0);
        let state = match json.get(at) {
            Some(b'{') => MembersState::First,
            _ => MembersState::Malformed,
        };
        ObjectMembers {
            json,
            at: at + 1,
            state,
        }
    }

    /// All the members, or `None` if `json` is not exactly one JSON object.
    pub fn all(json: &'a [u8]) -> Option<Vec<(Cow<'a, str>, &'a str)>> {
        let mut members = ObjectMembers::of(json);
        let all: Vec<_> = members.by_ref().collect();
        members.complete().then_some(all)
    }

    /// Whether iteration ended at the end of the object, with nothing but whitespace after it.
    pub fn complete(&self) -> bool {
        self.state == MembersState::Done && skip_ws(self.json, self.at) == self.json.len()
    }

    /// The next member, or `None` at the object's end (`Done`) or a break in it.
    fn member(&mut self) -> Option<(Cow<'a, str>, &'a str)> {
        let json = self.json;
        let mut i = skip_ws(json, self.at);
        let closing = match self.state {
            MembersState::First => true,
            MembersState::Next => match json.get(i) {
                Some(b',') => {
                    i = skip_ws(json, i + 1);
                    false
                }
                _ => true,
            },
            MembersState::Done | MembersState::Malformed => return None,
        };
        if closing {
            if json.get(i) == Some(&b'}') {
                self.at = i + 1;
                self.state = MembersState::Done;
                return None;
            }
            if self.state == MembersState::Next {
                return None;
            }
        }
        let (key_end, value) = member_head(json, i)?;
        let value_end = value_end(json, value)?;
        if value_end == value {
            return None;
        }
        let key = key_text(&json[i..key_end])?;
        let value = std::str::from_utf8(&json[value..value_end]).ok()?;
        self.at = value_end;
        self.state = MembersState::Next;
        Some((key, value))
    }
}

impl<'a> Iterator for ObjectMembers<'a> {
    type Item = (Cow<'a, str>, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let member = self.member();
        if member.is_none() && self.state != MembersState::Done {
            self.state = MembersState::Malformed;
        }
        member
    }
}

/// A member name (with its quotes), borrowed from the input unless it has escapes.
fn key_text(quoted: &[u8]) -> Option<Cow<'_, str>> {
    let inner = quoted.get(1..quoted.len() - 1)?;
    if inner.contains(&b'\\') {
        return serde_json::from_slice::<String>(quoted)
            .ok()
            .map(Cow::Owned);
    }
    std::str::from_utf8(inner).ok().map(Cow::Borrowed)
}

/// The bytes to cut from a JSON object to remove its member `outer.inner` (`metadata.managedFields`
/// of a stored object): [`member_span`] of the `outer` object, in `json`. Reads only as far as
/// the member's end: a stored object's `metadata` comes before `spec` and `status`, most of
/// its bytes.
pub fn nested_member_span(json: &[u8], outer: &str, inner: &str) -> Option<Range<usize>> {
    let (_, start) = find_member(json, outer)?;
    let span = member_span(&json[start..], inner)?;
    Some(span.start + start..span.end + start)
}

/// The bytes to cut from a JSON object to remove its member `name`, with the comma that joined
/// it to a neighbour, so that what is left is the same object without it. For JSON the server
/// wrote itself (a stored object): the scan finds member boundaries by brackets and quotes
/// without checking the rest, and stops at the member's end (`object` may go on past the
/// object's). `None` when the member is absent or the bytes are not an object.
pub fn member_span(object: &[u8], name: &str) -> Option<Range<usize>> {
    let (key, value) = find_member(object, name)?;
    let value_end = value_end(object, value)?;
    // Joined by the comma after it (the first member), else by the one before it.
    let after = skip_ws(object, value_end);
    if object.get(after) == Some(&b',') {
        return Some(key..skip_ws(object, after + 1));
    }
    let before = object[..key].trim_ascii_end().len();
    if object[..before].ends_with(b",") {
        return Some(before - 1..value_end);
    }
    Some(key..value_end)
}

/// Where member `name` of the object at the start of `json` starts (its key) and where its
/// value starts.
fn find_member(json: &[u8], name: &str) -> Option<(usize, usize)> {
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(json, i + 1);
    while let Some((key_end, value)) = member_head(json, i) {
        if &json[i + 1..key_end - 1] == name.as_bytes() {
            return Some((i, value));
        }
        let next = skip_ws(json, value_end(json, value)?);
        match json.get(next) {
            Some(b',') => i = skip_ws(json, next + 1),
            _ => return None,
        }
    }
    None
}

/// A member's key starting at `key` (its opening quote) and the colon after it: where the
/// key ends and where the value starts.
fn member_head(json: &[u8], key: usize) -> Option<(usize, usize)> {
    if json.get(key) != Some(&b'"') {
        return None;
    }
    let key_end = string_end(json, key)?;
    let colon = skip_ws(json, key_end);
    if json.get(colon) != Some(&b':') {
        return None;
    }
    Some((key_end, skip_ws(json, colon + 1)))
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// The end (after the closing quote) of the string starting at `at`. Byte by byte: most
/// strings of a stored object's metadata are short (`fieldsV1`'s `"f:name"`), where a search
/// call costs more than the loop; a long one (an annotation) goes on with `memchr`.
fn string_end(json: &[u8], at: usize) -> Option<usize> {
    const SHORT: usize = 24;
    let mut i = at + 1;
    let short_end = json.len().min(i + SHORT);
    while i < short_end {
        match json[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    loop {
        i += memchr::memchr2(b'"', b'\\', json.get(i..)?)?;
        if json[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// The end of the value starting at `at`: a string, an object or array (by brackets outside
/// strings), or a literal (up to the next delimiter).
fn value_end(json: &[u8], at: usize) -> Option<usize> {
    match json.get(at)? {
        b'"' => string_end(json, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while let Some(&b) = json.get(i) {
                match b {
                    b'"' => {
                        i = string_end(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let len = json[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(json.len() - at);
            Some(at + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_splits_into_its_members_unparsed() {
        fn all(json: &str) -> Option<Vec<(String, &str)>> {
            ObjectMembers::all(json.as_bytes())
                .map(|m| m.into_iter().map(|(k, v)| (k.into_owned(), v)).collect())
        }
        assert_eq!(
            all(r#"{"a":{"b":[1,"}"]},"c\u0064":null , "e" : 2 } "#),
            Some(vec![
                ("a".to_string(), r#"{"b":[1,"}"]}"#),
                ("cd".to_string(), "null"),
                ("e".to_string(), "2"),
            ])
        );
        assert_eq!(all(" {} "), Some(vec![]));
        for bad in [
            "[1]",
            "",
            "{",
            r#"{"a":1"#,
            r#"{"a":1,}"#,
            r#"{"a":1} {}"#,
            r#"{"a" 1}"#,
        ] {
            assert_eq!(all(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_nested_member_is_cut_with_one_comma() {
        fn without(json: &str) -> Option<String> {
            let span = nested_member_span(json.as_bytes(), "metadata", "managedFields")?;
            let mut out = json.as_bytes().to_vec();
            out.drain(span);
            let out = String::from_utf8(out).ok()?;
            // What is left is still JSON.
            serde_json::from_str::<serde_json::Value>(&out).ok()?;
            Some(out)
        }
        let mf = r#"[{"manager":"m","fieldsV1":{"f:spec":{"f:x\"}":{}}},"k":[1,{"a":"]"}]}]"#;
        assert_eq!(
            without(&format!(
                r#"{{"apiVersion":"v1","metadata":{{"labels":{{"a":"}}"}},"managedFields":{mf},"name":"n"}},"spec":{{}}}}"#
            )),
            Some(
                r#"{"apiVersion":"v1","metadata":{"labels":{"a":"}"},"name":"n"},"spec":{}}"#
                    .into()
            )
        );
        // First, last and only member.
        assert_eq!(
            without(&format!(
                r#"{{"metadata":{{"managedFields":{mf},"name":"n"}}}}"#
            )),
            Some(r#"{"metadata":{"name":"n"}}"#.into())
        );
        assert_eq!(
            without(&format!(
                r#"{{"metadata":{{"name":"n","managedFields":{mf}}}}}"#
            )),
            Some(r#"{"metadata":{"name":"n"}}"#.into())
        );
        assert_eq!(
            without(&format!(r#"{{"metadata":{{"managedFields":{mf}}}}}"#)),
            Some(r#"{"metadata":{}}"#.into())
        );
        // Whitespace between tokens, literals before it.
        assert_eq!(
            without(&format!(
                r#"{{ "n": 1 , "metadata" : {{ "generation" : 2 , "managedFields" : {mf} , "x" : true }} }}"#
            )),
            Some(r#"{ "n": 1 , "metadata" : { "generation" : 2 , "x" : true } }"#.into())
        );
        // Only `metadata`'s own member, not one of that name elsewhere.
        assert_eq!(
            without(r#"{"spec":{"managedFields":[]},"metadata":{"name":"n"}}"#),
            None
        );
        assert_eq!(
            without(r#"{"metadata":{"labels":{"managedFields":"x"}}}"#),
            None
        );
        for bad in [
            "",
            "[]",
            "{",
            r#"{"metadata":"#,
            r#"{"metadata":[]}"#,
            r#"{"metadata":{"managedFields":[{"#,
            r#"{"metadata":{"managedFields":"]"#,
        ] {
            assert_eq!(
                nested_member_span(bad.as_bytes(), "metadata", "managedFields"),
                None,
                "{bad}"
            );
        }
    }
}
