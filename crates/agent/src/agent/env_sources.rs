//! Environment variables from API objects, as the kubelet's `makeEnvironmentVariables`:
//! `envFrom` (every key of a ConfigMap's `data` or a Secret's `data`, with the source's
//! `prefix`), `configMapKeyRef` and `secretKeyRef` (one key), with `optional` forgiving a
//! missing object or key and upstream's messages otherwise (the container then waits in
//! `CreateContainerConfigError`); and the variables of the `kubernetes` Service that the
//! kubelet gives every container, so that in-cluster clients find the API server.
//!
//! Deviation: the kubelet points `KUBERNETES_SERVICE_HOST`/`PORT` at the Service's cluster IP
//! (10.96.0.1:443), which kube-proxy routes to the API server. Nothing routes cluster IPs
//! here, so the agent gives the address and port it reaches the API server at itself (from
//! its kubeconfig); the server's certificate names its addresses, so clients verify it.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVarSource, Secret};

use super::env::ConfigError;
use super::volumes::sources::SourceError;

/// The ConfigMaps and Secrets a pod's containers read in `env` and `envFrom`, by name, as the
/// pod worker fetched them before starting a container.
#[derive(Clone, Debug, Default)]
pub struct EnvObjects {
    pub config_maps: HashMap<String, Result<Arc<ConfigMap>, SourceError>>,
    pub secrets: HashMap<String, Result<Arc<Secret>, SourceError>>,
}

fn lookup<'a, T>(
    map: &'a HashMap<String, Result<Arc<T>, SourceError>>,
    kind: &'static str,
    name: &str,
) -> Result<&'a Arc<T>, SourceError> {
    match map.get(name) {
        Some(Ok(o)) => Ok(o),
        Some(Err(e)) => Err(e.clone()),
        None => Err(SourceError::NotSynced { kind }),
    }
}

fn config_error(message: String) -> ConfigError {
    ConfigError {
        reason: "CreateContainerConfigError",
        message,
    }
}

/// The variables of the container's `envFrom`, in order (a later source's key replaces an
/// earlier one's).
pub fn env_from(
    container: &Container,
    objects: &EnvObjects,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        if let Some(r) = &source.config_map_ref {
            match lookup(&objects.config_maps, "configmap", &r.name) {
                Ok(cm) => out.extend(
                    cm.data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (format!("{prefix}{k}"), v.clone())),
                ),
                Err(e) if e.is_not_found() && r.optional.unwrap_or(false) => {}
                Err(e) => return Err(config_error(e.to_string())),
            }
        } else if let Some(r) = &source.secret_ref {
            match lookup(&objects.secrets, "secret", &r.name) {
                Ok(s) => out.extend(s.data.iter().flatten().map(|(k, v)| {
                    (
                        format!("{prefix}{k}"),
                        String::from_utf8_lossy(&v.0).into_owned(),
                    )
                })),
                Err(e) if e.is_not_found() && r.optional.unwrap_or(false) => {}
                Err(e) => return Err(config_error(e.to_string())),
            }
        }
    }
    Ok(out)
}

/// The value of a `configMapKeyRef` or `secretKeyRef`; `None` when it is optional and missing
/// (the variable is then not set).
pub fn key_ref(
    from: &EnvVarSource,
    namespace: &str,
    objects: &EnvObjects,
) -> Result<Option<String>, ConfigError> {
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional.unwrap_or(false);
        let cm = match lookup(&objects.config_maps, "configmap", &r.name) {
            Ok(cm) => cm,
            Err(e) if e.is_not_found() && optional => return Ok(None),
            Err(e) => return Err(config_error(e.to_string())),
        };
        return match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(v) => Ok(Some(v.clone())),
            None if optional => Ok(None),
            None => Err(config_error(format!(
                "couldn't find key {} in ConfigMap {namespace}/{}",
                r.key, r.name
            ))),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let optional = r.optional.unwrap_or(false);
        let s = match lookup(&objects.secrets, "secret", &r.name) {
            Ok(s) => s,
            Err(e) if e.is_not_found() && optional => return Ok(None),
            Err(e) => return Err(config_error(e.to_string())),
        };
        return match s.data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v.0).into_owned())),
            None if optional => Ok(None),
            None => Err(config_error(format!(
                "couldn't find key {} in Secret {namespace}/{}",
                r.key, r.name
            ))),
        };
    }
    Ok(Some(String::new()))
}

