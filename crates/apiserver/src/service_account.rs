//! The ServiceAccount admission plugin (plugin/pkg/admission/serviceaccount), for pod creates:
//!
//! - a mirror pod (annotation `kubernetes.io/config.mirror`) is left as it is, but may not
//!   name a service account or mount a secret;
//! - a pod without `spec.serviceAccountName` gets `default`;
//! - the service account named must exist, else the create is a 403 `pods "x" is forbidden:
//!   error looking up service account ns/name: serviceaccount "name" not found`. The `default`
//!   account is looked up a few more times first (100-200 ms apart, as upstream), since the
//!   service account controller creates it right after its namespace;
//! - a pod without `imagePullSecrets` gets its service account's;
//! - unless the pod (or else its account) sets `automountServiceAccountToken: false`, the pod
//!   gets the projected `kube-api-access-xxxxx` volume (a bound token, the `kube-root-ca.crt`
//!   ConfigMap's `ca.crt`, and the namespace) mounted read-only at
//!   `/var/run/secrets/kubernetes.io/serviceaccount` in every container and init container
//!   that has nothing mounted there, as upstream's `mountServiceAccountToken`.

use std::time::Duration;

use pernode_resources::ResourceInfo;
use pernode_store::Store;
use serde_json::{Value, json};

use crate::admission_plugins::added::{Added, Step};
use crate::error::ApiError;
use crate::namespace_lifecycle::admission_name;

/// The service account of pods that name none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// The annotation that marks a mirror pod.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Where pods find their API credentials (upstream's `DefaultAPITokenMountPath`).
pub const API_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The token volume's name prefix (upstream's `ServiceAccountVolumeName` and a dash).
pub const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";

/// The ConfigMap in every namespace holding the API server's CA (`ca.crt`).
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";

/// The projected token's lifetime (upstream's `WarnOnlyBoundTokenExpirationSeconds`).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;

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
pub fn prepare(pod: &mut Value, added: &mut Added) -> Result<Option<String>, ApiError> {
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
    if !pod.get("spec").is_some_and(Value::is_object) {
        // No spec: validation refuses the pod.
        return Ok(None);
    }
    let name = name.unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.to_string());
    let spec = [Step::Key("spec")];
    added.insert(pod, &spec, "serviceAccountName", json!(name));
    added.insert(pod, &spec, "serviceAccount", json!(name));
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
pub fn copy_image_pull_secrets(pod: &mut Value, account: &Value, added: &mut Added) {
    let has_own = pod
        .pointer("/spec/imagePullSecrets")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let theirs = account
        .get("imagePullSecrets")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    if !has_own && let Some(secrets) = theirs {
        let secrets = Value::Array(secrets.clone());
        added.insert(pod, &[Step::Key("spec")], "imagePullSecrets", secrets);
    }
}

/// Whether the pod gets API credentials: the pod's `automountServiceAccountToken`, else its
/// account's, else yes.
fn should_automount(pod: &Value, account: &Value) -> bool {
    pod.pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            account
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true)
}

/// The projected volume of a pod's API credentials (upstream's `TokenVolumeSource`).
fn token_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    })
}

/// Mounts the API credentials in every (init) container with nothing at the mount path, adding
/// the volume (named `fresh_name` unless the pod already has a `kube-api-access-` volume) when
/// some container mounts it.
fn mount_token(pod: &mut Value, fresh_name: String, added: &mut Added) {
    let Some(spec) = pod.get("spec").and_then(Value::as_object) else {
        return;
    };
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|volumes| {
            volumes.iter().find_map(|v| {
                v.get("name")
                    .and_then(Value::as_str)
                    .filter(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
                    .map(str::to_string)
            })
        });
    let mut unmounted = Vec::new();
    for field in ["initContainers", "containers"] {
        let Some(containers) = spec.get(field).and_then(Value::as_array) else {
            continue;
        };
        for (i, container) in containers.iter().enumerate() {
            let has_own = container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .is_some_and(|mounts| {
                    mounts.iter().any(|m| {
                        m.get("mountPath").and_then(Value::as_str) == Some(API_TOKEN_MOUNT_PATH)
                    })
                });
            if container.is_object() && !has_own {
                unmounted.push([Step::Key("spec"), Step::Key(field), Step::Index(i)]);
            }
        }
    }
    if unmounted.is_empty() {
        return;
    }
    let name = existing.clone().unwrap_or(fresh_name);
    let mount = json!({"name": name, "readOnly": true, "mountPath": API_TOKEN_MOUNT_PATH});
    for container in &unmounted {
        added.push(pod, container, "volumeMounts", mount.clone());
    }
    if existing.is_none() {
        added.push(pod, &[Step::Key("spec")], "volumes", token_volume(&name));
    }
}

