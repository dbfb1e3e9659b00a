//! Images as the kubelet's image manager handles them: the default `:latest` tag, the pull
//! policy (`Always`, `IfNotPresent`, `Never`; unset: `Always` for `:latest` or no tag, else
//! `IfNotPresent`), credentials from the pod's `imagePullSecrets` (`.dockerconfigjson` or
//! `.dockercfg`, matched by registry), and upstream's events and errors: `Pulling`, `Pulled`
//! (or "already present"), `Failed` with `ErrImagePull`, `ErrImageNeverPull`.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_cri::v1 as cri;
use serde::Deserialize;

/// An image with its tag, `:latest` when it names neither tag nor digest
/// (upstream's `applyDefaultImageTag`).
pub fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Whether the image is to be pulled, given whether it is present (upstream's
/// `shouldPullImage` with the API's defaulting of an unset policy).
pub fn should_pull(policy: Option<&str>, image: &str, present: bool) -> bool {
    let tagged = with_default_tag(image);
    let default = if tagged.ends_with(":latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    match policy.unwrap_or(default) {
        "Never" => false,
        "IfNotPresent" => !present,
        _ => true,
    }
}

/// The registry an image comes from, as credentials are keyed (`docker.io` when it names
/// none).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

#[derive(Deserialize)]
struct DockerConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize, Default)]
struct DockerAuth {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
}

/// The registry host a credential's key names (`https://index.docker.io/v1/` is docker.io).
fn key_host(key: &str) -> &str {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    }
}

/// The credential for `image` among pull secrets' data (`.dockerconfigjson` documents, or
/// the older `.dockercfg` maps), the first whose registry matches.
pub fn auth_for(image: &str, secrets: &[BTreeMap<String, Vec<u8>>]) -> Option<cri::AuthConfig> {
    let registry = registry_of(image);
    for data in secrets {
        // A secret that does not parse gives no credential, as the kubelet's keyring skips it.
        let auths = if let Some(json) = data.get(".dockerconfigjson") {
            serde_json::from_slice::<DockerConfigJson>(json).map(|c| c.auths)
        } else if let Some(cfg) = data.get(".dockercfg") {
            serde_json::from_slice::<BTreeMap<String, DockerAuth>>(cfg)
        } else {
            continue;
        };
        let Ok(auths) = auths else { continue };
        for (key, a) in auths {
            if key_host(&key) != registry {
                continue;
            }
            let (mut username, mut password) = (a.username, a.password);
            if username.is_empty()
                && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(&a.auth)
                && let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':')
            {
                username = u.to_string();
                password = p.to_string();
            }
            // No server address, as the kubelet's keyring gives none: containerd 1.6 parses
            // it as a URL and fails on `host:port` ("first path segment in URL cannot
            // contain colon") or drops the credential for a bare host.
            return Some(cri::AuthConfig {
                username,
                password,
                ..Default::default()
            });
        }
    }
    None
}

/// A duration as Go's `time.Duration.String()` prints one truncated to milliseconds.
pub fn go_millis(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (mins, rest) = (ms / 60_000, ms % 60_000);
    let secs = format!("{}.{:03}", rest / 1000, rest % 1000);
    let secs = secs.trim_end_matches('0').trim_end_matches('.');
    if mins > 0 {
        format!("{mins}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_policies_as_upstream() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(with_default_tag("app:1.0"), "app:1.0");
        assert_eq!(with_default_tag("app@sha256:ab"), "app@sha256:ab");
        // Unset: Always for latest, IfNotPresent otherwise.
        assert!(should_pull(None, "busybox", true));
        assert!(!should_pull(None, "busybox:1.36", true));
        assert!(should_pull(None, "busybox:1.36", false));
        assert!(!should_pull(Some("Never"), "busybox", false));
        assert!(should_pull(Some("Always"), "busybox:1", true));
        assert!(!should_pull(Some("IfNotPresent"), "busybox", true));
    }

    #[test]
    fn pull_secrets_match_by_registry() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
        let encoded = base64::engine::general_purpose::STANDARD.encode("bob:secret");
        let json = format!(
            r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{encoded}"}},"https://index.docker.io/v1/":{{"username":"d","password":"p"}}}}}}"#
        );
        let secrets = vec![BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            json.into_bytes(),
        )])];
        let a = auth_for("127.0.0.1:5000/app:1", &secrets).expect("auth");
        assert_eq!(
            (a.username.as_str(), a.password.as_str()),
            ("bob", "secret")
        );
        let d = auth_for("busybox", &secrets).expect("docker hub");
        assert_eq!(d.username, "d");
        assert!(auth_for("quay.io/x", &secrets).is_none());
        assert_eq!(go_millis(std::time::Duration::from_millis(523)), "523ms");
        assert_eq!(go_millis(std::time::Duration::from_millis(1500)), "1.5s");
        assert_eq!(
            go_millis(std::time::Duration::from_millis(62_050)),
            "1m2.05s"
        );
    }
}