/// The variables the kubelet sets for the `kubernetes` Service (port 443 named `https`), for
/// an API server at `host:port` (see the module's note on the deviation).
pub fn kubernetes_service_env(host: &str, port: u16) -> Vec<(String, String)> {
    let hostport = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let url = format!("tcp://{hostport}");
    let port = port.to_string();
    [
        ("KUBERNETES_SERVICE_HOST", host.to_string()),
        ("KUBERNETES_SERVICE_PORT", port.clone()),
        ("KUBERNETES_SERVICE_PORT_HTTPS", port.clone()),
        ("KUBERNETES_PORT", url.clone()),
        (&format!("KUBERNETES_PORT_{port}_TCP"), url),
        (&format!("KUBERNETES_PORT_{port}_TCP_PROTO"), "tcp".into()),
        (&format!("KUBERNETES_PORT_{port}_TCP_PORT"), port.clone()),
        (
            &format!("KUBERNETES_PORT_{port}_TCP_ADDR"),
            host.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::env::{FieldContext, resolve_env};
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn objects() -> EnvObjects {
        let cm = ConfigMap {
            data: Some(
                [
                    ("LEVEL".to_string(), "debug".to_string()),
                    ("MODE".to_string(), "fast".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let secret = Secret {
            data: Some([("PASSWORD".to_string(), ByteString(b"hunter2".to_vec()))].into()),
            ..Default::default()
        };
        let missing = |kind| SourceError::NotFound {
            kind,
            name: "gone".into(),
        };
        EnvObjects {
            config_maps: [
                ("cfg".to_string(), Ok(Arc::new(cm))),
                ("gone".to_string(), Err(missing("configmap"))),
            ]
            .into(),
            secrets: [
                ("creds".to_string(), Ok(Arc::new(secret))),
                ("gone".to_string(), Err(missing("secret"))),
            ]
            .into(),
        }
    }

    fn resolve(container: serde_json::Value) -> Result<Vec<(String, String)>, ConfigError> {
        let pod: Pod =
            serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"}}))
                .expect("pod");
        let c: Container = serde_json::from_value(container).expect("container");
        let allocatable = Default::default();
        let ctx = FieldContext {
            pod: &pod,
            node_name: "n",
            pod_ip: "",
            host_ip: "",
            allocatable: &allocatable,
        };
        resolve_env(&c, &ctx, &[("PATH".into(), "/bin".into())], &objects())
    }

    #[test]
    fn env_from_and_key_refs_resolve_in_order() {
        let env = resolve(json!({"name": "c",
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "APP_"}, {"secretRef": {"name": "creds"}},
                        {"configMapRef": {"name": "gone", "optional": true}}],
            "env": [
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
                {"name": "APP_LEVEL", "value": "override $(PASSWORD)"},
                {"name": "SKIPPED", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope", "optional": true}}},
                {"name": "ALSO_SKIPPED", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k", "optional": true}}},
            ]}))
        .expect("env");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("APP_MODE"), Some("fast"));
        assert_eq!(get("PASSWORD"), Some("hunter2"));
        assert_eq!(get("MODE"), Some("fast"));
        assert_eq!(get("APP_LEVEL"), Some("override hunter2"));
        assert_eq!(get("SKIPPED"), None);
        assert_eq!(get("ALSO_SKIPPED"), None);
    }

    #[test]
    fn missing_sources_and_keys_say_what_upstream_says() {
        let err = |c: serde_json::Value| resolve(c).expect_err("config error");
        let e = err(json!({"name": "c", "envFrom": [{"configMapRef": {"name": "gone"}}]}));
        assert_eq!(e.reason, "CreateContainerConfigError");
        assert_eq!(e.message, "configmap \"gone\" not found");
        let e = err(
            json!({"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k"}}}]}),
        );
        assert_eq!(e.message, "secret \"gone\" not found");
        let e = err(
            json!({"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}),
        );
        assert_eq!(e.message, "couldn't find key k in ConfigMap ns/cfg");
        let e = err(
            json!({"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}]}),
        );
        assert_eq!(e.message, "couldn't find key k in Secret ns/creds");
        // Not fetched (the watch never listed it): upstream's sync timeout.
        let e = err(
            json!({"name": "c", "envFrom": [{"secretRef": {"name": "unknown", "optional": true}}]}),
        );
        assert_eq!(
            e.message,
            "failed to sync secret cache: timed out waiting for the condition"
        );
    }

    #[test]
    fn kubernetes_service_variables() {
        let env: HashMap<String, String> = kubernetes_service_env("10.0.0.5", 6443)
            .into_iter()
            .collect();
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.0.0.5");
        assert_eq!(env["KUBERNETES_SERVICE_PORT"], "6443");
        assert_eq!(env["KUBERNETES_SERVICE_PORT_HTTPS"], "6443");
        assert_eq!(env["KUBERNETES_PORT"], "tcp://10.0.0.5:6443");
        assert_eq!(env["KUBERNETES_PORT_6443_TCP"], "tcp://10.0.0.5:6443");
        assert_eq!(env["KUBERNETES_PORT_6443_TCP_PROTO"], "tcp");
        assert_eq!(env["KUBERNETES_PORT_6443_TCP_PORT"], "6443");
        assert_eq!(env["KUBERNETES_PORT_6443_TCP_ADDR"], "10.0.0.5");
        assert_eq!(env.len(), 8);
        let v6: HashMap<String, String> = kubernetes_service_env("::1", 443).into_iter().collect();
        assert_eq!(v6["KUBERNETES_PORT"], "tcp://[::1]:443");
    }
}
