//! Authenticating a token (upstream's `JWTTokenAuthenticator` and the service-account
//! `validator`), in upstream's order and with its words:
//!
//! 1. a token that is not a three-part JWT whose (unverified) `iss` is one of ours is not a
//!    service-account token at all: another authenticator may know it
//!    ([`VerifyError::NotServiceAccountToken`]);
//! 2. the signature, by the key the `kid` header names (all keys without one);
//! 3. the audience: the token's (or, for a token without, the API server's) must meet the
//!    audiences asked for;
//! 4. the validity window, with go-jose's 60 s leeway: `nbf`, `exp`, then `iat`;
//! 5. the objects the token names, through [`ObjectLookup`]: the service account, then the
//!    bound secret, pod or node, each still there with the same uid and not deleted more than
//!    the leeway ago. A pod-bound token's node is reported, not checked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::claims::{Claims, ServiceAccountInfo};
use super::key::VerifyingKey;
use crate::user::UserInfo;

/// go-jose's `DefaultLeeway`: the clock skew allowed on `nbf`, `exp`, `iat`, and how long a
/// deleted object's tokens stay valid after its deletion time.
pub const LEEWAY_SECONDS: i64 = 60;

/// What the API server knows of an object a token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectState {
    pub uid: String,
    /// `metadata.deletionTimestamp` in Unix seconds, for an object being deleted.
    pub deletion_timestamp: Option<i64>,
}

impl ObjectState {
    /// An object that is not being deleted.
    pub fn live(uid: impl Into<String>) -> ObjectState {
        ObjectState {
            uid: uid.into(),
            deletion_timestamp: None,
        }
    }
}

/// Reads the objects a token names (upstream's `ServiceAccountTokenGetter`); `None`: there is
/// no such object.
pub trait ObjectLookup {
    fn service_account(&self, namespace: &str, name: &str) -> Option<ObjectState>;
    fn pod(&self, namespace: &str, name: &str) -> Option<ObjectState>;
    fn secret(&self, namespace: &str, name: &str) -> Option<ObjectState>;
    fn node(&self, name: &str) -> Option<ObjectState>;
}

/// Why a token was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a service-account token of this server (not a JWT, or another issuer's): upstream's
    /// authenticator has no opinion on it.
    #[error("not a service account token")]
    NotServiceAccountToken,
    /// A service-account token that is refused, with upstream's reason.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(reason: impl Into<String>) -> VerifyError {
    VerifyError::Invalid(reason.into())
}

/// A token accepted: who it is, and the audiences it was accepted for (the token's that the
/// request asked for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub user: UserInfo,
    pub audiences: Vec<String>,
}

/// Verifies tokens against a set of issuers and keys.
#[derive(Clone, Debug)]
pub struct TokenVerifier {
    issuers: Vec<String>,
    keys: Vec<VerifyingKey>,
    /// The API server's own audiences (`--api-audiences`): asked for when the caller names
    /// none, and assumed for a token without `aud`.
    api_audiences: Vec<String>,
}

impl TokenVerifier {
    pub fn new<I: Into<String>, A: Into<String>>(
        issuers: impl IntoIterator<Item = I>,
        keys: impl IntoIterator<Item = VerifyingKey>,
        api_audiences: impl IntoIterator<Item = A>,
    ) -> TokenVerifier {
        TokenVerifier {
            issuers: issuers.into_iter().map(Into::into).collect(),
            keys: keys.into_iter().collect(),
            api_audiences: api_audiences.into_iter().map(Into::into).collect(),
        }
    }

    /// The API server's audiences.
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    /// The user of `token` for a request to the API server (its audiences), now.
    pub fn verify(&self, token: &str, lookup: &dyn ObjectLookup) -> Result<UserInfo, VerifyError> {
        self.verify_for(token, &self.api_audiences, lookup, super::now_unix())
            .map(|a| a.user)
    }

