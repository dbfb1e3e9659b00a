//! What a volume of each API-backed kind holds, as upstream's volume plugins compute it before
//! the atomic writer writes it: `MakePayload` of `pkg/volume/configmap` and `pkg/volume/secret`
//! (all keys, or the `items` given; `defaultMode` or each item's `mode`; a missing key is an
//! error unless the source is `optional`), `CollectData` of `pkg/volume/downwardapi` (pod
//! metadata and container resources), and the errors as upstream words them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret};

use super::atomic_writer::{FileProjection, Payload};
use crate::agent::env;

/// The mode of a projected file when the source gives none (the API's default, 0644).
pub const DEFAULT_MODE: i32 = 0o644;

fn mode(m: i32) -> u32 {
    (m as u32) & 0o7777
}

/// A ConfigMap's files (`configmap.MakePayload`): every `data` and `binaryData` key, or the
/// `items` mapped to their paths.
pub fn config_map(
    items: &[KeyToPath],
    cm: &ConfigMap,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let data = cm.data.as_ref();
    let binary = cm.binary_data.as_ref();
    let mut payload = Payload::new();
    if items.is_empty() {
        for (k, v) in data.into_iter().flatten() {
            payload.insert(k.clone(), file(v.as_bytes(), default_mode));
        }
        for (k, v) in binary.into_iter().flatten() {
            payload.insert(k.clone(), file(&v.0, default_mode));
        }
        return Ok(payload);
    }
    for item in items {
        let bytes = data
            .and_then(|d| d.get(&item.key))
            .map(|s| s.as_bytes())
            .or_else(|| {
                binary
                    .and_then(|b| b.get(&item.key))
                    .map(|b| b.0.as_slice())
            });
        let Some(bytes) = bytes else {
            if optional {
                continue;
            }
            return Err(format!(
                "configmap references non-existent config key: {}",
                item.key
            ));
        };
        payload.insert(
            item.path.clone(),
            file(bytes, item.mode.unwrap_or(default_mode)),
        );
    }
    Ok(payload)
}

/// A Secret's files (`secret.MakePayload`): every `data` key, or the `items`.
pub fn secret(
    items: &[KeyToPath],
    secret: &Secret,
    default_mode: i32,
    optional: bool,
) -> Result<Payload, String> {
    let data = secret.data.as_ref();
    let mut payload = Payload::new();
    if items.is_empty() {
        for (k, v) in data.into_iter().flatten() {
            payload.insert(k.clone(), file(&v.0, default_mode));
        }
        return Ok(payload);
    }
    for item in items {
        let Some(bytes) = data.and_then(|d| d.get(&item.key)) else {
            if optional {
                continue;
            }
            return Err(format!("references non-existent secret key: {}", item.key));
        };
        payload.insert(
            item.path.clone(),
            file(&bytes.0, item.mode.unwrap_or(default_mode)),
        );
    }
    Ok(payload)
}

/// The downward API's files (`downwardapi.CollectData`): each item's field or container
/// resource; the errors of every failing item, aggregated.
pub fn downward_api(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    allocatable: &BTreeMap<String, String>,
    default_mode: i32,
) -> Result<Payload, String> {
    let mut errors = Vec::new();
    let mut payload = Payload::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            metadata_field(pod, &f.field_path)
        } else if let Some(r) = &item.resource_field_ref {
            let name = r.container_name.as_deref().unwrap_or("");
            pod.spec
                .iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|c| c.name == name)
                .ok_or_else(|| format!("container {name} not found"))
                .and_then(|c| {
                    env::resource_field_value(c, &r.resource, r.divisor.as_ref(), allocatable)
                })
        } else {
            Ok(String::new())
        };
        let data = value.unwrap_or_else(|e| {
            errors.push(e);
            String::new()
        });
        payload.insert(
            item.path.clone(),
            file(data.as_bytes(), item.mode.unwrap_or(default_mode)),
        );
    }
    if errors.is_empty() {
        Ok(payload)
    } else {
        Err(aggregate(&errors))
    }
}

/// `fieldpath.ExtractFieldPathAsString`: the pod metadata a downward API file may hold.
pub fn metadata_field(pod: &Pod, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let item = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(|key| map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    if let Some(v) = item("metadata.labels['", meta.labels.as_ref()) {
        return Ok(v);
    }
    if let Some(v) = item("metadata.annotations['", meta.annotations.as_ref()) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        other => return Err(format!("unsupported fieldPath: {other}")),
    })
}

