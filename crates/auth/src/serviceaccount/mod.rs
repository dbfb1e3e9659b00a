//! Service-account tokens, as upstream's `pkg/serviceaccount` and
//! `k8s.io/apiserver/pkg/authentication/serviceaccount`: the JWTs a TokenRequest issues
//! (`kubectl create token`, a pod's projected token) and the authenticator that turns one back
//! into the service account's [`UserInfo`].
//!
//! - [`key`]: the ES256 (P-256) [`SigningKey`], generated once and kept as a PEM file
//!   (kube-apiserver's `--service-account-signing-key-file`), and the [`VerifyingKey`]s tokens
//!   are checked against (`--service-account-key-file`), each named by upstream's key id;
//! - [`claims`]: what a token says: `iss`, `sub` (`system:serviceaccount:<ns>:<name>`), `aud`,
//!   `exp`, `iat`, `nbf`, `jti`, and the private `kubernetes.io` claim naming the namespace, the
//!   service account and the object the token is bound to (pod, and the pod's node; secret; or
//!   node); and the [`ServiceAccountInfo`] a valid token stands for;
//! - [`issuer`]: [`TokenIssuer::issue`] signs the claims of one request;
//! - [`verifier`]: [`TokenVerifier::verify`] checks issuer, signature, audience, validity
//!   window (with upstream's 60 s leeway) and that the service account and the bound objects
//!   still exist with the uids the token names, looking them up through [`ObjectLookup`], which
//!   the API server implements over its store (this crate knows no store).
//!
//! ```
//! use pernode_auth::serviceaccount::{
//!     BoundObject, IssueRequest, ObjectLookup, ObjectRef, ObjectState, SigningKey, TokenIssuer,
//!     TokenVerifier, DEFAULT_ISSUER,
//! };
//!
//! struct Cluster;
//! impl ObjectLookup for Cluster {
//!     fn service_account(&self, _: &str, name: &str) -> Option<ObjectState> {
//!         (name == "default").then(|| ObjectState::live("sa-uid"))
//!     }
//!     fn pod(&self, _: &str, _: &str) -> Option<ObjectState> { None }
//!     fn secret(&self, _: &str, _: &str) -> Option<ObjectState> { None }
//!     fn node(&self, _: &str) -> Option<ObjectState> { None }
//! }
//!
//! let key = SigningKey::generate().unwrap();
//! let verifier = TokenVerifier::new(
//!     [DEFAULT_ISSUER],
//!     [key.verifying_key().clone()],
//!     [DEFAULT_ISSUER],
//! );
//! let issuer = TokenIssuer::new(DEFAULT_ISSUER, key);
//! let token = issuer
//!     .issue(&IssueRequest::new("default", ObjectRef::new("default", "sa-uid"), [DEFAULT_ISSUER]))
//!     .unwrap();
//! let user = verifier.verify(&token.token, &Cluster).unwrap();
//! assert_eq!(user.name, "system:serviceaccount:default:default");
//! assert_eq!(user.groups, ["system:serviceaccounts", "system:serviceaccounts:default"]);
//! ```

pub mod claims;
pub mod issuer;
pub mod key;
pub mod verifier;

pub use claims::{BoundObject, Claims, KubernetesClaims, ObjectRef, ServiceAccountInfo};
pub use issuer::{IssueError, IssueRequest, IssuedToken, TokenIssuer};
pub use key::{KEY_FILE, KeyError, SigningKey, VerifyingKey};
pub use verifier::{
    Authenticated, LEEWAY_SECONDS, ObjectLookup, ObjectState, TokenVerifier, VerifyError, aggregate,
};

use crate::user::{ALL_SERVICE_ACCOUNTS, SERVICE_ACCOUNT_USER_PREFIX};

/// kube-apiserver's issuer (`--service-account-issuer`) and API audience (`--api-audiences`
/// defaults to the issuer) when none is configured: the in-cluster name of the API server.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Extra of a pod-bound token's user: the pod's name.
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
/// Extra of a pod-bound token's user: the pod's uid.
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
/// Extra of a node- or pod-bound token's user: the node's name.
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
/// Extra of a node- or pod-bound token's user: the node's uid.
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";

/// Upstream's default for a TokenRequest without `expirationSeconds`.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest token a TokenRequest may ask for (upstream's `MinTokenAgeSec`).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest (2^32 s).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// The expiration kubelets ask for pod tokens; upstream extends such tokens (for the API
/// server's own audiences) to [`EXTENDED_EXPIRATION_SECONDS`] and only warns after this
/// (`--service-account-extend-token-expiration`, on by default).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
/// One year: the real lifetime of an extended token.
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 24 * 365 * 60 * 60;

/// A service account's user name: `system:serviceaccount:<namespace>:<name>`.
pub fn username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

/// A service account's groups: every service account's and its namespace's.
pub fn group_names(namespace: &str) -> Vec<String> {
    vec![
        ALL_SERVICE_ACCOUNTS.to_string(),
        format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"),
    ]
}

/// The credential id of a token with this `jti` (upstream's `CredentialIDForJTI`), as the
/// user's `authentication.kubernetes.io/credential-id` extra says it.
pub fn credential_id_for_jti(jti: &str) -> String {
    if jti.is_empty() {
        String::new()
    } else {
        format!("JTI={jti}")
    }
}

/// The current time in Unix seconds.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
