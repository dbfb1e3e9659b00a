//! Bootstrap tokens, as upstream's `plugin/pkg/auth/authenticator/token/bootstrap`: a token
//! `<id>.<secret>` (6 and 16 characters of `[a-z0-9]`) names the Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`; it authenticates
//! as `system:bootstrap:<id>` in `system:bootstrappers` (and the Secret's `auth-extra-groups`)
//! while the Secret allows authentication, holds the same `token-secret`, is not expired and
//! is not being deleted. Joining nodes present one before they have a certificate.

use k8s_openapi::api::core::v1::Secret;

use crate::user::UserInfo;

/// The namespace of bootstrap token Secrets.
pub const NAMESPACE: &str = "kube-system";
/// The Secrets' type.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Name prefix of the Secrets.
pub const SECRET_PREFIX: &str = "bootstrap-token-";
/// The group of every bootstrap token's user.
pub const GROUP: &str = "system:bootstrappers";
/// The extra group `pernode token create` gives its tokens by default, which the join
/// bindings name (kubeadm's `system:bootstrappers:kubeadm:default-node-token`).
pub const DEFAULT_NODE_TOKEN_GROUP: &str = "system:bootstrappers:pernode:default-node-token";

/// A token's id and secret, if `token` has a bootstrap token's shape.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let valid = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (valid(id, 6) && valid(secret, 16)).then_some((id, secret))
}

/// The Secret's name for a token id.
pub fn secret_name(id: &str) -> String {
    format!("{SECRET_PREFIX}{id}")
}

fn data<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret.data.as_ref()?.get(key).map(|v| v.0.as_slice())
}

/// The user `token_secret` authenticates as against `secret` (the one its id names), at `now`;
/// `Err` says why not (logged, never shown: the client sees 401).
pub fn authenticate(
    secret: &Secret,
    id: &str,
    token_secret: &str,
    now: k8s_openapi::jiff::Timestamp,
) -> Result<UserInfo, String> {
    if secret.metadata.deletion_timestamp.is_some() {
        return Err(format!("bootstrap token {id} is being deleted"));
    }
    if secret.type_.as_deref() != Some(SECRET_TYPE) {
        return Err(format!("bootstrap token {id}: secret has the wrong type"));
    }
    let stored = data(secret, "token-secret").unwrap_or_default();
    // Compared in constant time: the secret is a password.
    if !equal_in_constant_time(stored, token_secret.as_bytes()) {
        return Err(format!(
            "bootstrap token {id}: the token secret does not match"
        ));
    }
    if let Some(expiration) = data(secret, "expiration") {
        let text = std::str::from_utf8(expiration).unwrap_or_default();
        match text.parse::<k8s_openapi::jiff::Timestamp>() {
            Ok(at) if at > now => {}
            Ok(_) => return Err(format!("bootstrap token {id} has expired")),
            Err(_) => return Err(format!("bootstrap token {id} has an unreadable expiration")),
        }
    }
    if data(secret, USAGE_AUTHENTICATION) != Some(b"true") {
        return Err(format!(
            "bootstrap token {id} is not usable for authentication"
        ));
    }
    let mut groups = vec![GROUP.to_string()];
    if let Some(extra) = data(secret, "auth-extra-groups") {
        for group in std::str::from_utf8(extra).unwrap_or_default().split(',') {
            let group = group.trim();
            if group.is_empty() {
                continue;
            }
            if !valid_extra_group(group) {
                return Err(format!(
                    "bootstrap token {id} has an invalid group {group:?}"
                ));
            }
            if !groups.iter().any(|g| g == group) {
                groups.push(group.to_string());
            }
        }
    }
    Ok(UserInfo::new(format!("system:bootstrap:{id}"), groups))
}

/// The Secret's usage keys.
pub const USAGE_AUTHENTICATION: &str = "usage-bootstrap-authentication";
/// See [`USAGE_AUTHENTICATION`].
pub const USAGE_SIGNING: &str = "usage-bootstrap-signing";

/// Whether the Secret's `expiration` has passed at `now`, for the token cleaner: a Secret
/// whose expiration does not parse is kept (never deleted on a guess); [`signing_token`] and
/// [`authenticate`] refuse it.
pub fn has_expired(secret: &Secret, now: k8s_openapi::jiff::Timestamp) -> bool {
    data(secret, "expiration")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .is_some_and(|at| at <= now)
}