    /// The user of `token` for `audiences` (none: the API server's), at `now` (Unix
    /// seconds).
    pub fn verify_for(
        &self,
        token: &str,
        audiences: &[String],
        lookup: &dyn ObjectLookup,
        now: i64,
    ) -> Result<Authenticated, VerifyError> {
        if !self.has_our_issuer(token) {
            return Err(VerifyError::NotServiceAccountToken);
        }
        // As go-jose's ParseSigned: a header or signature that does not parse is no token.
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| VerifyError::NotServiceAccountToken)?;
        let signature = token.rsplit('.').next().unwrap_or("");
        if URL_SAFE_NO_PAD.decode(signature).is_err() {
            return Err(VerifyError::NotServiceAccountToken);
        }
        let claims = self.verified_claims(token, header.kid.as_deref())?;
        if !self.issuers.contains(&claims.iss) {
            return Err(invalid(format!(
                "token issuer {} is invalid",
                go_quote(&claims.iss)
            )));
        }
        let token_audiences = if claims.aud.is_empty() {
            self.api_audiences.clone()
        } else {
            claims.aud.clone()
        };
        let requested = if audiences.is_empty() {
            &self.api_audiences[..]
        } else {
            audiences
        };
        let accepted: Vec<String> = token_audiences
            .iter()
            .filter(|a| requested.contains(a))
            .cloned()
            .collect();
        if accepted.is_empty() && !self.api_audiences.is_empty() {
            return Err(invalid(format!(
                "token audiences {} is invalid for the target audiences {}",
                go_quote_list(&token_audiences),
                go_quote_list(requested)
            )));
        }
        let info = validate(&claims, lookup, now)?;
        Ok(Authenticated {
            user: info.user_info(),
            audiences: accepted,
        })
    }

    /// upstream's `hasCorrectIssuer`: a compact JWT whose unverified payload names one of our
    /// issuers.
    fn has_our_issuer(&self, token: &str) -> bool {
        #[derive(serde::Deserialize)]
        struct Issuer {
            #[serde(default)]
            iss: String,
        }
        if token.trim_start().starts_with('{') {
            return false;
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [_, payload, _] = parts.as_slice() else {
            return false;
        };
        let Ok(payload) = URL_SAFE_NO_PAD.decode(payload) else {
            return false;
        };
        serde_json::from_slice::<Issuer>(&payload).is_ok_and(|c| self.issuers.contains(&c.iss))
    }

    /// The claims of a token signed by one of our keys: the one its `kid` names, or each
    /// in turn without one.
    fn verified_claims(&self, token: &str, kid: Option<&str>) -> Result<Claims, VerifyError> {
        let keys: Vec<&VerifyingKey> = match kid.filter(|k| !k.is_empty()) {
            Some(kid) => self.keys.iter().filter(|k| k.key_id() == kid).collect(),
            None => self.keys.iter().collect(),
        };
        if keys.is_empty() {
            return Err(invalid("invalid signature, no keys found"));
        }
        let mut validation = Validation::new(Algorithm::ES256);
        // Only the signature here: the claims are checked below, with upstream's rules.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let mut errors = Vec::new();
        for key in keys {
            let decoding = DecodingKey::from_ec_der(key.point());
            match jsonwebtoken::decode::<Claims>(token, &decoding, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => errors.push(match e.kind() {
                    ErrorKind::InvalidAlgorithm => {
                        "go-jose/go-jose: unknown/unsupported algorithm".to_string()
                    }
                    ErrorKind::Json(e) => format!("json: {e}"),
                    _ => "go-jose/go-jose: error in cryptographic primitive".to_string(),
                }),
            }
        }
        Err(invalid(aggregate(&errors)))
    }
}

