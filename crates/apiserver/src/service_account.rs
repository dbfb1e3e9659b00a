//! The ServiceAccount admission plugin (plugin/pkg/admission/serviceaccount), for pod creates:
//!
//! - a mirror pod (annotation `kubernetes.io/config.mirror`) is left as it is, but may not
//!   name a service account or mount a secret;
//! - a pod without `spec.serviceAccountName` gets `default`;
//! - the service account named must exist, else the create is a 403 `pods "x" is forbidden:
//!   error looking up service account ns/name: serviceaccount "name" not found`. The `default`
//!   account is looked up a few more times first (100-200 ms apart, as upstream), since the
//!   service account controller creates it right after its namespace;
//! - a pod without `imagePullSecrets` gets its service account's.
//!
//! Not done: the projected token volume (`kube-api-access-*`) upstream mounts. Tokens are
//! issued on request (`serviceaccounts/token`, [`crate::token_request`]) but not mounted into
//! pods.

use std::time::Duration;

use pernode_resources::ResourceInfo;
use pernode_store::Store;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::namespace_lifecycle::admission_name;

/// The service account of pods that name none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// The annotation that marks a mirror pod.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Lookups of the `default` account before a create is refused (upstream: 10).
const DEFAULT_ACCOUNT_ATTEMPTS: usize = 10;

fn forbidden(obj: &Value, why: &str) -> ApiError {
    ApiError::forbidden_object("", "pods", admission_name(obj), why)
}

fn is_pods(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "pods"
}

/// What the plugin decides before any lookup: `Ok(None)` to leave the pod alone (a mirror
/// pod), `Ok(Some(name))` for the service account to look up, having set it on the pod.
pub fn prepare(pod: &mut Value) -> Result<Option<String>, ApiError> {
    let mirror = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    let named = |field: &str| {
        pod.get("spec")
            .and_then(|s| s.get(field))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    // The v1 conversion: the deprecated `serviceAccount` fills in a missing name.
    let name = named("serviceAccountName").or_else(|| named("serviceAccount"));
    if mirror {
        if name.is_some() {
            return Err(forbidden(
                pod,
                "a mirror pod may not reference service accounts",
            ));
        }
        let volumes = pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if volumes
            .iter()
            .any(|v| v.get("secret").is_some_and(|s| !s.is_null()))
        {
            return Err(forbidden(pod, "a mirror pod may not reference secrets"));
        }
        return Ok(None);
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        // No spec: validation refuses the pod.
        return Ok(None);
    };
    let name = name.unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.to_string());
    spec.insert("serviceAccountName".into(), json!(name));
    spec.insert("serviceAccount".into(), json!(name));
    Ok(Some(name))
}

/// The refusal of a pod naming a service account that does not exist.
pub fn not_found(pod: &Value, ns: &str, name: &str) -> ApiError {
    forbidden(
        pod,
        &format!(
            "error looking up service account {ns}/{name}: serviceaccount \"{name}\" not found"
        ),
    )
}

/// A pod without image pull secrets gets its service account's.
pub fn copy_image_pull_secrets(pod: &mut Value, account: &Value) {
    let has_own = pod
        .pointer("/spec/imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let theirs = account
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    if !has_own
        && let Some(secrets) = theirs
        && let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert("imagePullSecrets".into(), Value::Array(secrets.clone()));
    }
}

/// Admission of a create of `obj` (a `info` object) into namespace `ns`.
pub async fn admit_create(
    store: &Store,
    info: &ResourceInfo,
    ns: &str,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if !is_pods(info) {
        return Ok(());
    }
    let Some(name) = prepare(obj)? else {
        return Ok(());
    };
    let key = format!("serviceaccounts/{ns}/{name}");
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT {
        DEFAULT_ACCOUNT_ATTEMPTS
    } else {
        1
    };
    for attempt in 0..attempts {
        if attempt > 0 {
            use rand::Rng;
            let ms = rand::rng().random_range(100..200);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(entry) = store.get(&key) {
            let account: Value = serde_json::from_slice(&entry.json)
                .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))?;
            copy_image_pull_secrets(obj, &account);
            return Ok(());
        }
    }
    Err(not_found(obj, ns, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_without_an_account_get_default() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        assert_eq!(prepare(&mut pod).unwrap().as_deref(), Some("default"));
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert_eq!(pod["spec"]["serviceAccount"], "default");
        let mut alias = json!({"metadata": {"name": "p"}, "spec": {"serviceAccount": "old"}});
        assert_eq!(prepare(&mut alias).unwrap().as_deref(), Some("old"));
        assert_eq!(alias["spec"]["serviceAccountName"], "old");
    }

    #[test]
    fn mirror_pods_are_exempt_but_may_not_name_accounts_or_secrets() {
        let mirror = |spec: Value| json!({"metadata": {"name": "m-n1", "annotations": {MIRROR_POD_ANNOTATION: "h"}}, "spec": spec});
        let mut plain = mirror(json!({"containers": []}));
        assert_eq!(prepare(&mut plain).unwrap(), None);
        assert!(plain["spec"].get("serviceAccountName").is_none());
        let e = prepare(&mut mirror(json!({"serviceAccountName": "x"}))).unwrap_err();
        assert_eq!(
            e.message,
            "pods \"m-n1\" is forbidden: a mirror pod may not reference service accounts"
        );
        let e = prepare(&mut mirror(
            json!({"volumes": [{"name": "s", "secret": {"secretName": "s"}}]}),
        ))
        .unwrap_err();
        assert_eq!(
            e.message,
            "pods \"m-n1\" is forbidden: a mirror pod may not reference secrets"
        );
    }

    #[test]
    fn a_missing_account_is_refused_with_upstreams_message() {
        let pod = json!({"metadata": {"generateName": "agent-"}});
        let e = not_found(&pod, "ns", "reader");
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods \"agent-\" is forbidden: error looking up service account ns/reader: serviceaccount \"reader\" not found"
        );
        assert_eq!(e.to_status()["details"]["kind"], "pods");
    }

    #[test]
    fn image_pull_secrets_come_from_the_account_when_the_pod_has_none() {
        let account = json!({"imagePullSecrets": [{"name": "regcred"}]});
        let mut pod = json!({"spec": {}});
        copy_image_pull_secrets(&mut pod, &account);
        assert_eq!(
            pod["spec"]["imagePullSecrets"],
            json!([{"name": "regcred"}])
        );
        let mut own = json!({"spec": {"imagePullSecrets": [{"name": "mine"}]}});
        copy_image_pull_secrets(&mut own, &account);
        assert_eq!(own["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
    }
}
