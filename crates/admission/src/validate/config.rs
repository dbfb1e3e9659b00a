//! ConfigMap, Secret and ServiceAccount validation (`ValidateConfigMap`, `ValidateSecret`,
//! `ValidateServiceAccount` and their updates in pkg/apis/core/validation).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use pernode_core::names;

use super::immutable;
use super::meta::{name_is_dns_subdomain, object_meta, object_meta_update};
use crate::FieldError;

/// `core.MaxSecretSize`: the limit on a ConfigMap's or Secret's data, in bytes.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

fn config_keys<'a>(keys: impl Iterator<Item = &'a String>, path: &str, errs: &mut Vec<FieldError>) {
    for key in keys {
        for msg in names::is_config_map_key(key) {
            errs.push(FieldError::invalid(
                &format!("{path}[{key}]"),
                key.as_str(),
                &msg,
            ));
        }
    }
}

/// `ValidateConfigMap`: metadata, keys of `data` and `binaryData` (no key in both), 1 MiB in
/// all.
pub fn config_map(cm: &ConfigMap) -> Vec<FieldError> {
    let mut errs = object_meta(&cm.metadata, true, name_is_dns_subdomain);
    let data = cm.data.as_ref();
    let binary = cm.binary_data.as_ref();
    let mut size = 0;
    for (key, value) in data.into_iter().flatten() {
        for msg in names::is_config_map_key(key) {
            errs.push(FieldError::invalid(
                &format!("data[{key}]"),
                key.as_str(),
                &msg,
            ));
        }
        if binary.is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid(
                &format!("data[{key}]"),
                key.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        size += value.len();
    }
    config_keys(
        binary.into_iter().flat_map(|b| b.keys()),
        "binaryData",
        &mut errs,
    );
    size += binary
        .into_iter()
        .flatten()
        .map(|(_, v)| v.0.len())
        .sum::<usize>();
    if size > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("", MAX_DATA_SIZE as i64));
    }
    errs
}

/// `ValidateConfigMapUpdate`: once `immutable` is true, it and the data stay as they are.
pub fn config_map_update(new: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
        }
        if !same_map(new.data.as_ref(), old.data.as_ref()) {
            errs.push(FieldError::forbidden("data", IMMUTABLE_SET));
        }
        if !same_map(new.binary_data.as_ref(), old.binary_data.as_ref()) {
            errs.push(FieldError::forbidden("binaryData", IMMUTABLE_SET));
        }
    }
    errs.extend(config_map(new));
    errs
}

/// `reflect.DeepEqual` of two optional maps (nil and empty differ, as in Go).
fn same_map<V: PartialEq>(
    a: Option<&BTreeMap<String, V>>,
    b: Option<&BTreeMap<String, V>>,
) -> bool {
    a == b
}

/// `ValidateSecret`: metadata, data keys, 1 MiB, and the keys each built-in type requires.
pub fn secret(s: &Secret) -> Vec<FieldError> {
    let mut errs = object_meta(&s.metadata, true, name_is_dns_subdomain);
    let data = s.data.as_ref();
    config_keys(data.into_iter().flat_map(|d| d.keys()), "data", &mut errs);
    let size: usize = data.into_iter().flatten().map(|(_, v)| v.0.len()).sum();
    if size > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("data", MAX_DATA_SIZE as i64));
    }
    let has = |key: &str| data.is_some_and(|d| d.contains_key(key));
    let value = |key: &str| data.and_then(|d| d.get(key)).map(|v| v.0.as_slice());
    let required = |key: &str| FieldError::required(&format!("data[{key}]"), "");
    match s.type_.as_deref().unwrap_or("") {
        "kubernetes.io/service-account-token" => {
            let name = s
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .map(String::as_str)
                .unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match value(key) {
                None => errs.push(required(key)),
                Some(bytes) => {
                    if let Err(e) =
                        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
                    {
                        errs.push(FieldError::invalid(
                            &format!("data[{key}]"),
                            "<secret contents redacted>",
                            &e.to_string(),
                        ));
                    }
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required("username"));
            errs.push(required("password"));
        }
        "kubernetes.io/ssh-auth" if value("ssh-privatekey").is_none_or(<[u8]>::is_empty) => {
            errs.push(required("ssh-privatekey"));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(required(key));
                }
            }
        }
        _ => {}
    }
    errs
}

/// `ValidateSecretUpdate`: the type never changes; once `immutable` is true, it and the data
/// stay as they are.
pub fn secret_update(new: &Secret, old: &Secret) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(immutable(&new.type_, &old.type_, "type"));
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
        }
        if new.data != old.data {
            errs.push(FieldError::forbidden("data", IMMUTABLE_SET));
        }
    }
    errs.extend(secret(new));
    errs
}

/// `ValidateServiceAccount`: metadata (a DNS subdomain name).
pub fn service_account(sa: &ServiceAccount) -> Vec<FieldError> {
    object_meta(&sa.metadata, true, name_is_dns_subdomain)
}

/// `ValidateServiceAccountUpdate`.
pub fn service_account_update(new: &ServiceAccount, old: &ServiceAccount) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(service_account(new));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            resource_version: Some("1".into()),
            ..Default::default()
        }
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn config_map_keys_and_duplicates() {
        let cm = ConfigMap {
            metadata: meta("c"),
            data: Some([("a b".into(), "x".into()), ("k".into(), "v".into())].into()),
            binary_data: Some([("k".into(), ByteString(vec![1]))].into()),
            ..Default::default()
        };
        let errs = messages(&config_map(&cm));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters"), "{errs:?}");
        assert_eq!(
            errs[1],
            "data[k]: Invalid value: \"k\": duplicate of key present in binaryData"
        );
    }

    #[test]
    fn immutable_config_map_keeps_its_data() {
        let old = ConfigMap {
            metadata: meta("c"),
            data: Some([("k".into(), "v".into())].into()),
            immutable: Some(true),
            ..Default::default()
        };
        let mut new = old.clone();
        new.data = Some([("k".into(), "w".into())].into());
        new.immutable = Some(false);
        assert_eq!(
            messages(&config_map_update(&new, &old)),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set"
            ]
        );
        assert!(config_map_update(&old, &old).is_empty());
    }

    #[test]
    fn secret_types_require_their_keys() {
        let s = |t: &str, keys: &[&str]| Secret {
            metadata: meta("s"),
            type_: Some(t.into()),
            data: Some(
                keys.iter()
                    .map(|k| (k.to_string(), ByteString(b"{}".to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        assert_eq!(
            messages(&secret(&s("kubernetes.io/tls", &["tls.crt"]))),
            ["data[tls.key]: Required value"]
        );
        assert_eq!(
            messages(&secret(&s("kubernetes.io/basic-auth", &[]))),
            [
                "data[username]: Required value",
                "data[password]: Required value"
            ]
        );
        assert!(secret(&s("kubernetes.io/dockerconfigjson", &[".dockerconfigjson"])).is_empty());
        assert_eq!(
            messages(&secret(&s("kubernetes.io/service-account-token", &[]))),
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
        assert!(secret(&s("Opaque", &["anything"])).is_empty());
        let old = s("Opaque", &[]);
        let new = s("kubernetes.io/tls", &["tls.crt", "tls.key"]);
        assert_eq!(
            messages(&secret_update(&new, &old)),
            ["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }
}