/// The validator: the validity window, then the objects the token names.
fn validate(
    claims: &Claims,
    lookup: &dyn ObjectLookup,
    now: i64,
) -> Result<ServiceAccountInfo, VerifyError> {
    if claims.nbf.is_some_and(|nbf| now + LEEWAY_SECONDS < nbf) {
        return Err(invalid("service account token is not valid yet"));
    }
    if claims.exp.is_some_and(|exp| now - LEEWAY_SECONDS > exp) {
        return Err(invalid("service account token has expired"));
    }
    if claims.iat.is_some_and(|iat| now + LEEWAY_SECONDS < iat) {
        return Err(invalid("service account token is issued in the future"));
    }
    let deleted = |state: &ObjectState| {
        state
            .deletion_timestamp
            .is_some_and(|t| t < now - LEEWAY_SECONDS)
    };
    let k = &claims.kubernetes;
    let namespace = k.namespace.as_str();
    let sa_ref = &k.serviceaccount;
    let account = lookup
        .service_account(namespace, &sa_ref.name)
        .ok_or_else(|| {
            invalid(format!(
                "serviceaccounts {} not found",
                go_quote(&sa_ref.name)
            ))
        })?;
    if account.uid != sa_ref.uid {
        return Err(invalid(format!(
            "service account UID ({}) does not match claim ({})",
            account.uid, sa_ref.uid
        )));
    }
    if deleted(&account) {
        return Err(invalid(format!(
            "service account {namespace}/{} has been deleted",
            sa_ref.name
        )));
    }
    let invalidated = || invalid("service account token has been invalidated");
    if let Some(secret_ref) = &k.secret {
        let secret = lookup
            .secret(namespace, &secret_ref.name)
            .ok_or_else(invalidated)?;
        if secret.uid != secret_ref.uid {
            return Err(invalid(format!(
                "secret UID ({}) does not match service account secret ref claim ({})",
                secret.uid, secret_ref.uid
            )));
        }
        if deleted(&secret) {
            return Err(invalidated());
        }
    }
    let mut info = ServiceAccountInfo {
        namespace: namespace.to_string(),
        name: sa_ref.name.clone(),
        uid: sa_ref.uid.clone(),
        credential_id: super::credential_id_for_jti(&claims.jti),
        ..ServiceAccountInfo::default()
    };
    if let Some(pod_ref) = &k.pod {
        let pod = lookup
            .pod(namespace, &pod_ref.name)
            .ok_or_else(invalidated)?;
        if pod.uid != pod_ref.uid {
            return Err(invalid(format!(
                "pod UID ({}) does not match service account pod ref claim ({})",
                pod.uid, pod_ref.uid
            )));
        }
        if deleted(&pod) {
            return Err(invalidated());
        }
        info.pod_name = pod_ref.name.clone();
        info.pod_uid = pod_ref.uid.clone();
    }
    if let Some(node_ref) = &k.node {
        // A pod-bound token carries its pod's node for the record; a node-bound one is
        // valid while that node is.
        if k.pod.is_none() {
            let node = lookup.node(&node_ref.name).ok_or_else(invalidated)?;
            if node.uid != node_ref.uid {
                return Err(invalid(format!(
                    "node UID ({}) does not match service account node ref claim ({})",
                    node.uid, node_ref.uid
                )));
            }
            if deleted(&node) {
                return Err(invalidated());
            }
        }
        info.node_name = node_ref.name.clone();
        info.node_uid = node_ref.uid.clone();
    }
    Ok(info)
}

