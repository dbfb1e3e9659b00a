//! What a request path names: a resource (from the catalogue), optionally a namespace, an
//! object name and a subresource. Mirrors kube-apiserver's RequestInfo for the paths we serve.

use pernode_resources::{ResourceInfo, View};

use crate::error::ApiError;

/// The parsed target of a resource request.
#[derive(Debug, Clone)]
pub struct Target {
    pub info: &'static ResourceInfo,
    /// Set for namespaced requests (`/namespaces/{ns}/...`); `None` lists across namespaces.
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// What follows `/proxy/` in a `nodes/{name}/proxy/{path}` request (`stats/summary`).
    pub proxy_path: Option<String>,
}

impl Target {
    /// The store key of the named object.
    pub fn key(&self) -> Option<String> {
        let name = self.name.as_deref()?;
        Some(object_key(self.info, self.namespace.as_deref(), name))
    }

    /// The store prefix of the collection this request addresses.
    pub fn prefix(&self) -> String {
        collection_prefix(self.info, self.namespace.as_deref())
    }

    pub fn group(&self) -> &'static str {
        self.info.group
    }

    pub fn plural(&self) -> &'static str {
        self.info.plural
    }
}

/// Store key: `{plural}/{ns}/{name}` or `{plural}/{name}`; the plural is unique across the
/// built-ins, so their group is left out. A custom resource's first segment is
/// `{plural}.{group}` (`widgets.example.com`): no built-in plural has a dot, and every version
/// of a CRD shares it.
pub fn object_key(info: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
    let resource = store_resource(info);
    match (info.namespaced, namespace) {
        (true, Some(ns)) => format!("{resource}/{ns}/{name}"),
        _ => format!("{resource}/{name}"),
    }
}

pub fn collection_prefix(info: &ResourceInfo, namespace: Option<&str>) -> String {
    let resource = store_resource(info);
    match (info.namespaced, namespace) {
        (true, Some(ns)) => format!("{resource}/{ns}/"),
        _ => format!("{resource}/"),
    }
}

/// The first segment of a resource's store keys.
pub fn store_resource(info: &ResourceInfo) -> std::borrow::Cow<'static, str> {
    match info.custom {
        Some(_) => format!("{}.{}", info.plural, info.group).into(),
        None => info.plural.into(),
    }
}

/// Whether `path` names a resource (`/api/{version}/...`, `/apis/{group}/{version}/...`), as
/// upstream's `RequestInfo.IsResourceRequest`; everything else (discovery, OpenAPI, health) is
/// a non-resource path, authorized by its path.
pub fn is_resource_path(path: &str) -> bool {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let skip = match segments.next() {
        Some("api") => 1,
        Some("apis") => 2,
        _ => return false,
    };
    segments.nth(skip).is_some()
}

/// Parses `/api/v1/...` and `/apis/{group}/{version}/...` resource paths. Returns `Ok(None)` for
/// paths that are not resource requests (discovery, version, ...).
pub fn parse(view: &View, path: &str) -> Result<Option<Target>, ApiError> {
    // Paths are not cleaned, as upstream: Go's http.Server leaves `URL.Path` as sent (only
    // http.ServeMux redirects to a cleaned path, and kube-apiserver does not route through
    // one). Its director hands a path to go-restful only when it starts with a web service's
    // root (`/api`, `/apis/...`), else to the PathRecorderMux, which matches exact paths and
    // prefixes: `//api/v1/pods` matches neither and is the 404 of its NotFoundHandler.
    if path.starts_with("//") {
        return Ok(None);
    }
    // Empty segments stay: go-restful's router matches `/api/v1//pods` token by token, and
    // an empty token names no resource.
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return Ok(None),
    };
    let lookup = |plural: &str| {
        view.find(group, version, plural)
            .ok_or_else(ApiError::no_route)
    };
    let target = match rest {
        // /namespaces/{ns}/{resource}[/{name}[/{sub}]] when {resource} is a namespaced resource;
        // otherwise the path addresses the Namespace object itself (and its subresources).
        ["namespaces", ns, plural, tail @ ..]
            if view
                .find(group, version, plural)
                .is_some_and(|i| i.namespaced) =>
        {
            let info = lookup(plural)?;
            let (name, sub, proxy_path) = name_and_sub(tail)?;
            Target {
                info,
                namespace: Some(ns.to_string()),
                name,
                subresource: sub,
                proxy_path,
            }
        }
        [plural, tail @ ..] => {
            let info = lookup(plural)?;
            let (name, sub, proxy_path) = name_and_sub(tail)?;
            // A namespaced resource without /namespaces/ is the all-namespaces collection; it
            // has no named objects.
            if info.namespaced && name.is_some() {
                return Err(ApiError::no_route());
            }
            Target {
                info,
                namespace: None,
                name,
                subresource: sub,
                proxy_path,
            }
        }
        [] => return Ok(None),
    };
    if let Some(sub) = &target.subresource
        && !target.info.subresources.iter().any(|s| s.name == sub)
    {
        // apiextensions' crdHandler answers a subresource its definition does not enable (a
        // custom object's `status` without the status subresource) as the object not found;
        // for built-ins no route has the path.
        return Err(match (target.info.custom, &target.name) {
            (Some(_), Some(name)) => ApiError::not_found(target.group(), target.plural(), name),
            _ => ApiError::no_route(),
        });
    }
    // After the subresource: `pods/../secrets` is a route go-restful does not have (404)
    // before it is a name the storage refuses.
    if let Some(name) = &target.name {
        check_path_segment_name(name)?;
    }
    Ok(Some(target))
}

