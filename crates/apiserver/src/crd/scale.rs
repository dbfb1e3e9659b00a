//! The scale subresource of a custom resource (upstream's customresource ScaleREST): an
//! `autoscaling/v1` Scale read from, and written to, the paths the CRD names
//! (`specReplicasPath`, `statusReplicasPath`, `labelSelectorPath`).

use axum::http::{Method, StatusCode};
use axum::response::Response;
use pernode_resources::ScalePaths;
use serde_json::{Value, json};

use crate::AppState;
use crate::codec::{decode_object, media_type};
use crate::error::ApiError;
use crate::handlers::{Request, json_response};

/// `.spec.replicas` as a JSON pointer.
fn pointer(path: &str) -> String {
    path.split('.')
        .filter(|s| !s.is_empty())
        .fold(String::new(), |mut p, s| {
            p.push('/');
            p.push_str(s);
            p
        })
}

fn paths(req: &Request) -> Result<&'static ScalePaths, ApiError> {
    req.target
        .info
        .custom
        .and_then(|c| c.scale.as_ref())
        .ok_or_else(ApiError::no_route)
}

/// The Scale of a stored object.
fn scale_of(obj: &Value, paths: &ScalePaths) -> Value {
    let meta = &obj["metadata"];
    let mut metadata = serde_json::Map::new();
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(key) {
            metadata.insert(key.into(), v.clone());
        }
    }
    let spec_replicas = obj
        .pointer(&pointer(&paths.spec_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status_replicas = obj
        .pointer(&pointer(&paths.status_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut status = json!({"replicas": status_replicas});
    if let Some(selector) = paths
        .label_selector
        .as_deref()
        .and_then(|p| obj.pointer(&pointer(p)))
        .and_then(Value::as_str)
    {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": spec_replicas},
        "status": status,
    })
}

/// GET, PUT and PATCH of `<resource>/<name>/scale`.
pub async fn handle(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let paths = paths(req)?;
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    let name = req.target.name.clone().unwrap_or_default();
    let not_found = || ApiError::not_found(req.target.group(), req.target.plural(), &name);
    loop {
        let entry = state.store.get(&key).ok_or_else(not_found)?;
        let mut obj: Value = serde_json::from_slice(&entry.json)
            .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))?;
        let current = scale_of(&obj, paths);
        if req.method == Method::GET {
            return Ok(json_response(StatusCode::OK, current.to_string()));
        }
        let wanted = if req.method == Method::PATCH {
            let media = media_type(
                req.headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
            );
            let patch_type = crate::handlers::patch_type_of(req.target.info, &media)?;
            pernode_patch::apply(patch_type, &current, &req.body)
                .map_err(|e| ApiError::from_parts(e.code(), e.reason(), e.status_message()))?
        } else {
            decode_object(
                req.headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                &req.body,
                // Custom resources take JSON and YAML only, so the kind is never checked.
                &crate::codec::BodyKind::of(req.target.info),
            )?
        };
        if let Some(rv) = wanted
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|rv| !rv.is_empty())
            && rv != entry.rv.to_string()
        {
            return Err(ApiError::modified(
                req.target.group(),
                req.target.plural(),
                &name,
            ));
        }
        let Some(replicas) = wanted.pointer("/spec/replicas").and_then(Value::as_i64) else {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                &name,
                format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Required value"),
                vec![],
            ));
        };
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                &name,
                format!(
                    "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                ),
                vec![],
            ));
        }
        let target = pointer(&paths.spec_replicas);
        if obj.pointer(&target).and_then(Value::as_i64) == Some(replicas) {
            return Ok(json_response(StatusCode::OK, current.to_string()));
        }
        set_at(&mut obj, &target, json!(replicas));
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            let generation = meta.get("generation").and_then(Value::as_i64).unwrap_or(1);
            meta.insert("generation".into(), json!(generation + 1));
        }
        if req.query.dry_run() {
            return Ok(json_response(
                StatusCode::OK,
                scale_of(&obj, paths).to_string(),
            ));
        }
        match state.store.update(&key, obj, Some(entry.rv)).await {
            Ok(written) => {
                let stored: Value = serde_json::from_slice(&written.json)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                return Ok(json_response(
                    StatusCode::OK,
                    scale_of(&stored, paths).to_string(),
                ));
            }
            Err(pernode_store::StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    }
}

/// Sets the value at a JSON pointer, making the objects on the way.
fn set_at(obj: &mut Value, pointer: &str, value: Value) {
    let mut current = obj;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        if !current.is_object() {
            *current = json!({});
        }
        let Some(map) = current.as_object_mut() else {
            return;
        };
        if i + 1 == parts.len() {
            map.insert((*part).to_string(), value);
            return;
        }
        current = map.entry((*part).to_string()).or_insert_with(|| json!({}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_reads_and_writes_the_named_paths() {
        let paths = ScalePaths {
            spec_replicas: ".spec.count".into(),
            status_replicas: ".status.count".into(),
            label_selector: Some(".status.selector".into()),
        };
        let obj = json!({"metadata": {"name": "w", "namespace": "ns", "resourceVersion": "7"},
                         "spec": {"count": 2}, "status": {"count": 1, "selector": "app=w"}});
        assert_eq!(
            scale_of(&obj, &paths),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": "w", "namespace": "ns", "resourceVersion": "7"},
                   "spec": {"replicas": 2}, "status": {"replicas": 1, "selector": "app=w"}})
        );
        let mut empty = json!({});
        set_at(&mut empty, "/spec/count", json!(3));
        assert_eq!(empty, json!({"spec": {"count": 3}}));
    }
}