/// Admission of a create of `obj` (a `info` object) into namespace `ns`.
pub async fn admit_create(
    store: &Store,
    info: &ResourceInfo,
    ns: &str,
    obj: &mut Value,
    added: &mut Added,
) -> Result<(), ApiError> {
    if !is_pods(info) {
        return Ok(());
    }
    let Some(name) = prepare(obj, added)? else {
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
            copy_image_pull_secrets(obj, &account, added);
            if should_automount(obj, &account) {
                let fresh = crate::handlers::generated_name(TOKEN_VOLUME_PREFIX);
                mount_token(obj, fresh, added);
            }
            return Ok(());
        }
    }
    Err(not_found(obj, ns, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_the_api_credentials_volume_in_every_container() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "init"}],
            "containers": [
                {"name": "a", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "own", "volumeMounts": [{"name": "mine", "mountPath": API_TOKEN_MOUNT_PATH}]},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }});
        assert!(should_automount(&pod, &json!({})));
        mount_token(
            &mut pod,
            "kube-api-access-b2x4z".into(),
            &mut Added::default(),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["volumes"][1], token_volume("kube-api-access-b2x4z"));
        assert_eq!(
            spec["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        let mount = json!({"name": "kube-api-access-b2x4z", "readOnly": true, "mountPath": API_TOKEN_MOUNT_PATH});
        assert_eq!(spec["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(spec["containers"][0]["volumeMounts"][1], mount);
        // A container with its own mount at the path keeps it.
        assert_eq!(
            spec["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // A pod that has the volume already (an update, a copy) reuses it.
        let before = pod.clone();
        mount_token(
            &mut pod,
            "kube-api-access-other".into(),
            &mut Added::default(),
        );
        assert_eq!(pod, before);
    }

    #[test]
    fn automount_is_the_pods_choice_then_the_accounts() {
        let pod = |v: Value| json!({"spec": {"automountServiceAccountToken": v}});
        let off = json!({"automountServiceAccountToken": false});
        assert!(!should_automount(&pod(json!(false)), &json!({})));
        assert!(should_automount(&pod(json!(true)), &off));
        assert!(!should_automount(&json!({"spec": {}}), &off));
        assert!(should_automount(&json!({"spec": {}}), &json!({})));
    }

    #[test]
    fn pods_without_an_account_get_default() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}});
        assert_eq!(
            prepare(&mut pod, &mut Added::default()).unwrap().as_deref(),
            Some("default")
        );
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert_eq!(pod["spec"]["serviceAccount"], "default");
        let mut alias = json!({"metadata": {"name": "p"}, "spec": {"serviceAccount": "old"}});
        assert_eq!(
            prepare(&mut alias, &mut Added::default())
                .unwrap()
                .as_deref(),
            Some("old")
        );
        assert_eq!(alias["spec"]["serviceAccountName"], "old");
    }

    #[test]
    fn mirror_pods_are_exempt_but_may_not_name_accounts_or_secrets() {
        let mirror = |spec: Value| json!({"metadata": {"name": "m-n1", "annotations": {MIRROR_POD_ANNOTATION: "h"}}, "spec": spec});
        let mut plain = mirror(json!({"containers": []}));
        assert_eq!(prepare(&mut plain, &mut Added::default()).unwrap(), None);
        assert!(plain["spec"].get("serviceAccountName").is_none());
        let e = prepare(
            &mut mirror(json!({"serviceAccountName": "x"})),
            &mut Added::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "pods \"m-n1\" is forbidden: a mirror pod may not reference service accounts"
        );
        let e = prepare(
            &mut mirror(json!({"volumes": [{"name": "s", "secret": {"secretName": "s"}}]})),
            &mut Added::default(),
        )
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
        copy_image_pull_secrets(&mut pod, &account, &mut Added::default());
        assert_eq!(
            pod["spec"]["imagePullSecrets"],
            json!([{"name": "regcred"}])
        );
        let mut own = json!({"spec": {"imagePullSecrets": [{"name": "mine"}]}});
        copy_image_pull_secrets(&mut own, &account, &mut Added::default());
        assert_eq!(own["spec"]["imagePullSecrets"], json!([{"name": "mine"}]));
    }
}
