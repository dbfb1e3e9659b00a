//! Discovery documents, aggregated (`apidiscovery.k8s.io/v2`) and legacy.
//!
//! kubectl asks `/api` and `/apis` for the aggregated form first (contract §2.1) and reads it
//! only if the reply's Content-Type says so ([`AGGREGATED_CONTENT_TYPE`], §4.3). The legacy
//! `/api/v1` APIResourceList is needed even then: `kubectl drain` reads it to find
//! `pods/eviction` (§3.13).

use serde_json::{Map, Value, json};

use crate::catalog::{ResourceInfo, View};

/// The Content-Type an aggregated discovery reply must carry.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the Accept header asks for aggregated discovery (v2) ahead of plain JSON.
///
/// Media ranges are weighed by their `q` (default 1, ties go to the earlier range) the way
/// the upstream negotiator does; ranges we cannot answer (protobuf, v2beta1, YAML) are
/// skipped. An empty or unparsable header means legacy discovery.
pub fn wants_aggregated(accept: &str) -> bool {
    let mut best: Option<(f32, bool)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (mut g, mut v, mut as_kind, mut q) = (None, None, None, 1.0f32);
        for param in parts {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "g" => g = Some(value.to_string()),
                "v" => v = Some(value.to_string()),
                "as" => as_kind = Some(value.to_string()),
                // A malformed q makes the range unusable, as in Go's parser.
                "q" => q = value.parse().unwrap_or(0.0),
                _ => {}
            }
        }
        if q <= 0.0 {
            continue;
        }
        let json_type = media == "application/json";
        let aggregated = json_type
            && g.as_deref() == Some("apidiscovery.k8s.io")
            && v.as_deref() == Some("v2")
            && as_kind.as_deref() == Some("APIGroupDiscoveryList");
        let plain = as_kind.is_none()
            && g.is_none()
            && (json_type || media == "*/*" || media == "application/*");
        if !(aggregated || plain) {
            continue;
        }
        if best.is_none_or(|(best_q, _)| q > best_q) {
            best = Some((q, aggregated));
        }
    }
    best.is_some_and(|(_, aggregated)| aggregated)
}

fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "version": version, "kind": kind })
}

/// The resources of one group version, sorted by name as upstream lists them.
fn resources_of(view: &View, group: &str, version: &str) -> Vec<&'static ResourceInfo> {
    let mut out: Vec<_> = view
        .resources()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    out.sort_by_key(|r| r.plural);
    out
}

/// An `apidiscovery.k8s.io/v2` APIResourceDiscovery entry.
fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut obj = Map::new();
    obj.insert("resource".into(), r.plural.into());
    obj.insert(
        "responseKind".into(),
        response_kind(r.group, r.version, r.kind),
    );
    obj.insert("scope".into(), r.scope().into());
    obj.insert("singularResource".into(), r.singular.into());
    obj.insert("verbs".into(), json!(r.verbs));
    // Upstream omits empty lists; kubectl treats missing and empty alike.
    if !r.short_names.is_empty() {
        obj.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        obj.insert("categories".into(), json!(r.categories));
    }
    if !r.subresources.is_empty() {
        let mut subs: Vec<_> = r.subresources.iter().collect();
        subs.sort_by_key(|s| s.name);
        let subs: Vec<Value> = subs
            .into_iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": response_kind(s.group, s.version, s.kind),
                    "verbs": s.verbs,
                })
            })
            .collect();
        obj.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(obj)
}

/// An APIGroupDiscovery item for `group` with its versions (preferred first).
fn aggregated_group(view: &View, group: &'static str) -> Value {
    let versions: Vec<Value> = view
        .group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| {
            let resources: Vec<Value> = resources_of(view, g, v)
                .into_iter()
                .map(aggregated_resource)
                .collect();
            json!({ "version": v, "resources": resources, "freshness": "Current" })
        })
        .collect();
    json!({ "metadata": { "name": group }, "versions": versions })
}

