//! The `/version` document (`version.Info`).
//!
//! Its `major`/`minor` matter more than they look: the kubectl on the dev machine is a
//! dispatcher that runs the bundled kubectl whose minor matches the server's (contract §0),
//! so we report the Kubernetes version whose API types we serve (k8s-openapi `v1_33`).

use serde_json::{Value, json};

/// The Kubernetes minor version of the served API types (k8s-openapi feature `v1_33`).
pub const KUBERNETES_MINOR: &str = "33";

/// The `gitVersion` reported; kubectl parses it as semver and warns on skew by minor.
pub const GIT_VERSION: &str = "v1.33.0";

/// The body of `GET /version`.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        // 1.33 servers report their emulated and minimum compatible versions too.
        "emulationMajor": "1",
        "emulationMinor": KUBERNETES_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION,
        // Not a git build of Kubernetes: name the implementation instead of faking a hash.
        "gitCommit": concat!("pernode-", env!("CARGO_PKG_VERSION")),
        "gitTreeState": "clean",
        // A release build may stamp the date; nothing reads it, so a fixed default is fine.
        "buildDate": option_env!("PERNODE_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        "goVersion": "none (rust)",
        "compiler": "rustc",
        "platform": platform(),
    })
}

/// `os/arch` in Go's spelling, as upstream prints it (`linux/amd64`).
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("{}/{}", std::env::consts::OS, arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_has_the_fields_kubectl_reads() {
        let v = version_info();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "33");
        assert!(
            v["gitVersion"]
                .as_str()
                .is_some_and(|s| s.starts_with("v1.33."))
        );
        for field in [
            "gitCommit",
            "gitTreeState",
            "buildDate",
            "goVersion",
            "compiler",
            "platform",
        ] {
            assert!(v[field].is_string(), "{field}");
        }
        assert!(v["platform"].as_str().is_some_and(|s| s.contains('/')));
    }
}
