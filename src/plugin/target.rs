//! The object a verb names, as kubectl reads `TYPE/NAME`: `ds/x`, `daemonset/x`,
//! `daemonsets.apps/x`; a bare name is a DaemonSet's.

/// The DaemonSet name in `ds/x` (or `x`), or kubectl's message for another type.
pub fn daemonset_name(arg: &str) -> Result<&str, String> {
    let (kind, name) = arg.split_once('/').unwrap_or(("daemonset", arg));
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "arguments in resource/name form must have a single resource and name: {arg:?}"
        ));
    }
    match kind {
        "ds" | "daemonset" | "daemonsets" | "daemonset.apps" | "daemonsets.apps" => Ok(name),
        other => Err(format!(
            "{other:?} is not a DaemonSet: kubectl pernode works on DaemonSets (ds/NAME)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemonset_names_in_kubectl_forms() {
        for arg in ["ds/x", "daemonset/x", "daemonsets.apps/x", "x"] {
            assert_eq!(daemonset_name(arg), Ok("x"), "{arg}");
        }
        assert!(daemonset_name("deploy/x").is_err());
        assert!(daemonset_name("ds/").is_err());
        assert!(daemonset_name("ds/a/b").is_err());
    }
}
