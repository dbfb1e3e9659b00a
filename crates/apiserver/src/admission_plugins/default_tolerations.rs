//! The DefaultTolerationSeconds admission plugin: a new pod that does not tolerate
//! `node.kubernetes.io/not-ready` and `unreachable` NoExecute taints gets 300 s tolerations of
//! them (`pernode_admission::defaults::default_tolerations`), so the taint manager evicts it
//! five minutes after its node fails rather than at once.

use k8s_openapi::api::core::v1::Toleration;
use serde::Deserialize;
use serde_json::Value;

use super::added::{Added, Step};

/// Adds the missing default tolerations to `pod`'s spec. Tolerations that do not decode are
/// left to validation, which words the error.
pub fn admit_pod(pod: &mut Value, added: &mut Added) {
    let Some(spec) = pod.get("spec").filter(|s| s.is_object()) else {
        return;
    };
    let own = match spec.get("tolerations") {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => match Vec::<Toleration>::deserialize(list) {
            Ok(own) => own,
            Err(_) => return,
        },
    };
    for toleration in pernode_admission::defaults::default_tolerations(&own) {
        let Ok(toleration) = serde_json::to_value(toleration) else {
            continue;
        };
        added.push(pod, &[Step::Key("spec")], "tolerations", toleration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_without_them_gets_both_as_additions() {
        let mut pod = json!({"spec": {"containers": []}});
        let mut added = Added::default();
        admit_pod(&mut pod, &mut added);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
        let taken = added.take_out(&mut pod);
        assert_eq!(pod, json!({"spec": {"containers": []}}));
        added.put_back(&mut pod, taken);
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn covered_taints_and_undecodable_tolerations_get_nothing() {
        let all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        let mut pod = all.clone();
        admit_pod(&mut pod, &mut Added::default());
        assert_eq!(pod, all);
        let bad = json!({"spec": {"tolerations": "all"}});
        let mut pod = bad.clone();
        admit_pod(&mut pod, &mut Added::default());
        assert_eq!(pod, bad);
    }
}