/// The token (`id`, `secret`) of a bootstrap token Secret usable for signing at `now`: the
/// right type and name, a well-formed token matching the name, not expired, and
/// `usage-bootstrap-signing: "true"` (upstream's bootstrap signer's `getTokens`).
pub fn signing_token(
    secret: &Secret,
    now: k8s_openapi::jiff::Timestamp,
) -> Option<(String, String)> {
    if secret.type_.as_deref() != Some(SECRET_TYPE) || secret.metadata.deletion_timestamp.is_some()
    {
        return None;
    }
    let text = |key| data(secret, key).and_then(|v| std::str::from_utf8(v).ok());
    let (id, token_secret) = (text("token-id")?, text("token-secret")?);
    let token = format!("{id}.{token_secret}");
    parse(&token)?;
    if secret.metadata.name.as_deref() != Some(secret_name(id).as_str()) {
        return None;
    }
    if let Some(expiration) = text("expiration") {
        match expiration.parse::<k8s_openapi::jiff::Timestamp>() {
            Ok(at) if at > now => {}
            _ => return None,
        }
    }
    (text(USAGE_SIGNING) == Some("true")).then(|| (id.to_string(), token_secret.to_string()))
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only (as Go's
/// `subtle.ConstantTimeCompare`).
pub(crate) fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Upstream's `^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$`.
fn valid_extra_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= 256
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
        && rest
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(fields: &[(&str, &str)]) -> Secret {
        Secret {
            type_: Some(SECRET_TYPE.into()),
            data: Some(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    fn now() -> k8s_openapi::jiff::Timestamp {
        "2026-12-07T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn tokens_have_upstreams_shape() {
        assert_eq!(
            parse("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        for bad in [
            "abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcdeg0",
            "eyJhbGciOi.x.y",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn signing_needs_the_signing_usage_a_matching_name_and_time() {
        let mut s = secret(&[
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-signing", "true"),
            ("expiration", "2026-12-08T00:00:00Z"),
        ]);
        s.metadata.name = Some("bootstrap-token-abcdef".into());
        assert_eq!(
            signing_token(&s, now()),
            Some(("abcdef".into(), "0123456789abcdef".into()))
        );
        assert!(!has_expired(&s, now()));
        let later = "2026-12-09T00:00:00Z".parse().unwrap();
        assert_eq!(signing_token(&s, later), None);
        assert!(has_expired(&s, later));
        let mut renamed = s.clone();
        renamed.metadata.name = Some("bootstrap-token-zzzzzz".into());
        assert_eq!(signing_token(&renamed, now()), None);
        let mut unusable = s.clone();
        if let Some(d) = unusable.data.as_mut() {
            d.remove(USAGE_SIGNING);
        }
        assert_eq!(signing_token(&unusable, now()), None);
    }

    #[test]
    fn a_valid_token_is_its_bootstrap_user() {
        let s = secret(&[
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-authentication", "true"),
            ("expiration", "2026-12-08T00:00:00Z"),
            (
                "auth-extra-groups",
                "system:bootstrappers:kubeadm:default-node-token",
            ),
        ]);
        let user = authenticate(&s, "abcdef", "0123456789abcdef", now()).unwrap();
        assert_eq!(user.name, "system:bootstrap:abcdef");
        assert_eq!(
            user.groups,
            [GROUP, "system:bootstrappers:kubeadm:default-node-token"]
        );
    }

    #[test]
    fn wrong_expired_unusable_or_deleted_tokens_are_refused() {
        let good = [
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-authentication", "true"),
        ];
        assert!(authenticate(&secret(&good), "abcdef", "0123456789abcdee", now()).is_err());
        let mut expired = good.to_vec();
        expired.push(("expiration", "2026-12-06T00:00:00Z"));
        assert!(
            authenticate(&secret(&expired), "abcdef", "0123456789abcdef", now())
                .unwrap_err()
                .contains("expired")
        );
        let unusable = [("token-secret", "0123456789abcdef")];
        assert!(authenticate(&secret(&unusable), "abcdef", "0123456789abcdef", now()).is_err());
        let mut other_group = good.to_vec();
        other_group.push(("auth-extra-groups", "system:masters"));
        assert!(authenticate(&secret(&other_group), "abcdef", "0123456789abcdef", now()).is_err());
        let mut deleting = secret(&good);
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
        assert!(authenticate(&deleting, "abcdef", "0123456789abcdef", now()).is_err());
        let mut wrong_type = secret(&good);
        wrong_type.type_ = Some("Opaque".into());
        assert!(authenticate(&wrong_type, "abcdef", "0123456789abcdef", now()).is_err());
    }
}
