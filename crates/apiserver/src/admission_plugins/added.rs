//! What mutating admission and allocation added to an object being created, so the field
//! manager can leave it out.
//!
//! Upstream's create handler records the creator's fields (`FieldManager.UpdateNoErrors`)
//! before mutating admission runs and before the registry allocates, so a pod's API
//! credentials volume, its defaulted service account and priority, or a Service's cluster IP
//! and node ports belong to no manager: a DaemonSet's pods list what the controller sent (with
//! its defaults) under `kube-controller-manager`, nothing more. pernode admits first and
//! records after; the plugins note here what they add ([`Added::insert`], [`Added::push`]),
//! and the create takes those members out while the field manager runs
//! ([`Added::take_out`], [`Added::put_back`]).
//!
//! ```
//! use pernode_apiserver::admission_plugins::added::{Added, Step};
//! use serde_json::json;
//!
//! let mut pod = json!({"spec": {"containers": [{"name": "c"}]}});
//! let mut added = Added::default();
//! added.insert(&mut pod, &[Step::Key("spec")], "priority", json!(0));
//! added.push(&mut pod, &[Step::Key("spec")], "volumes", json!({"name": "v"}));
//! let taken = added.take_out(&mut pod);
//! assert_eq!(pod, json!({"spec": {"containers": [{"name": "c"}]}}));
//! added.put_back(&mut pod, taken);
//! assert_eq!(pod["spec"]["volumes"], json!([{"name": "v"}]));
//! ```

use serde_json::Value;

/// One step from a value to a member: a map's key or a list's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Key(&'static str),
    Index(usize),
}

/// Where one addition went, under the map or list at `parent`.
#[derive(Debug)]
struct Place {
    parent: Vec<Step>,
    at: At,
}

#[derive(Debug)]
enum At {
    /// A member the map had not.
    Key(String),
    /// An item appended to the list (`parent` leads to the list itself).
    Last,
}

/// The additions of one create, in the order made.
#[derive(Debug, Default)]
pub struct Added {
    places: Vec<Place>,
}

/// What [`Added::take_out`] removed, one per addition (`None`: it was gone already, say
/// dropped by defaulting).
#[derive(Debug)]
pub struct Taken(Vec<Option<Value>>);

fn walk<'a>(mut value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    for step in path {
        value = match step {
            Step::Key(key) => value.get_mut(*key)?,
            Step::Index(i) => value.get_mut(*i)?,
        };
    }
    Some(value)
}

impl Added {
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// Sets `key` of the map at `parent` to `value`. Recorded only when the map had no value
    /// there (or `null`): a value the client sent stays the client's even when admission
    /// rewrites it.
    pub fn insert(&mut self, obj: &mut Value, parent: &[Step], key: &str, value: Value) {
        let Some(map) = walk(obj, parent).and_then(Value::as_object_mut) else {
            return;
        };
        if matches!(map.insert(key.to_string(), value), None | Some(Value::Null)) {
            self.places.push(Place {
                parent: parent.to_vec(),
                at: At::Key(key.to_string()),
            });
        }
    }

    /// Appends `item` to the list `key` of the map at `parent`, adding the list when the map
    /// has none (or a null).
    pub fn push(&mut self, obj: &mut Value, parent: &[Step], key: &'static str, item: Value) {
        let Some(map) = walk(obj, parent).and_then(Value::as_object_mut) else {
            return;
        };
        match map.get_mut(key).and_then(Value::as_array_mut) {
            Some(list) => {
                list.push(item);
                let mut path = parent.to_vec();
                path.push(Step::Key(key));
                self.places.push(Place {
                    parent: path,
                    at: At::Last,
                });
            }
            None => self.insert(obj, parent, key, Value::Array(vec![item])),
        }
    }

    /// Removes every addition, the last first (an item appended after another comes off
    /// first), and returns them for [`Added::put_back`].
    pub fn take_out(&self, obj: &mut Value) -> Taken {
        let mut taken: Vec<Option<Value>> = self
            .places
            .iter()
            .rev()
            .map(|place| {
                let parent = walk(obj, &place.parent)?;
                match &place.at {
                    At::Key(key) => parent.as_object_mut()?.remove(key),
                    At::Last => parent.as_array_mut()?.pop(),
                }
            })
            .collect();
        taken.reverse();
        Taken(taken)
    }

    /// Puts back what [`Added::take_out`] removed, in the order it was added.
    pub fn put_back(&self, obj: &mut Value, taken: Taken) {
        for (place, value) in self.places.iter().zip(taken.0) {
            let Some(value) = value else { continue };
            let Some(parent) = walk(obj, &place.parent) else {
                continue;
            };
            match &place.at {
                At::Key(key) => {
                    if let Some(map) = parent.as_object_mut() {
                        map.insert(key.clone(), value);
                    }
                }
                At::Last => {
                    if let Some(list) = parent.as_array_mut() {
                        list.push(value);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn additions_come_out_and_go_back_in_place() {
        let sent = json!({"spec": {
            "containers": [{"name": "a", "volumeMounts": [{"name": "data"}]}, {"name": "b"}],
            "volumes": [{"name": "data"}],
        }});
        let mut pod = sent.clone();
        let mut added = Added::default();
        let spec = [Step::Key("spec")];
        added.push(&mut pod, &spec, "volumes", json!({"name": "token"}));
        for i in 0..2 {
            let container = [Step::Key("spec"), Step::Key("containers"), Step::Index(i)];
            added.push(
                &mut pod,
                &container,
                "volumeMounts",
                json!({"name": "token"}),
            );
        }
        added.insert(&mut pod, &spec, "serviceAccountName", json!("default"));
        let admitted = pod.clone();
        assert_eq!(
            admitted["spec"]["containers"][1]["volumeMounts"],
            json!([{"name": "token"}])
        );

        let taken = added.take_out(&mut pod);
        assert_eq!(pod, sent);
        added.put_back(&mut pod, taken);
        assert_eq!(pod, admitted);
    }

    #[test]
    fn what_the_client_sent_is_not_an_addition() {
        let mut pod = json!({"spec": {"priority": 5}});
        let mut added = Added::default();
        added.insert(&mut pod, &[Step::Key("spec")], "priority", json!(5));
        assert!(added.is_empty());
        // A path that is not there adds nothing and records nothing.
        added.insert(&mut pod, &[Step::Key("status")], "phase", json!("Pending"));
        assert!(added.is_empty());
        assert_eq!(pod, json!({"spec": {"priority": 5}}));
        // A null is no value: what replaces it is an addition.
        let mut node = json!({"spec": {"taints": null}});
        added.push(
            &mut node,
            &[Step::Key("spec")],
            "taints",
            json!({"key": "k"}),
        );
        assert_eq!(node, json!({"spec": {"taints": [{"key": "k"}]}}));
        added.take_out(&mut node);
        assert_eq!(node, json!({"spec": {}}));
    }

    #[test]
    fn an_addition_gone_before_the_take_out_is_skipped() {
        let mut pod = json!({"spec": {}});
        let mut added = Added::default();
        added.insert(&mut pod, &[Step::Key("spec")], "a", json!(1));
        added.insert(&mut pod, &[Step::Key("spec")], "b", json!(2));
        pod["spec"].as_object_mut().unwrap().remove("a");
        let taken = added.take_out(&mut pod);
        assert_eq!(pod, json!({"spec": {}}));
        added.put_back(&mut pod, taken);
        assert_eq!(pod, json!({"spec": {"b": 2}}));
    }
}
