//! Writes that edit an object's stored JSON instead of a parsed tree of it.
//!
//! A pod's binding sets `spec.nodeName` and one condition; a kubelet's status patch replaces
//! `status`. Parsing the whole pod into a `serde_json::Value` and serializing it again cost
//! about 100,000 instructions a write (5% of a converge each). These edits read the object's
//! members as slices of the stored bytes ([`ObjectMembers`]), parse only what they change, and
//! copy the rest.
//!
//! The result is the bytes the tree would have given: stored objects have their keys sorted
//! (the store serializes `serde_json::Value` maps), and a member an edit adds goes in at its
//! sorted place.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::Value;

use pernode_core::json::ObjectMembers;

/// Why a stored object is not edited.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It has a deletionTimestamp.
    Deleting,
    /// It is bound already, to this node.
    Assigned(String),
    /// Its stored JSON is not an object, or its spec not one (stored pods always are).
    Malformed,
}

/// An object's members: names and JSON texts (stored slices, or new values serialized).
type Members<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// A stored object split into its members, for an edit.
pub struct StoredObject<'a> {
    members: Members<'a>,
    json: &'a [u8],
    /// Where `metadata.managedFields` is in `json`, if known: scans jump over it.
    managed_fields: Option<Range<usize>>,
}

/// An edited object's JSON, and where its `metadata.managedFields` is in it, if known (for
/// [`pernode_store::Store::update_edited`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Edited {
    pub json: String,
    pub managed_fields: Option<Range<usize>>,
}

impl<'a> StoredObject<'a> {
    /// `None` when `json` is not a JSON object. `managed_fields`: where its
    /// `metadata.managedFields` is ([`pernode_store::Entry::managed_fields`]), if known: most
    /// of a pod's metadata, which the edit then reads around.
    pub fn parse(json: &'a [u8], managed_fields: Option<Range<usize>>) -> Option<StoredObject<'a>> {
        let all = ObjectMembers::all_with_hole(json, managed_fields.clone());
        members(all).ok().map(|members| StoredObject {
            members,
            json,
            managed_fields,
        })
    }

    /// The stored object's managedFields as a range of `value`, if `value` is a slice of the
    /// stored JSON that holds them.
    fn managed_fields_in(&self, value: &str) -> Option<Range<usize>> {
        pernode_core::json::range_within(self.json, value.as_bytes(), self.managed_fields.clone()?)
    }

    /// The JSON text of member `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        member(&self.members, name)
    }

    /// Whether `metadata.deletionTimestamp` is set.
    pub fn deleting(&self) -> Result<bool, Refusal> {
        let Some(meta) = self.get("metadata") else {
            return Ok(false);
        };
        let mut members = ObjectMembers::with_hole(meta.as_bytes(), self.managed_fields_in(meta));
        match members.by_ref().find(|(key, _)| key == "deletionTimestamp") {
            Some((_, value)) => Ok(value != "null"),
            None if members.complete() => Ok(false),
            None => Err(Refusal::Malformed),
        }
    }

    /// Member `name` set to `value` (serialized), or removed (`None`).
    pub fn set(&mut self, name: &'static str, value: Option<&Value>) {
        match value {
            Some(value) => set(&mut self.members, name, json_text(value)),
            None => self.members.retain(|(n, _)| n != name),
        }
    }

    /// The edited object's JSON, with its managedFields' new place.
    pub fn into_json(self) -> Edited {
        let mut managed_fields = None;
        let json = write_object(&self.members, |value, at| {
            if let Some(hole) = self.managed_fields_in(value) {
                managed_fields = Some(hole.start + at..hole.end + at);
            }
        });
        Edited {
            json,
            managed_fields,
        }
    }
}