fn aggregated_list(items: Vec<Value>) -> Value {
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// Named API groups in catalogue order (core excluded).
fn named_groups(view: &View) -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for (g, _) in view.group_versions() {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    groups
}

/// Aggregated discovery for `/api`: one item named `""`, the core group.
pub fn aggregated_discovery_core(view: &View) -> Value {
    aggregated_list(vec![aggregated_group(view, "")])
}

/// Aggregated discovery for `/apis`: every named group.
pub fn aggregated_discovery_apis(view: &View) -> Value {
    aggregated_list(
        named_groups(view)
            .into_iter()
            .map(|g| aggregated_group(view, g))
            .collect(),
    )
}

/// Legacy `/api`: APIVersions.
pub fn api_versions() -> Value {
    // serverAddressByClientCIDRs is for clients behind split networks; kubectl ignores it and
    // this layer does not know the listen address, so the list stays empty.
    json!({ "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [] })
}

/// Legacy `/apis`: APIGroupList.
pub fn api_group_list(view: &View) -> Value {
    let groups: Vec<Value> = named_groups(view)
        .into_iter()
        .map(|g| {
            let versions: Vec<Value> = view
                .group_versions()
                .into_iter()
                .filter(|(gg, _)| *gg == g)
                .map(|(_, v)| json!({ "groupVersion": format!("{g}/{v}"), "version": v }))
                .collect();
            let preferred = versions.first().cloned().unwrap_or(Value::Null);
            json!({ "name": g, "versions": versions, "preferredVersion": preferred })
        })
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// Legacy APIResourceList for `/api/v1` (`group` empty) or `/apis/{group}/{version}`;
/// `None` if that group version is not served.
pub fn api_resource_list(view: &View, group: &str, version: &str) -> Option<Value> {
    let resources = resources_of(view, group, version);
    let first = resources.first()?;
    let group_version = first.api_version();
    let mut entries: Vec<(String, Value)> = Vec::new();
    for r in &resources {
        let mut obj = Map::new();
        obj.insert("name".into(), r.plural.into());
        obj.insert("singularName".into(), r.singular.into());
        obj.insert("namespaced".into(), r.namespaced.into());
        obj.insert("kind".into(), r.kind.into());
        obj.insert("verbs".into(), json!(r.verbs));
        if !r.short_names.is_empty() {
            obj.insert("shortNames".into(), json!(r.short_names));
        }
        if !r.categories.is_empty() {
            obj.insert("categories".into(), json!(r.categories));
        }
        entries.push((r.plural.to_string(), Value::Object(obj)));
        for s in r.subresources {
            let name = format!("{}/{}", r.plural, s.name);
            let mut obj = Map::new();
            obj.insert("name".into(), name.clone().into());
            obj.insert("singularName".into(), "".into());
            obj.insert("namespaced".into(), r.namespaced.into());
            // group/version are given only when the kind lives elsewhere (pods/eviction →
            // policy/v1); drain matches on exactly these fields.
            if s.group != r.group || s.version != r.version {
                obj.insert("group".into(), s.group.into());
                obj.insert("version".into(), s.version.into());
            }
            obj.insert("kind".into(), s.kind.into());
            obj.insert("verbs".into(), json!(s.verbs));
            entries.push((name, Value::Object(obj)));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    #[test]
    fn accept_negotiation() {
        assert!(wants_aggregated(KUBECTL_ACCEPT));
        assert!(wants_aggregated(
            "application/json; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io"
        ));
        assert!(!wants_aggregated("application/json, */*"));
        assert!(!wants_aggregated(""));
        assert!(!wants_aggregated("garbage;;=,"));
        // Only v2beta1 requested: we cannot serve it, so legacy.
        assert!(!wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
        ));
        // Plain JSON first at equal weight wins; a higher q for aggregated wins.
        assert!(!wants_aggregated(
            "application/json,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        ));
        assert!(wants_aggregated(
            "application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        ));
        assert!(!wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0"
        ));
    }

    fn resource<'a>(doc: &'a Value, name: &str) -> &'a Value {
        doc["items"][0]["versions"][0]["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["resource"] == name))
            .unwrap_or(&Value::Null)
    }

    #[test]
    fn aggregated_core() {
        let doc = aggregated_discovery_core(&View::builtin());
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        assert_eq!(doc["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(doc["items"][0]["metadata"]["name"], "");
        assert_eq!(doc["items"][0]["versions"][0]["version"], "v1");
        assert_eq!(doc["items"][0]["versions"][0]["freshness"], "Current");
        let pods = resource(&doc, "pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(pods["singularResource"], "pod");
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert_eq!(
            pods["verbs"],
            json!([
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch"
            ])
        );
        let eviction = pods["subresources"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["subresource"] == "eviction"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            eviction["responseKind"],
            json!({"group": "policy", "version": "v1", "kind": "Eviction"})
        );
        assert_eq!(eviction["verbs"], json!(["create"]));
        assert_eq!(resource(&doc, "nodes")["scope"], "Cluster");
        assert_eq!(resource(&doc, "nodes")["shortNames"], json!(["no"]));
        assert_eq!(resource(&doc, "namespaces")["shortNames"], json!(["ns"]));
        assert_eq!(resource(&doc, "events")["shortNames"], json!(["ev"]));
        assert!(resource(&doc, "events").get("categories").is_none());
    }

    #[test]
    fn aggregated_apis() {
        let doc = aggregated_discovery_apis(&View::builtin());
        let names: Vec<&str> = doc["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["metadata"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        // Upstream's /apis order for the groups served.
        assert_eq!(
            names,
            [
                "apps",
                "events.k8s.io",
                "authentication.k8s.io",
                "authorization.k8s.io",
                "batch",
                "certificates.k8s.io",
                "networking.k8s.io",
                "policy",
                "rbac.authorization.k8s.io",
                "storage.k8s.io",
                "admissionregistration.k8s.io",
                "apiextensions.k8s.io",
                "scheduling.k8s.io",
                "coordination.k8s.io",
                "discovery.k8s.io"
            ]
        );
        let ds = resource(&doc, "daemonsets");
        assert_eq!(ds["shortNames"], json!(["ds"]));
        assert_eq!(ds["categories"], json!(["all"]));
        assert_eq!(ds["singularResource"], "daemonset");
        assert_eq!(
            ds["responseKind"],
            json!({"group": "apps", "version": "v1", "kind": "DaemonSet"})
        );
        assert_eq!(
            ds["subresources"],
            json!([{"subresource": "status",
                    "responseKind": {"group": "apps", "version": "v1", "kind": "DaemonSet"},
                    "verbs": ["get", "patch", "update"]}])
        );
        assert_eq!(
            resource(&doc, "controllerrevisions")["singularResource"],
            "controllerrevision"
        );
        let authn = &doc["items"][2]["versions"][0]["resources"];
        assert_eq!(
            authn,
            &json!([{"resource": "selfsubjectreviews", "singularResource": "selfsubjectreview",
                     "scope": "Cluster", "verbs": ["create"],
                     "responseKind": {"group": "authentication.k8s.io", "version": "v1",
                                      "kind": "SelfSubjectReview"}},
                    {"resource": "tokenreviews", "singularResource": "tokenreview",
                     "scope": "Cluster", "verbs": ["create"],
                     "responseKind": {"group": "authentication.k8s.io", "version": "v1",
                                      "kind": "TokenReview"}}])
        );
        let authz = &doc["items"][3]["versions"][0]["resources"];
        let reviews: Vec<(&str, &str, &str)> = authz
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| {
                        Some((
                            r["resource"].as_str()?,
                            r["scope"].as_str()?,
                            r["responseKind"]["kind"].as_str()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            reviews,
            [
                (
                    "localsubjectaccessreviews",
                    "Namespaced",
                    "LocalSubjectAccessReview"
                ),
                (
                    "selfsubjectaccessreviews",
                    "Cluster",
                    "SelfSubjectAccessReview"
                ),
                (
                    "selfsubjectrulesreviews",
                    "Cluster",
                    "SelfSubjectRulesReview"
                ),
                ("subjectaccessreviews", "Cluster", "SubjectAccessReview"),
            ]
        );
        for r in authz.as_array().into_iter().flatten() {
            assert_eq!(r["verbs"], json!(["create"]), "{}", r["resource"]);
        }
    }

    #[test]
    fn legacy_documents() {
        assert_eq!(api_versions()["versions"], json!(["v1"]));
        let groups = api_group_list(&View::builtin());
        assert_eq!(groups["kind"], "APIGroupList");
        assert_eq!(groups["groups"][0]["name"], "apps");
        assert_eq!(
            groups["groups"][0]["preferredVersion"]["groupVersion"],
            "apps/v1"
        );
        assert_eq!(
            groups["groups"][1]["versions"][0]["groupVersion"],
            "events.k8s.io/v1"
        );
        assert_eq!(
            groups["groups"][13]["versions"][0]["groupVersion"],
            "coordination.k8s.io/v1"
        );
        // CertificateSigningRequests: approved through `approval`, issued through `status`.
        let certificates = api_resource_list(&View::builtin(), "certificates.k8s.io", "v1")
            .expect("certificates served");
        let names: Vec<&str> = certificates["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "certificatesigningrequests",
                "certificatesigningrequests/approval",
                "certificatesigningrequests/status"
            ]
        );
        let csr = &certificates["resources"][0];
        assert_eq!(csr["shortNames"], json!(["csr"]));
        assert_eq!(csr["namespaced"], false);
        assert_eq!(
            certificates["resources"][1]["verbs"],
            json!(["get", "patch", "update"])
        );

        let core = api_resource_list(&View::builtin(), "", "v1").expect("core served");
        assert_eq!(core["groupVersion"], "v1");
        let rs = core["resources"].as_array().cloned().unwrap_or_default();
        let find = |n: &str| {
            rs.iter()
                .find(|r| r["name"] == n)
                .cloned()
                .unwrap_or_default()
        };
        let eviction = find("pods/eviction");
        assert_eq!(eviction["group"], "policy");
        assert_eq!(eviction["version"], "v1");
        assert_eq!(eviction["kind"], "Eviction");
        assert_eq!(eviction["verbs"], json!(["create"]));
        assert_eq!(eviction["namespaced"], true);
        assert_eq!(find("pods/binding")["kind"], "Binding");
        // `kubectl create token` posts a TokenRequest here.
        let token = find("serviceaccounts/token");
        assert_eq!(token["group"], "authentication.k8s.io");
        assert_eq!(token["version"], "v1");
        assert_eq!(token["kind"], "TokenRequest");
        assert_eq!(token["verbs"], json!(["create"]));
        let authn = api_resource_list(&View::builtin(), "authentication.k8s.io", "v1")
            .expect("authentication served");
        assert_eq!(
            authn["resources"],
            json!([{"name": "selfsubjectreviews", "singularName": "selfsubjectreview",
                    "namespaced": false, "kind": "SelfSubjectReview", "verbs": ["create"]},
                   {"name": "tokenreviews", "singularName": "tokenreview", "namespaced": false,
                    "kind": "TokenReview", "verbs": ["create"]}])
        );
        let authz = api_resource_list(&View::builtin(), "authorization.k8s.io", "v1")
            .expect("authorization served");
        assert_eq!(
            authz["resources"][0],
            json!({"name": "localsubjectaccessreviews",
                   "singularName": "localsubjectaccessreview", "namespaced": true,
                   "kind": "LocalSubjectAccessReview", "verbs": ["create"]})
        );
        assert_eq!(authz["resources"].as_array().map(Vec::len), Some(4));
        assert_eq!(
            find("pods/status")["verbs"],
            json!(["get", "patch", "update"])
        );
        assert!(find("pods/status").get("group").is_none());
        assert_eq!(find("nodes/status")["namespaced"], false);
        assert_eq!(find("pods")["shortNames"], json!(["po"]));
        let names: Vec<&str> = rs.iter().filter_map(|r| r["name"].as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);

        let apps = api_resource_list(&View::builtin(), "apps", "v1").expect("apps served");
        assert_eq!(apps["groupVersion"], "apps/v1");
        assert!(api_resource_list(&View::builtin(), "apps", "v2").is_none());
        assert!(api_resource_list(&View::builtin(), "policy", "v1beta1").is_none());
    }
}