/// `fieldpath.FormatMap`: `key="value"` lines in key order, values quoted as Go's `%q`.
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", pernode_core::goquote::quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `utilerrors.NewAggregate(errs).Error()`: one message as it is, several (duplicates
/// dropped) as `[a, b]`.
pub fn aggregate(errors: &[String]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

fn file(data: &[u8], m: i32) -> FileProjection {
    FileProjection {
        data: data.to_vec(),
        mode: mode(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn items(v: serde_json::Value) -> Vec<KeyToPath> {
        serde_json::from_value(v).expect("items")
    }

    fn files(p: &Payload) -> Vec<(String, String, u32)> {
        p.iter()
            .map(|(k, f)| {
                (
                    k.clone(),
                    String::from_utf8_lossy(&f.data).into_owned(),
                    f.mode,
                )
            })
            .collect()
    }

    fn cm() -> ConfigMap {
        ConfigMap {
            data: Some(
                [
                    ("a".to_string(), "1".to_string()),
                    ("b".to_string(), "2".to_string()),
                ]
                .into(),
            ),
            binary_data: Some([("bin".to_string(), ByteString(vec![0xff, 0]))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn config_maps_project_all_keys_or_the_items_with_their_modes() {
        let all = config_map(&[], &cm(), 0o640, false).expect("all");
        assert_eq!(all.len(), 3);
        assert_eq!(all["a"].mode, 0o640);
        assert_eq!(all["bin"].data, vec![0xff, 0]);

        let mapped = config_map(
            &items(json!([{"key": "a", "path": "dir/a.txt", "mode": 0o400}, {"key": "bin", "path": "b"}])),
            &cm(),
            0o644,
            false,
        )
        .expect("items");
        assert_eq!(
            files(&mapped),
            vec![
                ("b".to_string(), "\u{fffd}\0".to_string(), 0o644),
                ("dir/a.txt".to_string(), "1".to_string(), 0o400)
            ]
        );

        let missing = items(json!([{"key": "nope", "path": "x"}, {"key": "a", "path": "a"}]));
        assert_eq!(
            config_map(&missing, &cm(), 0o644, false).expect_err("missing key"),
            "configmap references non-existent config key: nope"
        );
        // Optional: the missing key is skipped, the rest projected.
        let p = config_map(&missing, &cm(), 0o644, true).expect("optional");
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a"]);
        // An optional ConfigMap that does not exist projects as an empty one.
        assert!(
            config_map(&[], &ConfigMap::default(), 0o644, true)
                .expect("empty")
                .is_empty()
        );
    }

    #[test]
    fn secrets_project_decoded_data() {
        let s = Secret {
            data: Some([("token".to_string(), ByteString(b"s3cr3t".to_vec()))].into()),
            ..Default::default()
        };
        let all = secret(&[], &s, 0o400, false).expect("all");
        assert_eq!(files(&all), vec![("token".into(), "s3cr3t".into(), 0o400)]);
        let missing = items(json!([{"key": "other", "path": "o"}]));
        assert_eq!(
            secret(&missing, &s, 0o644, false).expect_err("missing"),
            "references non-existent secret key: other"
        );
        assert!(
            secret(&missing, &s, 0o644, true)
                .expect("optional")
                .is_empty()
        );
    }

    #[test]
    fn downward_api_formats_metadata_and_resources() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u",
                "labels": {"b": "2", "a": "say \"hi\"\n"}, "annotations": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}]},
        }))
        .expect("pod");
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o600},
            {"path": "one", "fieldRef": {"fieldPath": "metadata.annotations['x']"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "requests.cpu", "divisor": "1m"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
        ]))
        .expect("items");
        let allocatable = [("memory".to_string(), "2Gi".to_string())].into();
        let p = downward_api(&items, &pod, &allocatable, 0o644).expect("payload");
        let text = |k: &str| String::from_utf8_lossy(&p[k].data).into_owned();
        assert_eq!(text("labels"), "a=\"say \\\"hi\\\"\\n\"\nb=\"2\"");
        assert_eq!(text("ns"), "ns");
        assert_eq!(p["ns"].mode, 0o600);
        assert_eq!(text("one"), "y");
        assert_eq!(text("cpu"), "250");
        // No memory limit: the node's allocatable, as upstream.
        assert_eq!(text("mem"), "2048");

        let bad: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "a", "fieldRef": {"fieldPath": "spec.nodeName"}},
            {"path": "b", "resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}},
        ]))
        .expect("items");
        assert_eq!(
            downward_api(&bad, &pod, &allocatable, 0o644).expect_err("bad"),
            "[unsupported fieldPath: spec.nodeName, container nope not found]"
        );
    }

    #[test]
    fn aggregates_read_as_upstream() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into()]), "[a, b]");
        assert_eq!(
            pernode_core::goquote::quote("tab\there\u{1}é"),
            "\"tab\\there\\x01é\""
        );
    }
}
