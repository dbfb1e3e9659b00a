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
    hole: Range<usize>,
}

/// No hole: a range no scan reaches.
const NO_HOLE: Range<usize> = usize::MAX..usize::MAX;

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
            hole: NO_HOLE,
        }
    }

    /// The members of the object `json`, whose bytes `hole` (a member of it or of an object
    /// inside it: its key's opening quote to its value's end, as [`nested_member`] finds it)
    /// are known: scans jump over them instead of reading them. A stored object's
    /// `metadata.managedFields` is most of its metadata, and its place is kept beside it.
    /// A hole that is not a member's bytes gives wrong members, never a panic; `None` is no
    /// hole ([`ObjectMembers::of`]).
    pub fn with_hole(json: &'a [u8], hole: Option<Range<usize>>) -> ObjectMembers<'a> {
        let mut members = ObjectMembers::of(json);
        if let Some(hole) = hole.filter(|h| h.start < h.end && h.end <= json.len()) {
            members.hole = hole;
        }
        members
    }

    /// All the members, or `None` if `json` is not exactly one JSON object.
    pub fn all(json: &'a [u8]) -> Option<Vec<(Cow<'a, str>, &'a str)>> {
        ObjectMembers::of(json).into_all()
    }

    /// All the members, as [`ObjectMembers::all`], reading around `hole` as
    /// [`ObjectMembers::with_hole`] does.
    pub fn all_with_hole(
        json: &'a [u8],
        hole: Option<Range<usize>>,
    ) -> Option<Vec<(Cow<'a, str>, &'a str)>> {
        ObjectMembers::with_hole(json, hole).into_all()
    }

    fn into_all(mut self) -> Option<Vec<(Cow<'a, str>, &'a str)>> {
        let all: Vec<_> = self.by_ref().collect();
        self.complete().then_some(all)
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
        let value_end = if i == self.hole.start && value < self.hole.end {
            self.hole.end
        } else {
            value_end(json, value, &self.hole)?
        };
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

/// Where member `outer.inner` of the object in `json` is (`metadata.managedFields` of a stored
/// object): from its key's opening quote to its value's end. Reads only as far as the
/// member's end: a stored object's `metadata` comes before `spec` and `status`, most of its
/// bytes. For JSON the server wrote itself: the scan finds member boundaries by brackets and
/// quotes without checking the rest. `None` when the member is absent or the bytes are not
/// an object.
pub fn nested_member(json: &[u8], outer: &str, inner: &str) -> Option<Range<usize>> {
    let (_, start) = find_member(json, outer)?;
    let (key, value) = find_member(&json[start..], inner)?;
    let end = value_end(&json[start..], value, &NO_HOLE)?;
    Some(key + start..end + start)
}

/// The bytes to cut from `json` to remove the member at `member` (its key's opening quote to
/// its value's end, as [`nested_member`] finds it), with the comma that joined it to a
/// neighbour, so that what is left is the same JSON without it.
pub fn member_cut(json: &[u8], member: Range<usize>) -> Range<usize> {
    // Joined by the comma after it (the first member), else by the one before it.
    let after = skip_ws(json, member.end);
    if json.get(after) == Some(&b',') {
        return member.start..skip_ws(json, after + 1);
    }
    let before = json
        .get(..member.start)
        .map_or(0, |b| b.trim_ascii_end().len());
    if before > 0 && json[before - 1] == b',' {
        return before - 1..member.end;
    }
    member
}

/// The bytes to cut from a JSON object to remove its member `outer.inner`, with its comma
/// ([`nested_member`], [`member_cut`]).
pub fn nested_member_cut(json: &[u8], outer: &str, inner: &str) -> Option<Range<usize>> {
    nested_member(json, outer, inner).map(|member| member_cut(json, member))
}

/// `range` of `outer` as a range of `inner`, a slice of `outer` that holds it (a member's
/// value, say); `None` when `inner` is not such a slice.
pub fn range_within(outer: &[u8], inner: &[u8], range: Range<usize>) -> Option<Range<usize>> {
    let offset = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    let end = offset + inner.len();
    (offset <= range.start && range.end <= end && end <= outer.len())
        .then(|| range.start - offset..range.end - offset)
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
        let next = skip_ws(json, value_end(json, value, &NO_HOLE)?);
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
/// strings), or a literal (up to the next delimiter). A member inside it that starts at
/// `hole.start` is not read: the scan goes on at `hole.end`.
fn value_end(json: &[u8], at: usize, hole: &Range<usize>) -> Option<usize> {
    match json.get(at)? {
        b'"' => string_end(json, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while let Some(&b) = json.get(i) {
                match b {
                    // Past `i`: a hole always moves the scan on.
                    b'"' if i == hole.start && hole.end > i => {
                        i = hole.end;
                        continue;
                    }
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
            let span = nested_member_cut(json.as_bytes(), "metadata", "managedFields")?;
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
                nested_member_cut(bad.as_bytes(), "metadata", "managedFields"),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn members_read_the_same_with_a_hole_jumped_over() {
        let mf = r#"[{"manager":"m","fieldsV1":{"f:spec":{"f:x\"}":{}}},"k":[1,{"a":"]"}]}]"#;
        let json = format!(
            r#"{{"apiVersion":"v1","metadata":{{"labels":{{"a":"}}"}},"managedFields":{mf},"name":"n"}},"spec":{{"x":1}}}}"#
        );
        let json = json.as_bytes();
        let hole = nested_member(json, "metadata", "managedFields").expect("found");
        assert_eq!(
            &json[hole.clone()],
            format!(r#""managedFields":{mf}"#).as_bytes()
        );
        let plain = ObjectMembers::all(json).expect("members");
        let mut holed = ObjectMembers::with_hole(json, Some(hole.clone()));
        let with_hole: Vec<_> = holed.by_ref().collect();
        assert!(holed.complete());
        assert_eq!(with_hole, plain);

        // The members of `metadata`, the hole rebased to its bytes.
        let (_, meta) = &plain[1];
        let rebased = range_within(json, meta.as_bytes(), hole.clone());
        assert!(rebased.is_some());
        assert_eq!(
            range_within(json, b"{}", hole.clone()),
            None,
            "not a slice of it"
        );
        let keys: Vec<_> = ObjectMembers::with_hole(meta.as_bytes(), rebased)
            .map(|(k, v)| (k.into_owned(), v.len()))
            .collect();
        assert_eq!(
            keys,
            [
                ("labels".to_string(), 9),
                ("managedFields".to_string(), mf.len()),
                ("name".to_string(), 3)
            ]
        );

        // What is in the hole is not read: unbalanced brackets there go unnoticed.
        let unread = br#"{"metadata":{"managedFields":[[[{,"name":"n"},"spec":{}}"#;
        let hole = 13..33;
        assert_eq!(&unread[hole.clone()], br#""managedFields":[[[{"#);
        assert_eq!(ObjectMembers::all(unread), None);
        let keys: Vec<_> = ObjectMembers::with_hole(unread, Some(hole))
            .map(|(k, _)| k.into_owned())
            .collect();
        assert_eq!(keys, ["metadata", "spec"]);

        // A hole that is not a member's bytes: wrong members at worst, no panic, no hang.
        let (late, early) = (9, 3);
        for bad in [0..1, 5..5, late..early, 40..json.len() + 7, 0..json.len()] {
            let _ = ObjectMembers::with_hole(json, Some(bad)).count();
        }
    }
}
