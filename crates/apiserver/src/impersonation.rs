//! User impersonation (`kubectl --as`, `--as-group`, `--as-uid`), as upstream's
//! `endpoints/filters/impersonation.go`: a request carrying `Impersonate-User`,
//! `Impersonate-Group`, `Impersonate-Uid` or `Impersonate-Extra-<key>` headers is served as
//! that user, once the authenticated requester is allowed the verb `impersonate` on each
//! (`users`, `serviceaccounts` for a `system:serviceaccount:<ns>:<name>` user, `groups`, and
//! in `authentication.k8s.io` `uids` and `userextras/<key>`). Anything refused is upstream's
//! 403 (`users "jane" is forbidden: User "bob" cannot impersonate resource "users" in API
//! group "" at the cluster scope`); groups, an extra or a uid without a user are refused
//! before that.
//!
//! The impersonated user gets `system:authenticated` unless it names
//! `system:authenticated` or `system:unauthenticated` itself (`system:anonymous` gets
//! `system:unauthenticated`), and a service account its two groups when no group is given.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use pernode_auth::authorizer::{Attributes, Authorizer};
use pernode_auth::user::{
    ALL_AUTHENTICATED, ALL_SERVICE_ACCOUNTS, ALL_UNAUTHENTICATED, ANONYMOUS,
    SERVICE_ACCOUNT_USER_PREFIX, UserInfo,
};

use crate::error::ApiError;

const USER: &str = "impersonate-user";
const UID: &str = "impersonate-uid";
const GROUP: &str = "impersonate-group";
const EXTRA_PREFIX: &str = "impersonate-extra-";
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// One thing the requester asks to act as, and the attributes it needs `impersonate` on.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    ServiceAccount { namespace: String, name: String },
    User(String),
    Group(String),
    Extra { key: String, value: String },
    Uid(String),
}

impl Request {
    fn describe(&self) -> String {
        match self {
            Request::ServiceAccount { namespace, name } => {
                format!("ServiceAccount {namespace}/{name}")
            }
            Request::User(name) => format!("User {name}"),
            Request::Group(name) => format!("Group {name}"),
            Request::Extra { key, value } => format!("UserExtra {key}={value}"),
            Request::Uid(uid) => format!("UID {uid}"),
        }
    }
}

/// `Impersonate-Extra-<key>` keys are percent-encoded (upstream's `unescapeExtraKey`); a
/// key that does not decode is kept as sent.
fn unescape_extra_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => return key.to_string(),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| key.to_string())
}

/// What the headers ask for, in upstream's order; `Err` for groups, extras or a uid without
/// a user.
fn requests(headers: &HeaderMap) -> Result<Vec<Request>, String> {
    let text = |v: &axum::http::HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
    let mut out = Vec::new();
    let user = headers.get(USER).map(text).filter(|u| !u.is_empty());
    if let Some(user) = &user {
        let sa = user
            .strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'));
        out.push(match sa {
            Some((namespace, name)) => Request::ServiceAccount {
                namespace: namespace.into(),
                name: name.into(),
            },
            None => Request::User(user.clone()),
        });
    }
    out.extend(
        headers
            .get_all(GROUP)
            .iter()
            .map(|g| Request::Group(text(g))),
    );
    let mut extras: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix(EXTRA_PREFIX)?;
            Some((unescape_extra_key(key), text(value)))
        })
        .collect();
    extras.sort();
    out.extend(
        extras
            .into_iter()
            .map(|(key, value)| Request::Extra { key, value }),
    );
    if let Some(uid) = headers.get(UID).map(text).filter(|u| !u.is_empty()) {
        out.push(Request::Uid(uid));
    }
    if user.is_none() && !out.is_empty() {
        let asked: Vec<String> = out.iter().map(Request::describe).collect();
        return Err(format!(
            "requested [{}] without impersonating a user",
            asked.join(" ")
        ));
    }
    Ok(out)
}

