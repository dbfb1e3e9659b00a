//! Who a request to the kubelet port is from, as the kubelet's delegating authenticator: the
//! client certificate (against `--client-ca-file`), else a bearer token the API server vouches
//! for in a TokenReview (cached two minutes, the kubelet's `authentication.webhook.cacheTTL`),
//! else, only with `--anonymous-auth`, `system:anonymous`. Invalid credentials are refused
//! even then, as upstream's fail-on-error union.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use pernode_auth::user::UserInfo;

use super::expiring::ExpiringCache;

/// How long a TokenReview's answer is reused (the kubelet's default).
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(120);

/// Why a request is not authenticated (answered 401 `Unauthorized`).
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("{0}")]
    InvalidCertificate(String),
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("the token review failed: {0}")]
    TokenReview(String),
    #[error("no credentials")]
    NoCredentials,
}

/// Checks bearer tokens with the API server's TokenReview.
pub struct TokenReviews {
    client: kube::Client,
    /// Each review's answer (the user, `None` for an unknown token) by the token's SHA-256.
    cache: ExpiringCache<[u8; 32], Option<UserInfo>>,
}

impl TokenReviews {
    pub fn new(client: kube::Client) -> TokenReviews {
        TokenReviews {
            client,
            cache: ExpiringCache::new(),
        }
    }

    /// The user `token` belongs to, `None` for a token the API server does not know.
    async fn review(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        // Tokens are kept hashed, as upstream's cache keys them.
        let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .try_into()
            .unwrap_or([0; 32]);
        if let Some(user) = self.cache.get(&key) {
            return Ok(user);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let answer = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthnError::TokenReview(e.to_string()))?;
        let status = answer.status.unwrap_or_default();
        let user = status
            .authenticated
            .unwrap_or(false)
            .then(|| status.user.unwrap_or_default())
            .map(|u| UserInfo {
                name: u.username.unwrap_or_default(),
                uid: u.uid.unwrap_or_default(),
                groups: u.groups.unwrap_or_default(),
                extra: u.extra.unwrap_or_default().into_iter().collect(),
            });
        self.cache.insert(key, user.clone(), TOKEN_CACHE_TTL);
        Ok(user)
    }
}

/// The kubelet port's authenticator.
pub struct Authenticator {
    /// TokenReview for bearer tokens (`--authentication-token-webhook`), if enabled.
    pub tokens: Option<TokenReviews>,
    /// `--anonymous-auth`: requests without credentials are `system:anonymous`.
    pub anonymous: bool,
}

impl Authenticator {
    /// The user of a request: `certificate` is what the connection's client certificate
    /// proved (`Ok(None)`: none presented), `authorization` the request's header.
    pub async fn authenticate(
        &self,
        certificate: Result<Option<UserInfo>, String>,
        authorization: Option<&str>,
    ) -> Result<UserInfo, AuthnError> {
        let mut failure = None;
        match certificate {
            Ok(Some(user)) => return Ok(user.authenticated()),
            Ok(None) => {}
            Err(e) => failure = Some(AuthnError::InvalidCertificate(e)),
        }
        let bearer = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        if let (Some(token), Some(tokens)) = (bearer, &self.tokens) {
            match tokens.review(token).await {
                Ok(Some(user)) => return Ok(user.authenticated()),
                Ok(None) => failure = Some(AuthnError::InvalidToken),
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None if self.anonymous => Ok(UserInfo::anonymous()),
            None => Err(AuthnError::NoCredentials),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn certificates_win_invalid_credentials_are_refused_and_anonymous_is_opt_in() {
        let closed = Authenticator {
            tokens: None,
            anonymous: false,
        };
        let user = closed
            .authenticate(Ok(Some(UserInfo::new("alice", ["dev"]))), None)
            .await
            .expect("authenticated");
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["dev", "system:authenticated"]);
        assert!(matches!(
            closed.authenticate(Ok(None), None).await,
            Err(AuthnError::NoCredentials)
        ));
        // Without the token webhook a bearer token is no credential.
        assert!(matches!(
            closed.authenticate(Ok(None), Some("Bearer abc")).await,
            Err(AuthnError::NoCredentials)
        ));
        let open = Authenticator {
            tokens: None,
            anonymous: true,
        };
        let anonymous = open.authenticate(Ok(None), None).await.expect("anonymous");
        assert!(anonymous.is_anonymous());
        assert!(matches!(
            open.authenticate(Err("expired".into()), None).await,
            Err(AuthnError::InvalidCertificate(_))
        ));
    }
}