/// The stored pod `json` bound to `node`: `spec.nodeName` set, and the status condition of
/// `condition`'s type replaced by `condition` (or added at the end). Not Go-escaped: the store
/// escapes what it writes. `managed_fields` as for [`StoredObject::parse`].
pub fn bind_stored(
    json: &[u8],
    managed_fields: Option<Range<usize>>,
    node: &str,
    condition: Value,
) -> Result<Edited, Refusal> {
    let mut pod = StoredObject::parse(json, managed_fields).ok_or(Refusal::Malformed)?;
    if pod.deleting()? {
        return Err(Refusal::Deleting);
    }

    // A missing or null spec becomes an object, as `pod["spec"]["nodeName"] = ..` would.
    let mut spec = match pod.get("spec") {
        None | Some("null") => Vec::new(),
        Some(spec) => members(ObjectMembers::all(spec.as_bytes()))?,
    };
    if let Some(current) = member(&spec, "nodeName")
        .and_then(|n| serde_json::from_str::<String>(n).ok())
        .filter(|n| !n.is_empty())
    {
        return Err(Refusal::Assigned(current));
    }
    set(&mut spec, "nodeName", json_text(&node));

    // A status that is not an object is replaced, as upstream's condition update would.
    let mut status = match pod.get("status") {
        Some(status) if status.starts_with('{') => members(ObjectMembers::all(status.as_bytes()))?,
        _ => Vec::new(),
    };
    let conditions = match member(&status, "conditions").map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Array(conditions))) => conditions,
        _ => Vec::new(),
    };
    set(
        &mut status,
        "conditions",
        json_text(&with_condition(conditions, condition)),
    );

    let (spec, status) = (object_text(&spec), object_text(&status));
    set(&mut pod.members, "spec", spec);
    set(&mut pod.members, "status", status);
    Ok(pod.into_json())
}

/// `conditions` with the one of `condition`'s type replaced by it (moved to the end), or
/// `condition` added.
pub fn with_condition(conditions: Vec<Value>, condition: Value) -> Vec<Value> {
    let mut out: Vec<Value> = conditions
        .into_iter()
        .filter(|c| c["type"] != condition["type"])
        .collect();
    out.push(condition);
    out
}

fn members<'a>(all: Option<Vec<(Cow<'a, str>, &'a str)>>) -> Result<Members<'a>, Refusal> {
    let all = all.ok_or(Refusal::Malformed)?;
    Ok(all
        .into_iter()
        .map(|(name, value)| (name, Cow::Borrowed(value)))
        .collect())
}

fn member<'m>(members: &'m Members<'_>, name: &str) -> Option<&'m str> {
    members
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| &**value)
}

/// Replaces member `name`, or adds it where sorted order puts it.
fn set<'a>(members: &mut Members<'a>, name: &'static str, text: String) {
    match members.iter_mut().find(|(n, _)| n == name) {
        Some(member) => member.1 = Cow::Owned(text),
        None => {
            let at = members.partition_point(|(n, _)| n.as_ref() < name);
            members.insert(at, (Cow::Borrowed(name), Cow::Owned(text)));
        }
    }
}

fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Strings, string maps and JSON trees always serialize.
    serde_json::to_string(value).unwrap_or_default()
}

fn object_text(members: &Members<'_>) -> String {
    write_object(members, |_, _| {})
}

