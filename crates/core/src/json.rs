//! The members of a JSON object as slices of its bytes: for reading or editing a few fields
//! of a large object (a stored pod, an API answer) without parsing the rest into a tree.

use std::borrow::Cow;

use serde_json::value::RawValue;

/// The members of a JSON object in order, each value unparsed (a slice of the input, read only
/// as far as needed to find its end): for edits of a few fields of a stored object that copy
/// the rest of its bytes as they are. Iteration ends at the object's end or at malformed JSON;
/// [`ObjectMembers::complete`] tells which.
pub struct ObjectMembers<'a> {
    rest: &'a [u8],
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
        match after_token(json, b'{') {
            Some(rest) => ObjectMembers {
                rest,
                state: MembersState::First,
            },
            None => ObjectMembers {
                rest: json,
                state: MembersState::Malformed,
            },
        }
    }

    /// All the members, or `None` if `json` is not exactly one JSON object.
    pub fn all(json: &'a [u8]) -> Option<Vec<(Cow<'a, str>, &'a RawValue)>> {
        let mut members = ObjectMembers::of(json);
        let all: Vec<_> = members.by_ref().collect();
        members.complete().then_some(all)
    }

    /// Whether iteration ended at the end of the object, with nothing but whitespace after it.
    pub fn complete(&self) -> bool {
        self.state == MembersState::Done && self.rest.trim_ascii().is_empty()
    }

    fn end(&mut self, closed: Option<&'a [u8]>) {
        match closed {
            Some(rest) => {
                self.rest = rest;
                self.state = MembersState::Done;
            }
            None => self.state = MembersState::Malformed,
        }
    }
}

impl<'a> Iterator for ObjectMembers<'a> {
    type Item = (Cow<'a, str>, &'a RawValue);

    fn next(&mut self) -> Option<Self::Item> {
        let start = match self.state {
            MembersState::First => match after_token(self.rest, b'}') {
                Some(rest) => {
                    self.end(Some(rest));
                    return None;
                }
                None => self.rest,
            },
            MembersState::Next => match after_token(self.rest, b',') {
                Some(rest) => rest,
                None => {
                    self.end(after_token(self.rest, b'}'));
                    return None;
                }
            },
            MembersState::Done | MembersState::Malformed => return None,
        };
        let member = json_value::<MemberKey<'a>>(start).and_then(|(key, tail)| {
            let (value, tail) = json_value::<&'a RawValue>(after_token(tail, b':')?)?;
            Some((key.0, value, tail))
        });
        match member {
            Some((key, value, tail)) => {
                self.rest = tail;
                self.state = MembersState::Next;
                Some((key, value))
            }
            None => {
                self.state = MembersState::Malformed;
                None
            }
        }
    }
}

/// One JSON value at the start of `rest`, and the bytes after it.
fn json_value<'a, T: serde::Deserialize<'a>>(rest: &'a [u8]) -> Option<(T, &'a [u8])> {
    let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<T>();
    let v = values.next()?.ok()?;
    Some((v, &rest[values.byte_offset()..]))
}

/// `rest` after `token` and the whitespace before it.
fn after_token(rest: &[u8], token: u8) -> Option<&[u8]> {
    let rest = rest.trim_ascii_start();
    (rest.first() == Some(&token)).then(|| &rest[1..])
}

/// A member name, borrowed from the input unless it has escapes (serde's `Cow<str>` always
/// copies).
struct MemberKey<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for MemberKey<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = MemberKey<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(MemberKey(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MemberKey(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_splits_into_its_members_unparsed() {
        fn all(json: &str) -> Option<Vec<(String, &str)>> {
            ObjectMembers::all(json.as_bytes()).map(|m| {
                m.into_iter()
                    .map(|(k, v)| (k.into_owned(), v.get()))
                    .collect()
            })
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
}