/// Upstream's storage key functions (`NamespaceKeyFunc`, `NoNamespaceKeyFunc`) refuse a name
/// `path.IsValidPathSegmentName` rejects before any read or write, so `/pods/.` and
/// `/pods/..` are a 400, never an object looked up (or a path walked). `/` cannot occur in a
/// segment here; `%` only where the client escaped it.
fn check_path_segment_name(name: &str) -> Result<(), ApiError> {
    let why = match name {
        "." => vec!["may not be '.'".to_string()],
        ".." => vec!["may not be '..'".to_string()],
        _ => name
            .contains('%')
            .then(|| "may not contain '%'".to_string())
            .into_iter()
            .collect(),
    };
    if why.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "Name parameter invalid: {name:?}: {}",
        why.join(";")
    )))
}

/// Name, subresource, and the path after `proxy/` (which may have any number of segments).
type NameAndSub = (Option<String>, Option<String>, Option<String>);

fn name_and_sub(tail: &[&str]) -> Result<NameAndSub, ApiError> {
    match tail {
        [] => Ok((None, None, None)),
        [name] => Ok((Some(name.to_string()), None, None)),
        [name, "proxy", rest @ ..] => Ok((
            Some(name.to_string()),
            Some("proxy".to_string()),
            Some(rest.join("/")),
        )),
        [name, sub] => Ok((Some(name.to_string()), Some(sub.to_string()), None)),
        _ => Err(ApiError::no_route()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaced_and_cluster_paths() {
        let t = parse(
            &View::builtin(),
            "/apis/apps/v1/namespaces/default/daemonsets/x/status",
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.info.plural, "daemonsets");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("x"));
        assert_eq!(t.subresource.as_deref(), Some("status"));
        assert_eq!(t.key().unwrap(), "daemonsets/default/x");

        let t = parse(&View::builtin(), "/api/v1/nodes/n1")
            .unwrap()
            .unwrap();
        assert_eq!(t.key().unwrap(), "nodes/n1");

        let t = parse(&View::builtin(), "/api/v1/pods").unwrap().unwrap();
        assert_eq!(t.prefix(), "pods/");
        assert!(t.namespace.is_none());

        let t = parse(&View::builtin(), "/api/v1/namespaces/kube-system")
            .unwrap()
            .unwrap();
        assert_eq!(t.info.plural, "namespaces");
        assert_eq!(t.key().unwrap(), "namespaces/kube-system");

        let t = parse(
            &View::builtin(),
            "/api/v1/namespaces/default/pods/p/eviction",
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.subresource.as_deref(), Some("eviction"));

        let t = parse(&View::builtin(), "/api/v1/nodes/n1/proxy/stats/summary")
            .unwrap()
            .unwrap();
        assert_eq!(t.subresource.as_deref(), Some("proxy"));
        assert_eq!(t.proxy_path.as_deref(), Some("stats/summary"));
        let t = parse(&View::builtin(), "/api/v1/nodes/n1/proxy")
            .unwrap()
            .unwrap();
        assert_eq!(t.proxy_path.as_deref(), Some(""));
    }

    #[test]
    fn unknown_resources_and_subresources_are_not_found() {
        assert_eq!(
            parse(&View::builtin(), "/api/v1/widgets").unwrap_err().code,
            404
        );
        assert_eq!(
            parse(
                &View::builtin(),
                "/apis/apps/v1/namespaces/default/daemonsets/x/scale"
            )
            .unwrap_err()
            .code,
            404
        );
        assert_eq!(
            parse(&View::builtin(), "/apis/apps/v2/daemonsets")
                .unwrap_err()
                .code,
            404
        );
        assert!(parse(&View::builtin(), "/version").unwrap().is_none());
        assert!(parse(&View::builtin(), "/apis").unwrap().is_none());
    }
}