/// The object of `members`; `placed` learns where each value went.
fn write_object(members: &Members<'_>, mut placed: impl FnMut(&str, usize)) -> String {
    let len = members
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum::<usize>();
    let mut out = String::with_capacity(len + 2);
    out.push('{');
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_text(name.as_ref()));
        out.push(':');
        placed(value, out.len());
        out.push_str(value);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scheduled() -> Value {
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
               "lastTransitionTime": "2026-11-23T05:00:00Z"})
    }

    /// What binding by tree gives: parse, set, serialize (keys sorted).
    fn bound_by_tree(pod: &Value, node: &str) -> String {
        let mut pod = pod.clone();
        pod["spec"]["nodeName"] = json!(node);
        if !pod["status"].is_object() {
            pod["status"] = json!({});
        }
        let conditions = pod["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        pod["status"]["conditions"] = Value::Array(with_condition(conditions, scheduled()));
        pod.to_string()
    }

    /// Where the stored object's managedFields are, read from its bytes.
    fn managed_fields_of(json: &[u8]) -> Option<Range<usize>> {
        pernode_core::json::nested_member(json, "metadata", "managedFields")
    }

    fn assert_same_as_tree(pod: Value) {
        let stored = pod.to_string();
        let known = managed_fields_of(stored.as_bytes());
        for hint in [None, known.clone()] {
            let edited =
                bind_stored(stored.as_bytes(), hint.clone(), "node-7", scheduled()).expect("bound");
            assert_eq!(
                edited.json,
                bound_by_tree(&pod, "node-7"),
                "stored: {stored}"
            );
            // Told where they were, the edit tells where they went.
            match hint {
                Some(_) => assert_eq!(
                    edited.managed_fields,
                    managed_fields_of(edited.json.as_bytes())
                ),
                None => assert_eq!(edited.managed_fields, None),
            }
        }
    }

    #[test]
    fn the_edit_gives_the_bytes_of_the_tree() {
        let meta = json!({"name": "p", "namespace": "default", "uid": "u",
                          "labels": {"a<b": "x&y"}, "resourceVersion": "12",
                          "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]});
        let spec = json!({"containers": [{"name": "c", "image": "i"}], "tolerations": [],
                          "affinity": {"nodeAffinity": {}}, "schedulerName": "default-scheduler"});
        // Pending, as created: a status with a phase and a qosClass.
        assert_same_as_tree(json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": spec, "status": {"phase": "Pending", "qosClass": "BestEffort"}}));
        // No status at all, or a null one; a spec that is null; no spec.
        assert_same_as_tree(json!({"kind": "Pod", "metadata": meta, "spec": spec}));
        assert_same_as_tree(json!({"kind": "Pod", "metadata": meta, "spec": spec, "status": null}));
        assert_same_as_tree(json!({"kind": "Pod", "metadata": meta, "spec": null}));
        assert_same_as_tree(json!({"kind": "Pod", "metadata": meta}));
        // An unschedulable condition replaced, the others kept in order; an empty nodeName.
        assert_same_as_tree(json!({"metadata": meta, "spec": {"nodeName": "", "z": 1},
            "status": {"conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: <none>"},
                {"type": "Initialized", "status": "True"}],
            "phase": "Pending"}}));
    }

    #[test]
    fn a_deleting_or_bound_pod_is_refused() {
        let deleting = json!({"metadata": {"name": "p", "deletionTimestamp": "2026-11-23T05:00:00Z"},
                              "spec": {}});
        assert_eq!(
            bind_stored(deleting.to_string().as_bytes(), None, "n", scheduled()),
            Err(Refusal::Deleting)
        );
        // Read around its managedFields too.
        let deleting = json!({"metadata": {"name": "p", "managedFields": [{"manager": "m"}],
                                           "zz": 1, "deletionTimestamp": "2026-11-23T05:00:00Z"},
                              "spec": {}})
        .to_string();
        let known = managed_fields_of(deleting.as_bytes());
        assert!(known.is_some());
        assert_eq!(
            bind_stored(deleting.as_bytes(), known, "n", scheduled()),
            Err(Refusal::Deleting)
        );
        let bound = json!({"metadata": {"name": "p", "deletionTimestamp": null},
                           "spec": {"nodeName": "node-1"}});
        assert_eq!(
            bind_stored(bound.to_string().as_bytes(), None, "n", scheduled()),
            Err(Refusal::Assigned("node-1".into()))
        );
        for malformed in [
            r#"[1]"#,
            r#"{"spec":"x"}"#,
            r#"{"spec":{"a":1}"#,
            r#"{"a":1} x"#,
        ] {
            assert_eq!(
                bind_stored(malformed.as_bytes(), None, "n", scheduled()),
                Err(Refusal::Malformed),
                "{malformed}"
            );
        }
    }
}
