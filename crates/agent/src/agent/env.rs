//! What a container's process gets: its environment (`env` with `$(VAR)` references,
//! `fieldRef`s, `resourceFieldRef`s, ConfigMap and Secret keys, and `envFrom`), its argv
//! (`command`/`args`, or the image map when the pod gives no command), resolved as the
//! kubelet and the container runtime would.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::env_sources::{self, EnvObjects};

/// Why a container cannot be started; the waiting reason and message the pod reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// `CreateContainerConfigError`, `CreateContainerError` or `RunContainerError`.
    pub reason: &'static str,
    /// A message saying what to fix.
    pub message: String,
}

/// The pod-level facts `fieldRef`s read.
#[derive(Clone, Debug)]
pub struct FieldContext<'a> {
    /// The pod (metadata and spec).
    pub pod: &'a Pod,
    /// The node the agent runs (`spec.nodeName`).
    pub node_name: &'a str,
    /// `status.podIP` (the node's IP: containers share the host network).
    pub pod_ip: &'a str,
    /// `status.hostIP`.
    pub host_ip: &'a str,
    /// The node's allocatable resources: the default of unset limits.
    pub allocatable: &'a BTreeMap<String, String>,
}

/// The value of a `fieldRef.fieldPath`, as upstream's `podFieldSelectorRuntimeValue`.
pub fn field_value(ctx: &FieldContext<'_>, path: &str) -> Result<String, String> {
    let meta = &ctx.pod.metadata;
    let spec = ctx.pod.spec.as_ref();
    let map_item = |prefix: &str, map: Option<&std::collections::BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(|key| map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    if let Some(v) = map_item("metadata.labels['", meta.labels.as_ref()) {
        return Ok(v);
    }
    if let Some(v) = map_item("metadata.annotations['", meta.annotations.as_ref()) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| ctx.node_name.to_string()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => ctx.pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => ctx.host_ip.to_string(),
        other => return Err(format!("unsupported fieldPath: {other}")),
    })
}

/// Expands `$(NAME)` references as upstream's `expansion.Expand`: a defined name is replaced,
/// an undefined one stays as written, `$$` is an escaped `$`.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's environment in order: the base (PATH, HOSTNAME and the `kubernetes`
/// Service's variables, as the runtime and the kubelet give), then `envFrom` (each source's
/// keys, prefixed), then `env`, each value expanded against the variables before it; a later
/// name replaces an earlier one. `objects` holds the ConfigMaps and Secrets they read.
pub fn resolve_env(
    container: &Container,
    ctx: &FieldContext<'_>,
    base: &[(String, String)],
    objects: &EnvObjects,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut vars: HashMap<String, String> = base.iter().cloned().collect();
    let mut out: Vec<(String, String)> = base.to_vec();
    fn set(
        vars: &mut HashMap<String, String>,
        out: &mut Vec<(String, String)>,
        name: String,
        value: String,
    ) {
        vars.insert(name.clone(), value.clone());
        out.retain(|(k, _)| k != &name);
        out.push((name, value));
    }
    let namespace = ctx.pod.metadata.namespace.as_deref().unwrap_or("default");
    for (name, value) in env_sources::env_from(container, objects)? {
        set(&mut vars, &mut out, name, value);
    }
    let config_error = |m: String| ConfigError {
        reason: "CreateContainerConfigError",
        message: m,
    };
    for var in container.env.iter().flatten() {
        let value = if let Some(v) = &var.value {
            expand(v, &vars)
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                field_value(ctx, &f.field_path).map_err(config_error)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_field_value(container, &r.resource, r.divisor.as_ref(), ctx.allocatable)
                    .map_err(config_error)?
            } else {
                // A key of a ConfigMap or Secret; an optional one that is missing sets nothing.
                match env_sources::key_ref(from, namespace, objects)? {
                    Some(v) => v,
                    None => continue,
                }
            }
        } else {
            String::new()
        };
        set(&mut vars, &mut out, var.name.clone(), value);
    }
    Ok(out)
}

