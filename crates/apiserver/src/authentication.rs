//! Who a request over TCP is from, as kube-apiserver's authenticator chain: a valid TLS client
//! certificate (CN the user, O the groups), else an `Authorization: Bearer` token
//! (service-account tokens, [`crate::token_authn`]; bootstrap tokens of joining nodes), else
//! anonymous, which [`crate::authorization`] lets reach only the
//! public health and version paths. A certificate or token that is presented but invalid
//! (expired, wrongly signed, revoked) is a 401 on every path. Every authenticated user is also
//! in `system:authenticated`.
//!
//! The listener asks once per connection for the certificate ([`ConnectionCredentials`]) and
//! once per request for the token; the result travels as a request extension
//! ([`Identity`], or [`Unauthenticated`] for a 401).

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use pernode_auth::tls::ServerTls;
use pernode_auth::user::UserInfo;
use rustls::pki_types::CertificateDer;

use crate::AppState;
use crate::authorization::Identity;

/// How the listener speaks.
#[derive(Clone, Debug)]
pub enum Transport {
    /// HTTPS with the server's certificate; clients authenticate with certificates or tokens.
    Tls(ServerTls),
    /// Plain HTTP with every request as this user: for tests of the HTTP layer only. `pernode
    /// up` and `pernode apiserver` always serve [`Transport::Tls`].
    InsecurePlainHttpAs(UserInfo),
}

/// A request extension: the request presented credentials that are not valid (a 401).
#[derive(Clone, Debug)]
pub struct Unauthenticated {
    /// Why, for the server's log.
    pub why: String,
    /// The connection presented a client certificate (valid or not): the audit log names the
    /// methods a failed authentication attempted.
    pub certificate: bool,
}

/// Who sent a request, as the listener or the in-process caller marked it: its [`Identity`],
/// the anonymous user on the public paths, or `Err` (a 401, with the reason for the log) when
/// its credentials are not valid or an anonymous request asks for anything else.
pub fn requester(extensions: &axum::http::Extensions, path: &str) -> Result<Arc<UserInfo>, String> {
    if let Some(refused) = extensions.get::<Unauthenticated>() {
        return Err(refused.why.clone());
    }
    match extensions.get::<Identity>() {
        Some(identity) => Ok(identity.0.clone()),
        None if crate::authorization::anonymous_may_reach(path) => {
            Ok(Arc::new(UserInfo::anonymous()))
        }
        None => Err("anonymous request to a non-public path".into()),
    }
}

/// What a connection's TLS handshake established about its client.
#[derive(Clone, Debug)]
pub struct ConnectionCredentials {
    /// The user of a valid client certificate; `Err` for a certificate that is not valid.
    certificate: Result<Option<Arc<UserInfo>>, String>,
}

impl ConnectionCredentials {
    /// A connection whose client sent `chain` (or none).
    pub fn from_certificates(tls: &ServerTls, chain: Option<&[CertificateDer<'_>]>) -> Self {
        let certificate = tls
            .client_certs
            .user(chain)
            .map(|user| user.map(|u| Arc::new(u.authenticated())));
        ConnectionCredentials { certificate }
    }

    /// A connection whose every request is `user`'s.
    pub fn trusted(user: UserInfo) -> Self {
        ConnectionCredentials {
            certificate: Ok(Some(Arc::new(user.authenticated()))),
        }
    }

    /// Marks `extensions` with the request's identity or its failure to authenticate; neither
    /// for an anonymous request.
    pub fn authenticate(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        extensions: &mut axum::http::Extensions,
    ) {
        if let Ok(Some(user)) = &self.certificate {
            extensions.insert(Identity(user.clone()));
            return;
        }
        let refused = |why: String| Unauthenticated {
            why,
            certificate: self.certificate.is_err(),
        };
        if let Some(token) = bearer_token(headers) {
            match authenticate_token(state, token) {
                Some(Ok(user)) => {
                    extensions.insert(Identity::of(user.authenticated()));
                }
                Some(Err(why)) => {
                    extensions.insert(refused(why));
                }
                None => {
                    extensions.insert(refused("unknown bearer token".into()));
                }
            }
            return;
        }
        if let Err(why) = &self.certificate {
            extensions.insert(refused(why.clone()));
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, as Go's).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The user a bearer token names: `None` when no token authenticator knows the token.
fn authenticate_token(state: &AppState, token: &str) -> Option<Result<UserInfo, String>> {
    crate::token_authn::authenticate_bearer(state, token).or_else(|| bootstrap(state, token))
}

/// A bootstrap token (`<id>.<secret>`, [`pernode_auth::bootstrap_token`]) against its Secret in
/// `kube-system`: `None` when the token has another shape or no Secret has its id.
fn bootstrap(state: &AppState, token: &str) -> Option<Result<UserInfo, String>> {
    use pernode_auth::bootstrap_token as bt;
    let (id, secret) = bt::parse(token)?;
    let key = format!("secrets/{}/{}", bt::NAMESPACE, bt::secret_name(id));
    let entry = state.store.get(&key)?;
    let stored: k8s_openapi::api::core::v1::Secret = match serde_json::from_slice(&entry.json) {
        Ok(s) => s,
        Err(e) => return Some(Err(format!("bootstrap token {id}: unreadable secret: {e}"))),
    };
    Some(bt::authenticate(
        &stored,
        id,
        secret,
        k8s_openapi::jiff::Timestamp::now(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_as_go_reads_them() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc.def".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("abc.def"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