/// Go's `%q` of a string.
fn go_quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// An aggregate of error messages as upstream's `utilerrors.NewAggregate` prints it: repeated
/// messages once, one message bare, several as `[a, b]`.
pub fn aggregate<S: AsRef<str>>(messages: &[S]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for m in messages {
        if !seen.contains(&m.as_ref()) {
            seen.push(m.as_ref());
        }
    }
    match seen.as_slice() {
        [one] => one.to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::serviceaccount::{
        BoundObject, DEFAULT_ISSUER, IssueRequest, ObjectRef, SigningKey, TokenIssuer,
    };

    const NOW: i64 = 1_700_000_000;

    /// Objects by (kind, namespace/name).
    #[derive(Default)]
    struct Objects(HashMap<(&'static str, String), ObjectState>);

    impl Objects {
        fn with(mut self, kind: &'static str, key: &str, uid: &str) -> Objects {
            self.0
                .insert((kind, key.to_string()), ObjectState::live(uid));
            self
        }
        fn get(&self, kind: &'static str, key: String) -> Option<ObjectState> {
            self.0.get(&(kind, key)).cloned()
        }
    }

    impl ObjectLookup for Objects {
        fn service_account(&self, namespace: &str, name: &str) -> Option<ObjectState> {
            self.get("sa", format!("{namespace}/{name}"))
        }
        fn pod(&self, namespace: &str, name: &str) -> Option<ObjectState> {
            self.get("pod", format!("{namespace}/{name}"))
        }
        fn secret(&self, namespace: &str, name: &str) -> Option<ObjectState> {
            self.get("secret", format!("{namespace}/{name}"))
        }
        fn node(&self, name: &str) -> Option<ObjectState> {
            self.get("node", name.to_string())
        }
    }

    struct Fixture {
        issuer: TokenIssuer,
        verifier: TokenVerifier,
        objects: Objects,
    }

    fn fixture() -> Fixture {
        let key = SigningKey::generate().expect("key");
        let verifier = TokenVerifier::new(
            [DEFAULT_ISSUER],
            [key.verifying_key().clone()],
            [DEFAULT_ISSUER],
        );
        Fixture {
            issuer: TokenIssuer::new(DEFAULT_ISSUER, key),
            verifier,
            objects: Objects::default().with("sa", "default/default", "sa-uid"),
        }
    }

    fn request() -> IssueRequest {
        IssueRequest::new(
            "default",
            ObjectRef::new("default", "sa-uid"),
            [DEFAULT_ISSUER],
        )
    }

    impl Fixture {
        fn token(&self, request: &IssueRequest, at: i64) -> String {
            self.issuer.issue_at(request, at).expect("issue").token
        }
        fn check(&self, token: &str, at: i64) -> Result<Authenticated, VerifyError> {
            self.verifier.verify_for(token, &[], &self.objects, at)
        }
        fn refused(&self, token: &str, at: i64) -> String {
            match self.check(token, at) {
                Err(VerifyError::Invalid(reason)) => reason,
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn an_issued_token_verifies_as_its_service_account() {
        let f = fixture();
        let issued = f.issuer.issue_at(&request(), NOW).expect("issue");
        assert_eq!(issued.expires_at, NOW + 3600);
        let ok = f.check(&issued.token, NOW + 10).expect("valid");
        assert_eq!(ok.user.name, "system:serviceaccount:default:default");
        assert_eq!(ok.user.uid, "sa-uid");
        assert_eq!(
            ok.user.groups,
            ["system:serviceaccounts", "system:serviceaccounts:default"]
        );
        assert_eq!(
            ok.user.extra["authentication.kubernetes.io/credential-id"],
            [format!("JTI={}", issued.jti)]
        );
        assert_eq!(ok.audiences, [DEFAULT_ISSUER]);
        // The header names the key as upstream does, and nothing else.
        let header = jsonwebtoken::decode_header(&issued.token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(f.issuer.key().key_id()));
        assert_eq!(header.typ, None);
        // verify() is the same check now, for the API server's audiences.
        let now = f.issuer.issue(&request()).expect("issue");
        assert_eq!(
            f.verifier
                .verify(&now.token, &f.objects)
                .expect("valid")
                .name,
            "system:serviceaccount:default:default"
        );
    }

    #[test]
    fn the_validity_window_has_upstreams_leeway() {
        let f = fixture();
        let token = f.token(&request(), NOW);
        // Expired: only past exp + 60 s.
        assert!(f.check(&token, NOW + 3600 + 60).is_ok());
        assert_eq!(
            f.refused(&token, NOW + 3600 + 61),
            "service account token has expired"
        );
        // Not yet valid: only before nbf - 60 s (a skewed clock is tolerated).
        assert!(f.check(&token, NOW - 60).is_ok());
        assert_eq!(
            f.refused(&token, NOW - 61),
            "service account token is not valid yet"
        );
    }

    #[test]
    fn a_token_issued_in_the_future_is_refused_and_one_without_aud_is_the_apis() {
        let f = fixture();
        let sign = |claims: &Claims| {
            let header = jsonwebtoken::Header {
                kid: Some(f.issuer.key().key_id().to_string()),
                ..jsonwebtoken::Header::new(Algorithm::ES256)
            };
            let key = jsonwebtoken::EncodingKey::from_ec_der(f.issuer.key().pkcs8());
            jsonwebtoken::encode(&header, claims, &key).expect("sign")
        };
        let mut claims = f.issuer.claims(&request(), NOW, "j".into());
        claims.nbf = None;
        claims.iat = Some(NOW + 120);
        assert_eq!(
            f.refused(&sign(&claims), NOW),
            "service account token is issued in the future"
        );
        // No audience: the API server's own; no expiry: go-jose checks none.
        let mut claims = f.issuer.claims(&request(), NOW, String::new());
        claims.aud.clear();
        claims.exp = None;
        let ok = f
            .check(&sign(&claims), NOW + 10 * 365 * 86_400)
            .expect("valid");
        assert_eq!(ok.audiences, [DEFAULT_ISSUER]);
        // No jti, no credential id.
        assert!(ok.user.extra.is_empty());
    }

    #[test]
    fn other_issuers_tokens_and_garbage_are_not_ours() {
        let f = fixture();
        let other = TokenIssuer::new("https://elsewhere", SigningKey::generate().expect("key"));
        let token = other.issue_at(&request(), NOW).expect("issue").token;
        for t in [
            token.as_str(),
            "",
            "garbage",
            "a.b.c",
            "{\"iss\":\"x\"}",
            "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2t1YmVybmV0ZXMuZGVmYXVsdC5zdmMuY2x1c3Rlci5sb2NhbCJ9.",
        ] {
            assert_eq!(
                f.check(t, NOW),
                Err(VerifyError::NotServiceAccountToken),
                "{t}"
            );
        }
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let f = fixture();
        let mut r = request();
        r.audiences = vec!["vault".into()];
        let token = f.token(&r, NOW);
        assert_eq!(
            f.refused(&token, NOW),
            r#"token audiences ["vault"] is invalid for the target audiences ["https://kubernetes.default.svc.cluster.local"]"#
        );
        // Asked for its own audience, it is accepted for that audience alone.
        let ok = f
            .verifier
            .verify_for(&token, &["vault".into(), "x".into()], &f.objects, NOW)
            .expect("valid for vault");
        assert_eq!(ok.audiences, ["vault"]);
    }

    #[test]
    fn a_token_signed_by_another_key_or_tampered_with_is_refused() {
        let f = fixture();
        // Same issuer, another key: its key id names no key of ours.
        let stranger = TokenIssuer::new(DEFAULT_ISSUER, SigningKey::generate().expect("key"));
        let token = stranger.issue_at(&request(), NOW).expect("issue").token;
        assert_eq!(f.refused(&token, NOW), "invalid signature, no keys found");
        // Without a key id every key is tried, and none verifies it.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#);
        assert_eq!(
            f.refused(&parts.join("."), NOW),
            "go-jose/go-jose: error in cryptographic primitive"
        );
        // Our token with its payload changed (another service account) no longer verifies.
        let token = f.token(&request(), NOW);
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let payload = URL_SAFE_NO_PAD.decode(&parts[1]).expect("payload");
        let forged = String::from_utf8(payload)
            .expect("utf-8")
            .replace("default:default", "default:admin");
        parts[1] = URL_SAFE_NO_PAD.encode(forged);
        assert_eq!(
            f.refused(&parts.join("."), NOW),
            "go-jose/go-jose: error in cryptographic primitive"
        );
    }

    #[test]
    fn a_deleted_or_recreated_service_account_invalidates_its_tokens() {
        let mut f = fixture();
        let token = f.token(&request(), NOW);
        f.objects = Objects::default().with("sa", "default/default", "new-uid");
        assert_eq!(
            f.refused(&token, NOW),
            "service account UID (new-uid) does not match claim (sa-uid)"
        );
        f.objects = Objects::default();
        assert_eq!(
            f.refused(&token, NOW),
            r#"serviceaccounts "default" not found"#
        );
        // Being deleted: valid until a leeway past its deletion time.
        let mut deleting = ObjectState::live("sa-uid");
        deleting.deletion_timestamp = Some(NOW - 30);
        f.objects
            .0
            .insert(("sa", "default/default".into()), deleting);
        assert!(f.check(&token, NOW).is_ok());
        assert_eq!(
            f.refused(&token, NOW + 31),
            "service account default/default has been deleted"
        );
    }

    #[test]
    fn a_pod_bound_token_lives_and_dies_with_its_pod() {
        let mut f = fixture();
        f.objects = f.objects.with("pod", "default/web", "pod-uid");
        let mut r = request();
        r.bound = Some(BoundObject::Pod {
            pod: ObjectRef::new("web", "pod-uid"),
            node: Some(ObjectRef::new("node-1", "node-uid")),
        });
        let token = f.token(&r, NOW);
        let ok = f.check(&token, NOW).expect("valid");
        let extra = &ok.user.extra;
        assert_eq!(extra["authentication.kubernetes.io/pod-name"], ["web"]);
        assert_eq!(extra["authentication.kubernetes.io/pod-uid"], ["pod-uid"]);
        // The node is reported, not checked (there is no node-1 here).
        assert_eq!(extra["authentication.kubernetes.io/node-name"], ["node-1"]);
        assert_eq!(extra["authentication.kubernetes.io/node-uid"], ["node-uid"]);
        // The pod recreated under the same name.
        f.objects = f.objects.with("pod", "default/web", "other-uid");
        assert_eq!(
            f.refused(&token, NOW),
            "pod UID (other-uid) does not match service account pod ref claim (pod-uid)"
        );
        // The pod gone.
        f.objects.0.remove(&("pod", "default/web".to_string()));
        assert_eq!(
            f.refused(&token, NOW),
            "service account token has been invalidated"
        );
    }

    #[test]
    fn secret_and_node_bound_tokens_are_checked_against_their_object() {
        let mut f = fixture();
        f.objects = f
            .objects
            .with("secret", "default/s", "secret-uid")
            .with("node", "node-1", "node-uid");
        let mut r = request();
        r.bound = Some(BoundObject::Secret(ObjectRef::new("s", "secret-uid")));
        let secret_token = f.token(&r, NOW);
        r.bound = Some(BoundObject::Node(ObjectRef::new("node-1", "node-uid")));
        let node_token = f.token(&r, NOW);
        assert!(f.check(&secret_token, NOW).is_ok());
        let ok = f.check(&node_token, NOW).expect("valid");
        assert_eq!(
            ok.user.extra["authentication.kubernetes.io/node-name"],
            ["node-1"]
        );
        f.objects = f
            .objects
            .with("secret", "default/s", "x")
            .with("node", "node-1", "y");
        assert_eq!(
            f.refused(&secret_token, NOW),
            "secret UID (x) does not match service account secret ref claim (secret-uid)"
        );
        assert_eq!(
            f.refused(&node_token, NOW),
            "node UID (y) does not match service account node ref claim (node-uid)"
        );
        f.objects = Objects::default().with("sa", "default/default", "sa-uid");
        for t in [&secret_token, &node_token] {
            assert_eq!(
                f.refused(t, NOW),
                "service account token has been invalidated"
            );
        }
    }

    #[test]
    fn several_keys_verify_during_a_rotation() {
        let old = SigningKey::generate().expect("key");
        let new = SigningKey::generate().expect("key");
        let verifier = TokenVerifier::new(
            [DEFAULT_ISSUER],
            [old.verifying_key().clone(), new.verifying_key().clone()],
            [DEFAULT_ISSUER],
        );
        let objects = Objects::default().with("sa", "default/default", "sa-uid");
        for key in [old, new] {
            let token = TokenIssuer::new(DEFAULT_ISSUER, key)
                .issue_at(&request(), NOW)
                .expect("issue")
                .token;
            assert!(verifier.verify_for(&token, &[], &objects, NOW).is_ok());
        }
    }

    #[test]
    fn aggregates_print_as_upstreams() {
        assert_eq!(aggregate(&["a"]), "a");
        assert_eq!(aggregate(&["a", "a"]), "a");
        assert_eq!(aggregate(&["a", "b", "a"]), "[a, b]");
    }
}