/// A `resourceFieldRef`'s value, as upstream's `ExtractResourceValueByContainerNameAndNodeAllocatable`:
/// the container's request or limit divided by `divisor` (default 1) and rounded up, cpu in
/// millicores before dividing; an unset cpu, memory or ephemeral-storage limit is the node's
/// allocatable (`MergeContainerResourceLimits`), an unset request 0.
pub fn resource_field_value(
    container: &Container,
    resource: &str,
    divisor: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    allocatable: &BTreeMap<String, String>,
) -> Result<String, String> {
    use pernode_core::quantity::{Quantity, parse_quantity};
    let unsupported = || format!("unsupported container resource : {resource}");
    let (kind, name) = match resource.split_once('.') {
        Some(("limits", n)) => (true, n),
        Some(("requests", n)) => (false, n),
        _ => return Err(unsupported()),
    };
    let is_cpu = name == "cpu";
    if !is_cpu && !matches!(name, "memory" | "ephemeral-storage") && !name.starts_with("hugepages-")
    {
        return Err(unsupported());
    }
    let res = container.resources.as_ref();
    let set = if kind {
        res.and_then(|r| r.limits.as_ref())
    } else {
        res.and_then(|r| r.requests.as_ref())
    }
    .and_then(|m| m.get(name))
    .map(|q| q.0.clone());
    let defaulted = || {
        (kind && matches!(name, "cpu" | "memory" | "ephemeral-storage"))
            .then(|| allocatable.get(name).cloned())
            .flatten()
    };
    let amount = match set.or_else(defaulted) {
        Some(text) => parse_quantity(&text).map_err(|e| format!("{resource}: {e}"))?,
        None => Quantity::from_millis(0),
    };
    let divisor = match divisor.map(|d| parse_quantity(&d.0)) {
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Err(e)) => return Err(format!("divisor: {e}")),
        _ => Quantity::from_millis(1000),
    };
    let (n, d) = if is_cpu {
        (amount.milli_value(), divisor.milli_value())
    } else {
        (amount.value(), divisor.value())
    };
    if d == 0 {
        return Err(format!("divisor of {resource} is zero"));
    }
    // math.Ceil of the quotient (the amounts are never negative).
    let q = n / d + i128::from(n % d != 0 && (n > 0) == (d > 0));
    Ok(q.to_string())
}

/// Image → entrypoint for containers that give no `command` (an image has no filesystem here,
/// so its entrypoint must be a program on the host).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageMap {
    entries: Vec<(String, Vec<String>)>,
}

impl ImageMap {
    /// Parses lines `IMAGE=COMMAND [ARG...]` (whitespace-separated; `#` starts a comment).
    pub fn parse(text: &str) -> Result<ImageMap, String> {
        let mut map = ImageMap::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            map.add(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        }
        Ok(map)
    }

