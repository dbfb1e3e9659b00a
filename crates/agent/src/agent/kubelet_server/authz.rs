//! What a user may do on the kubelet port, as the kubelet's webhook authorizer: each request
//! becomes the attributes of `nodes/<subresource>` on this node ([`attributes`], upstream's
//! `GetRequestAttributes`), which the API server decides in a SubjectAccessReview. Answers are
//! cached as the kubelet's (`cacheAuthorizedTTL` 5 min, `cacheUnauthorizedTTL` 30 s).

use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use pernode_auth::user::UserInfo;

use super::expiring::ExpiringCache;

/// How long an allowed answer is reused.
pub const ALLOWED_TTL: Duration = Duration::from_secs(300);
/// How long a denied answer is reused.
pub const DENIED_TTL: Duration = Duration::from_secs(30);

/// A request to the kubelet as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    /// `create`, `get`, `update`, `patch`, `delete` from the HTTP method.
    pub verb: &'static str,
    /// `stats`, `metrics`, `log`, `spec`, `checkpoint`, else `proxy` (exec, logs of
    /// containers, port-forward: the kubelet's whole API).
    pub subresource: &'static str,
    /// The node.
    pub name: String,
}

/// Whether `path` is `prefix` or below it (upstream's `isSubpath`).
fn is_subpath(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The attributes of `method path` by `user` on node `node`, as the kubelet derives them.
pub fn attributes(user: UserInfo, node: &str, method: &http::Method, path: &str) -> Attributes {
    let verb = match *method {
        http::Method::POST => "create",
        http::Method::GET => "get",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "",
    };
    let subresource = [
        ("/stats", "stats"),
        ("/metrics", "metrics"),
        ("/logs", "log"),
        ("/spec", "spec"),
        ("/checkpoint", "checkpoint"),
    ]
    .into_iter()
    .find(|(prefix, _)| is_subpath(path, prefix))
    .map_or("proxy", |(_, s)| s);
    Attributes {
        user,
        verb,
        subresource,
        name: node.to_string(),
    }
}

impl Attributes {
    /// The kubelet's words for the request in its 403 and 500 answers.
    pub fn describe(&self) -> String {
        format!(
            "user={}, verb={}, resource=nodes, subresource={}",
            self.user.name, self.verb, self.subresource
        )
    }

    fn review(&self) -> SubjectAccessReviewSpec {
        SubjectAccessReviewSpec {
            user: Some(self.user.name.clone()),
            uid: Some(self.user.uid.clone()).filter(|u| !u.is_empty()),
            groups: Some(self.user.groups.clone()),
            extra: (!self.user.extra.is_empty())
                .then(|| self.user.extra.clone().into_iter().collect()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(self.verb.to_string()),
                group: Some(String::new()),
                version: Some("v1".into()),
                resource: Some("nodes".into()),
                subresource: Some(self.subresource.to_string()),
                name: Some(self.name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// The decision of an [`Authorizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied,
}

/// `--authorization-mode`.
pub enum Authorizer {
    /// Every authenticated request is allowed (`AlwaysAllow`).
    AlwaysAllow,
    /// The API server decides (`Webhook`, the default).
    Webhook(SubjectAccessReviews),
}

impl Authorizer {
    /// Decides `attrs`; an error is a review that could not be made.
    pub async fn authorize(&self, attrs: &Attributes) -> Result<Decision, String> {
        match self {
            Authorizer::AlwaysAllow => Ok(Decision::Allowed),
            Authorizer::Webhook(reviews) => reviews.decide(attrs).await,
        }
    }
}

/// SubjectAccessReviews to the API server, with the kubelet's cache.
pub struct SubjectAccessReviews {
    client: kube::Client,
    /// Decisions by the review's spec (JSON).
    cache: ExpiringCache<String, Decision>,
}

impl SubjectAccessReviews {
    pub fn new(client: kube::Client) -> SubjectAccessReviews {
        SubjectAccessReviews {
            client,
            cache: ExpiringCache::new(),
        }
    }

    async fn decide(&self, attrs: &Attributes) -> Result<Decision, String> {
        let spec = attrs.review();
        let key = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
        if let Some(decision) = self.cache.get(&key) {
            return Ok(decision);
        }
        let review = SubjectAccessReview {
            spec,
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| e.to_string())?;
        let decision = match answer.status {
            Some(s) if s.allowed => Decision::Allowed,
            _ => Decision::Denied,
        };
        let ttl = match decision {
            Decision::Allowed => ALLOWED_TTL,
            Decision::Denied => DENIED_TTL,
        };
        self.cache.insert(key, decision.clone(), ttl);
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn requests_map_to_node_subresources_as_the_kubelets() {
        let user = UserInfo::new("u", ["g"]);
        let of = |method: Method, path: &str| {
            let a = attributes(user.clone(), "n1", &method, path);
            (a.verb, a.subresource)
        };
        assert_eq!(of(Method::GET, "/stats/summary"), ("get", "stats"));
        assert_eq!(of(Method::GET, "/stats"), ("get", "stats"));
        assert_eq!(of(Method::GET, "/metrics/cadvisor"), ("get", "metrics"));
        assert_eq!(of(Method::GET, "/logs/syslog"), ("get", "log"));
        assert_eq!(of(Method::GET, "/spec/"), ("get", "spec"));
        assert_eq!(of(Method::POST, "/exec/ns/p/c"), ("create", "proxy"));
        assert_eq!(of(Method::GET, "/containerLogs/ns/p/c"), ("get", "proxy"));
        assert_eq!(of(Method::GET, "/statsfoo"), ("get", "proxy"));
        assert_eq!(of(Method::PUT, "/x"), ("update", "proxy"));
        assert_eq!(of(Method::PATCH, "/x"), ("patch", "proxy"));
        assert_eq!(of(Method::DELETE, "/x"), ("delete", "proxy"));
        let a = attributes(user, "n1", &Method::GET, "/stats/summary");
        assert_eq!(
            a.describe(),
            "user=u, verb=get, resource=nodes, subresource=stats"
        );
        let spec = a.review();
        let ra = spec.resource_attributes.expect("resource attributes");
        assert_eq!(ra.name.as_deref(), Some("n1"));
        assert_eq!(ra.resource.as_deref(), Some("nodes"));
        assert_eq!(spec.groups, Some(vec!["g".to_string()]));
        assert_eq!(spec.uid, None);
    }
}
