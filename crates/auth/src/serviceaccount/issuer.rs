//! Issuing a token (upstream's `Claims` and `JWTTokenGenerator`): the claims of one request,
//! signed ES256 with the key id in the header.

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::claims::{BoundObject, Claims, KubernetesClaims, ObjectRef};
use super::key::SigningKey;

/// What one token is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRequest {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account (its uid is checked again when the token is used).
    pub service_account: ObjectRef,
    /// What the token is bound to, if anything.
    pub bound: Option<BoundObject>,
    /// Who may accept the token.
    pub audiences: Vec<String>,
    /// Lifetime in seconds.
    pub expiration_seconds: i64,
    /// Seconds after which an (extended) token counts as stale, if set.
    pub warn_after_seconds: Option<i64>,
}

impl IssueRequest {
    /// A token for `service_account` in `namespace`, bound to nothing, valid for upstream's
    /// default hour.
    pub fn new<A: Into<String>>(
        namespace: impl Into<String>,
        service_account: ObjectRef,
        audiences: impl IntoIterator<Item = A>,
    ) -> IssueRequest {
        IssueRequest {
            namespace: namespace.into(),
            service_account,
            bound: None,
            audiences: audiences.into_iter().map(Into::into).collect(),
            expiration_seconds: super::DEFAULT_EXPIRATION_SECONDS,
            warn_after_seconds: None,
        }
    }
}

/// A signed token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWT.
    pub token: String,
    /// `iat` (and `nbf`), Unix seconds.
    pub issued_at: i64,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// `jti`.
    pub jti: String,
}

/// Signing failed (the key could not be used).
#[derive(Debug, thiserror::Error)]
#[error("failed to generate token: {0}")]
pub struct IssueError(String);

/// Signs tokens for one issuer (`iss`).
#[derive(Debug)]
pub struct TokenIssuer {
    issuer: String,
    key: SigningKey,
}

impl TokenIssuer {
    pub fn new(issuer: impl Into<String>, key: SigningKey) -> TokenIssuer {
        TokenIssuer {
            issuer: issuer.into(),
            key,
        }
    }

    /// The `iss` of every token.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs a token for `request`, valid from now.
    pub fn issue(&self, request: &IssueRequest) -> Result<IssuedToken, IssueError> {
        self.issue_at(request, super::now_unix())
    }

    /// Signs a token for `request` as if issued at `now` (Unix seconds).
    pub fn issue_at(&self, request: &IssueRequest, now: i64) -> Result<IssuedToken, IssueError> {
        let claims = self.claims(request, now, uuid::Uuid::new_v4().to_string());
        let header = Header {
            typ: None,
            kid: Some(self.key.key_id().to_string()),
            ..Header::new(Algorithm::ES256)
        };
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_ec_der(self.key.pkcs8()),
        )
        .map_err(|e| IssueError(e.to_string()))?;
        Ok(IssuedToken {
            token,
            issued_at: now,
            expires_at: claims.exp.unwrap_or(now),
            jti: claims.jti,
        })
    }

    /// Upstream's `Claims`: subject, audiences, issued/not-before now, expiry, a fresh `jti`,
    /// and the private claim naming the namespace, the service account and the bound object.
    pub fn claims(&self, request: &IssueRequest, now: i64, jti: String) -> Claims {
        let mut kubernetes = KubernetesClaims {
            namespace: request.namespace.clone(),
            serviceaccount: request.service_account.clone(),
            warnafter: request
                .warn_after_seconds
                .filter(|s| *s != 0)
                .map(|s| now.saturating_add(s)),
            ..KubernetesClaims::default()
        };
        match &request.bound {
            None => {}
            Some(BoundObject::Pod { pod, node }) => {
                kubernetes.pod = Some(pod.clone());
                kubernetes.node = node.clone();
            }
            Some(BoundObject::Secret(secret)) => kubernetes.secret = Some(secret.clone()),
            Some(BoundObject::Node(node)) => kubernetes.node = Some(node.clone()),
        }
        Claims {
            aud: request.audiences.clone(),
            exp: Some(now.saturating_add(request.expiration_seconds)),
            iat: Some(now),
            iss: self.issuer.clone(),
            jti,
            kubernetes,
            nbf: Some(now),
            sub: super::username(&request.namespace, &request.service_account.name),
        }
    }
}