/// The user `requester` acts as for a request with `headers`: itself without impersonation
/// headers, else the impersonated user once `authorizer` allows each part.
pub fn impersonate(
    authorizer: &dyn Authorizer,
    requester: std::sync::Arc<UserInfo>,
    headers: &HeaderMap,
) -> Result<std::sync::Arc<UserInfo>, ApiError> {
    let asked = requests(headers).map_err(ApiError::internal)?;
    if asked.is_empty() {
        return Ok(requester);
    }
    let groups_given = asked.iter().any(|r| matches!(r, Request::Group(_)));
    let mut user = UserInfo::default();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in &asked {
        let (group, resource, subresource, namespace, name) = match request {
            Request::ServiceAccount { namespace, name } => {
                user.name = format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}");
                if !groups_given {
                    user.groups = vec![
                        ALL_SERVICE_ACCOUNTS.to_string(),
                        format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"),
                    ];
                }
                ("", "serviceaccounts", "", namespace.as_str(), name.as_str())
            }
            Request::User(name) => {
                user.name = name.clone();
                ("", "users", "", "", name.as_str())
            }
            Request::Group(name) => {
                user.groups.push(name.clone());
                ("", "groups", "", "", name.as_str())
            }
            Request::Extra { key, value } => {
                extra.entry(key.clone()).or_default().push(value.clone());
                (
                    AUTHENTICATION_GROUP,
                    "userextras",
                    key.as_str(),
                    "",
                    value.as_str(),
                )
            }
            Request::Uid(uid) => {
                user.uid = uid.clone();
                (AUTHENTICATION_GROUP, "uids", "", "", uid.as_str())
            }
        };
        let attrs = Attributes::resource(
            &requester,
            "impersonate",
            namespace,
            group,
            "",
            resource,
            subresource,
            name,
        );
        crate::authorization::decide(authorizer, &attrs, None)?;
    }
    user.extra = extra;
    if user.name != ANONYMOUS {
        if !user
            .groups
            .iter()
            .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED)
        {
            user.groups.push(ALL_AUTHENTICATED.to_string());
        }
    } else if !user.groups.iter().any(|g| g == ALL_UNAUTHENTICATED) {
        user.groups.push(ALL_UNAUTHENTICATED.to_string());
    }
    tracing::debug!(requester = %requester.name, acting_as = %user.name, "impersonation");
    Ok(std::sync::Arc::new(user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use pernode_auth::authorizer::Decision;

    /// Allows `impersonate` on users and groups only.
    struct UsersAndGroups;

    impl Authorizer for UsersAndGroups {
        fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
            if attrs.verb == "impersonate" && matches!(attrs.resource, "users" | "groups") {
                Decision::Allow
            } else {
                Decision::NoOpinion(String::new())
            }
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn bob() -> std::sync::Arc<UserInfo> {
        std::sync::Arc::new(UserInfo::new("bob", ["ops", ALL_AUTHENTICATED]))
    }

    #[test]
    fn no_headers_leave_the_requester() {
        let user = impersonate(&UsersAndGroups, bob(), &HeaderMap::new()).unwrap();
        assert_eq!(user.name, "bob");
    }

    #[test]
    fn a_user_and_groups_replace_the_requester() {
        let h = headers(&[
            ("impersonate-user", "jane"),
            ("impersonate-group", "dev"),
            ("impersonate-group", "qa"),
        ]);
        let user = impersonate(&UsersAndGroups, bob(), &h).unwrap();
        assert_eq!(user.name, "jane");
        assert_eq!(user.groups, ["dev", "qa", ALL_AUTHENTICATED]);
        let alone = impersonate(
            &UsersAndGroups,
            bob(),
            &headers(&[("impersonate-user", "jane")]),
        );
        assert_eq!(alone.unwrap().groups, [ALL_AUTHENTICATED]);
    }

    #[test]
    fn each_part_needs_its_own_permission() {
        let h = headers(&[(
            "impersonate-user",
            "system:serviceaccount:kube-system:flannel",
        )]);
        let err = impersonate(&UsersAndGroups, bob(), &h).unwrap_err();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            r#"serviceaccounts "flannel" is forbidden: User "bob" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "kube-system""#
        );
        let h = headers(&[("impersonate-user", "jane"), ("impersonate-uid", "42")]);
        let err = impersonate(&UsersAndGroups, bob(), &h).unwrap_err();
        assert!(
            err.message.contains(
                r#"cannot impersonate resource "uids" in API group "authentication.k8s.io""#
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn groups_without_a_user_are_refused() {
        let err = impersonate(
            &UsersAndGroups,
            bob(),
            &headers(&[("impersonate-group", "dev")]),
        )
        .unwrap_err();
        assert_eq!(err.code, 500);
        assert!(
            err.message.contains("without impersonating a user"),
            "{}",
            err.message
        );
    }

    #[test]
    fn service_accounts_get_their_groups_and_extras_are_unescaped() {
        struct Everything;
        impl Authorizer for Everything {
            fn authorize(&self, _: &Attributes<'_>) -> Decision {
                Decision::Allow
            }
        }
        let h = headers(&[
            ("impersonate-user", "system:serviceaccount:ns:sa"),
            ("impersonate-extra-example.com%2fteam", "a"),
        ]);
        let user = impersonate(&Everything, bob(), &h).unwrap();
        assert_eq!(
            user.groups,
            [
                ALL_SERVICE_ACCOUNTS,
                "system:serviceaccounts:ns",
                ALL_AUTHENTICATED
            ]
        );
        assert_eq!(user.extra["example.com/team"], ["a"]);
        let anon = impersonate(
            &Everything,
            bob(),
            &headers(&[("impersonate-user", ANONYMOUS)]),
        );
        assert_eq!(anon.unwrap().groups, [ALL_UNAUTHENTICATED]);
    }
}