    /// Adds one `IMAGE=COMMAND [ARG...]` entry; later entries win.
    pub fn add(&mut self, entry: &str) -> Result<(), String> {
        let (image, command) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?} is not IMAGE=COMMAND"))?;
        let argv: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        if image.trim().is_empty() || argv.is_empty() {
            return Err(format!("{entry:?} is not IMAGE=COMMAND"));
        }
        self.entries.insert(0, (image.trim().to_string(), argv));
        Ok(())
    }

    /// The entrypoint for `image`: an entry for the full reference, else for the repository
    /// without tag or digest, else for its last path component (`docker.io/library/busybox:1.36`
    /// matches `busybox`).
    pub fn lookup(&self, image: &str) -> Option<&[String]> {
        let repo = repository(image);
        let short = repo.rsplit('/').next().unwrap_or(repo);
        [image, repo, short].into_iter().find_map(|key| {
            self.entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_slice())
        })
    }

    /// Adds every entry of `other`, which win over the entries already here.
    pub fn extend(&mut self, other: ImageMap) {
        let mut entries = other.entries;
        entries.append(&mut self.entries);
        self.entries = entries;
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An image reference without its tag and digest.
fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// The process's argv: `command` + `args` with `$(VAR)` expanded; with no `command`, the image
/// map's entrypoint + `args`. The program is looked up on `path` when it has no slash.
pub fn argv(
    container: &Container,
    images: &ImageMap,
    env: &[(String, String)],
) -> Result<Vec<String>, ConfigError> {
    let vars: HashMap<String, String> = env.iter().cloned().collect();
    let args = container.args.iter().flatten().map(|a| expand(a, &vars));
    let mut argv: Vec<String> = match container.command.as_deref() {
        Some(cmd) if !cmd.is_empty() => cmd.iter().map(|c| expand(c, &vars)).collect(),
        _ => {
            let image = container.image.as_deref().unwrap_or("");
            match images.lookup(image) {
                Some(entry) => entry.to_vec(),
                None => {
                    return Err(ConfigError {
                        reason: "CreateContainerError",
                        message: format!(
                            "image {image:?} has no command in the pod and no entry in the agent's image map (--image-command {}=PROGRAM)",
                            repository(image).rsplit('/').next().unwrap_or(image)
                        ),
                    });
                }
            }
        }
    };
    argv.extend(args);
    let path = vars.get("PATH").map(String::as_str).unwrap_or("");
    match find_program(&argv[0], path) {
        Some(p) => argv[0] = p.display().to_string(),
        None => {
            return Err(ConfigError {
                reason: "RunContainerError",
                message: format!("exec: {:?}: executable file not found in $PATH", argv[0]),
            });
        }
    }
    Ok(argv)
}

/// The executable `program` names: itself when it has a slash, else the first match on `path`.
pub fn find_program(program: &str, path: &str) -> Option<PathBuf> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-abc".into()),
                namespace: Some("prod".into()),
                uid: Some("u-1".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn field(name: &str, path: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: path.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn value(name: &str, v: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(v.into()),
            ..Default::default()
        }
    }

    #[test]
    fn env_resolves_field_refs_and_references_in_order() {
        let p = pod();
        let ctx = FieldContext {
            pod: &p,
            node_name: "n1",
            pod_ip: "10.1.0.2",
            host_ip: "10.1.0.2",
            allocatable: &Default::default(),
        };
        let c = Container {
            name: "c".into(),
            env: Some(vec![
                field("NODE", "spec.nodeName"),
                field("POD", "metadata.name"),
                field("IP", "status.podIP"),
                field("HOST", "status.hostIP"),
                field("APP", "metadata.labels['app']"),
                value("WHERE", "$(POD)@$(NODE) $(UNDEFINED) $$(NODE)"),
                value("LATER", "$(AFTER)"),
                value("AFTER", "x"),
            ]),
            ..Default::default()
        };
        let base = vec![("PATH".to_string(), "/bin".to_string())];
        let env = resolve_env(&c, &ctx, &base, &EnvObjects::default()).expect("env");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some("/bin"));
        assert_eq!(get("NODE"), Some("n1"));
        assert_eq!(get("POD"), Some("web-abc"));
        assert_eq!(get("IP"), Some("10.1.0.2"));
        assert_eq!(get("HOST"), Some("10.1.0.2"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("WHERE"), Some("web-abc@n1 $(UNDEFINED) $(NODE)"));
        // Only earlier variables expand.
        assert_eq!(get("LATER"), Some("$(AFTER)"));
    }

    #[test]
    fn unsupported_sources_are_config_errors() {
        let p = pod();
        let ctx = FieldContext {
            pod: &p,
            node_name: "n1",
            pod_ip: "",
            host_ip: "",
            allocatable: &Default::default(),
        };
        let c = Container {
            name: "c".into(),
            env: Some(vec![field("X", "spec.nope")]),
            ..Default::default()
        };
        let e = resolve_env(&c, &ctx, &[], &EnvObjects::default()).expect_err("bad fieldPath");
        assert_eq!(e.reason, "CreateContainerConfigError");
    }

    #[test]
    fn expansion_edge_cases() {
        let vars: HashMap<String, String> = [("A".to_string(), "1".to_string())].into();
        assert_eq!(expand("$(A)$(A)", &vars), "11");
        assert_eq!(expand("$$", &vars), "$");
        assert_eq!(expand("$x $(A", &vars), "$x $(A");
        assert_eq!(expand("no refs", &vars), "no refs");
    }

    #[test]
    fn image_map_matches_reference_repository_and_short_name() {
        let map = ImageMap::parse(
            "# comment\nbusybox=/bin/busybox sh\nregistry:5000/team/app:v2=/usr/bin/app-v2\nregistry:5000/team/app=/usr/bin/app\n",
        )
        .expect("map");
        assert_eq!(
            map.lookup("docker.io/library/busybox:1.36"),
            Some(&["/bin/busybox".to_string(), "sh".to_string()][..])
        );
        assert_eq!(
            map.lookup("registry:5000/team/app:v2")
                .map(|v| v[0].as_str()),
            Some("/usr/bin/app-v2")
        );
        assert_eq!(
            map.lookup("registry:5000/team/app:v3")
                .map(|v| v[0].as_str()),
            Some("/usr/bin/app")
        );
        assert_eq!(map.lookup("nginx:1.27"), None);
        assert!(ImageMap::parse("nonsense").is_err());
        assert_eq!(repository("localhost:5000/x"), "localhost:5000/x");
        assert_eq!(repository("x@sha256:abc"), "x");
    }

    #[test]
    fn argv_uses_command_then_map_and_looks_up_the_path() {
        let env = vec![
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("MSG".to_string(), "hi".to_string()),
        ];
        let mut map = ImageMap::default();
        map.add("tool=sh -c").expect("entry");
        let c = Container {
            name: "c".into(),
            image: Some("busybox".into()),
            command: Some(vec!["sh".into(), "-c".into()]),
            args: Some(vec!["echo $(MSG)".into()]),
            ..Default::default()
        };
        let argv = argv(&c, &map, &env).expect("argv");
        assert!(argv[0].ends_with("/sh"), "{argv:?}");
        assert_eq!(&argv[1..], ["-c", "echo hi"]);

        let c = Container {
            name: "c".into(),
            image: Some("tool:1".into()),
            args: Some(vec!["exit 0".into()]),
            ..Default::default()
        };
        let argv = super::argv(&c, &map, &env).expect("mapped");
        assert_eq!(&argv[1..], ["-c", "exit 0"]);

        let c = Container {
            name: "c".into(),
            image: Some("nginx:1.27".into()),
            ..Default::default()
        };
        let e = super::argv(&c, &map, &env).expect_err("unmapped");
        assert_eq!(e.reason, "CreateContainerError");
        assert!(e.message.contains("nginx:1.27"), "{}", e.message);

        let c = Container {
            name: "c".into(),
            command: Some(vec!["no-such-program-here".into()]),
            ..Default::default()
        };
        let e = super::argv(&c, &map, &env).expect_err("missing program");
        assert_eq!(e.reason, "RunContainerError");
        assert_eq!(
            e.message,
            "exec: \"no-such-program-here\": executable file not found in $PATH"
        );
    }
}
