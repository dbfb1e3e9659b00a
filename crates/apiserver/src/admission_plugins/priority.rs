//! The Priority admission plugin (plugin/pkg/admission/priority): a new pod gets
//! `spec.priority` (and `spec.preemptionPolicy`) from the PriorityClass it names, or from the
//! global default class, else 0; a pod naming a class that does not exist is refused, and so
//! is one whose own `priority` disagrees. At most one class is the global default.

use pernode_store::Store;
use serde_json::{Value, json};

use super::added::{Added, Step};
use super::forbidden;
use crate::error::ApiError;

const PRIORITY_CLASSES: &str = "priorityclasses/";

/// The value and preemption policy of a stored class.
struct Class {
    name: String,
    value: i64,
    preemption_policy: Option<String>,
}

fn class_of(obj: &Value) -> Class {
    Class {
        name: obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        value: obj.get("value").and_then(Value::as_i64).unwrap_or(0),
        preemption_policy: obj
            .get("preemptionPolicy")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// The global default class, the lowest-valued if several are marked (as upstream's
/// `getDefaultPriorityClass`).
fn default_class(store: &Store) -> Option<Class> {
    // Stored JSON is compact, so a marked class holds these bytes; only those are parsed.
    let (_, entries) = store.list(PRIORITY_CLASSES, |e| {
        memchr::memmem::find(&e.json, br#""globalDefault":true"#).is_some()
    });
    entries
        .iter()
        .filter_map(|e| serde_json::from_slice::<Value>(&e.json).ok())
        .map(|v| class_of(&v))
        .min_by_key(|c| c.value)
}

/// A pod's create.
pub fn admit_pod(store: &Store, pod: &mut Value, added: &mut Added) -> Result<(), ApiError> {
    let named = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let class = match named {
        Some(name) => {
            let Some(entry) = store.get(&format!("{PRIORITY_CLASSES}{name}")) else {
                return Err(forbidden(
                    pods(),
                    pod,
                    &format!("no PriorityClass with name {name} was found"),
                ));
            };
            let obj: Value = serde_json::from_slice(&entry.json)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            Some(class_of(&obj))
        }
        None => default_class(store),
    };
    // Upstream's getDefaultPriority: without a class, priority 0 and PreemptLowerPriority.
    let (priority, policy) = class.as_ref().map_or_else(
        || (0, Some("PreemptLowerPriority".to_string())),
        |c| (c.value, c.preemption_policy.clone()),
    );
    let Some(spec) = pod.get("spec").and_then(Value::as_object) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != priority
    {
        return Err(forbidden(
            pods(),
            pod,
            &format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            ),
        ));
    }
    if let Some(policy) = &policy
        && let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str)
        && given != policy
    {
        return Err(forbidden(
            pods(),
            pod,
            &format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ),
        ));
    }
    let spec = [Step::Key("spec")];
    if let Some(class) = &class {
        added.insert(pod, &spec, "priorityClassName", json!(class.name));
    }
    added.insert(pod, &spec, "priority", json!(priority));
    if let Some(policy) = policy {
        added.insert(pod, &spec, "preemptionPolicy", json!(policy));
    }
    Ok(())
}

/// A class's create or update: only one class may be the global default.
pub fn admit_priority_class(store: &Store, class: &mut Value) -> Result<(), ApiError> {
    if class.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let name = class
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(other) = default_class(store).filter(|c| c.name != name) {
        return Err(forbidden(
            priority_classes(),
            class,
            &format!(
                "PriorityClass {} is already marked as default. Only one default can exist",
                other.name
            ),
        ));
    }
    Ok(())
}

fn pods() -> &'static pernode_resources::ResourceInfo {
    pernode_resources::find("", "v1", "pods").expect("pods are in the catalogue")
}

fn priority_classes() -> &'static pernode_resources::ResourceInfo {
    pernode_resources::find("scheduling.k8s.io", "v1", "priorityclasses")
        .expect("priorityclasses are in the catalogue")
}

/// The built-in classes, as the server creates them at startup (upstream's
/// `scheduling` post-start hook).
pub fn system_classes() -> impl Iterator<Item = (String, Value)> {
    pernode_admission::validate::SYSTEM_PRIORITY_CLASSES
        .iter()
        .map(|(name, value, description)| {
            (
                format!("{PRIORITY_CLASSES}{name}"),
                json!({
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass",
                    "metadata": {"name": name},
                    "value": value,
                    "description": description,
                    "preemptionPolicy": "PreemptLowerPriority",
                }),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_with(classes: &[Value]) -> Store {
        let store = Store::in_memory(crate::registry::indexer(), Default::default());
        for c in classes {
            let name = c["metadata"]["name"].as_str().unwrap_or_default();
            store
                .create(&format!("{PRIORITY_CLASSES}{name}"), c.clone())
                .await
                .expect("stored");
        }
        store
    }

    fn class(name: &str, value: i64, default: bool) -> Value {
        json!({"metadata": {"name": name}, "value": value, "globalDefault": default,
               "preemptionPolicy": "PreemptLowerPriority"})
    }

    #[tokio::test]
    async fn pods_get_their_class_priority_or_the_default() {
        let store = store_with(&[class("high", 1000, false), class("base", 10, true)]).await;
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "high"}});
        admit_pod(&store, &mut pod, &mut Added::default()).expect("admitted");
        assert_eq!(pod["spec"]["priority"], 1000);
        assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {}});
        admit_pod(&store, &mut pod, &mut Added::default()).expect("admitted");
        assert_eq!(pod["spec"]["priority"], 10);
        assert_eq!(pod["spec"]["priorityClassName"], "base");
        let empty = store_with(&[]).await;
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {}});
        let mut added = Added::default();
        admit_pod(&empty, &mut pod, &mut added).expect("admitted");
        assert_eq!(pod["spec"]["priority"], 0);
        assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        assert!(pod["spec"].get("priorityClassName").is_none());
        // Both are admission's, not the creator's.
        added.take_out(&mut pod);
        assert_eq!(pod["spec"], json!({}));
        // Without a class, upstream computes PreemptLowerPriority and refuses another.
        let mut never = json!({"metadata": {"name": "p"}, "spec": {"preemptionPolicy": "Never"}});
        let e = admit_pod(&empty, &mut never, &mut Added::default()).expect_err("forbidden");
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: the string value of PreemptionPolicy (Never) must not be provided in pod spec; priority admission controller computed PreemptLowerPriority from the given PriorityClass name"
        );
    }

    #[tokio::test]
    async fn unknown_classes_and_wrong_priorities_are_forbidden() {
        let store = store_with(&[class("high", 1000, false)]).await;
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"priorityClassName": "nope"}});
        let e = admit_pod(&store, &mut pod, &mut Added::default()).expect_err("forbidden");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: no PriorityClass with name nope was found"
        );
        let mut pod = json!({"metadata": {"name": "p"},
                             "spec": {"priorityClassName": "high", "priority": 5}});
        let e = admit_pod(&store, &mut pod, &mut Added::default()).expect_err("forbidden");
        assert_eq!(
            e.message,
            "pods \"p\" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"
        );
    }

    #[tokio::test]
    async fn one_global_default() {
        let store = store_with(&[class("base", 10, true)]).await;
        let mut other = class("other", 5, true);
        let e = admit_priority_class(&store, &mut other).expect_err("forbidden");
        assert_eq!(
            e.message,
            "priorityclasses.scheduling.k8s.io \"other\" is forbidden: PriorityClass base is already marked as default. Only one default can exist"
        );
        let mut same = class("base", 10, true);
        admit_priority_class(&store, &mut same).expect("its own update");
    }
}
