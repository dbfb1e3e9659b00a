//! Service-account tokens on the server's side: the key, issuer and verifier it was set up with
//! ([`ServiceAccountTokens`]), the store as the verifier's [`ObjectLookup`], and bearer-token
//! authentication ([`authenticate_bearer`]) as kube-apiserver's service-account token
//! authenticator: a token this server issued is its service account (with
//! `system:authenticated`), or refused with upstream's reason; any other token is left to
//! other authenticators.
//!
//! The TokenRequest (`serviceaccounts/token`, [`crate::token_request`]) issues; the TokenReview
//! ([`crate::token_review`]) and the TLS listener's authentication verify.

use pernode_auth::serviceaccount::{
    Authenticated, DEFAULT_ISSUER, KeyError, ObjectLookup, ObjectState, SigningKey, TokenIssuer,
    TokenVerifier, VerifyError,
};
use pernode_auth::user::UserInfo;
use pernode_store::Store;

use crate::{ApiServerOptions, AppState, ServiceAccountKey};

/// The server's token issuer and verifier: one signing key, one issuer, the API audiences.
#[derive(Debug)]
pub struct ServiceAccountTokens {
    issuer: TokenIssuer,
    verifier: TokenVerifier,
}

impl ServiceAccountTokens {
    /// Loads (or creates) the signing key `options` name; the verifier takes tokens of the
    /// issuer signed by that key or one of the extra verifying keys, for the API audiences
    /// (the issuer when none are given, as kube-apiserver's `--api-audiences` defaults).
    pub fn new(options: &ApiServerOptions) -> Result<ServiceAccountTokens, KeyError> {
        let key = match &options.service_account_key {
            ServiceAccountKey::Ephemeral => SigningKey::generate()?,
            ServiceAccountKey::Dir(dir) => SigningKey::load_or_generate(dir)?,
            ServiceAccountKey::File(path) => SigningKey::from_file(path)?,
        };
        let issuer = match options.service_account_issuer.as_str() {
            "" => DEFAULT_ISSUER.to_string(),
            given => given.to_string(),
        };
        let audiences = match options.api_audiences.as_slice() {
            [] => vec![issuer.clone()],
            given => given.to_vec(),
        };
        let mut keys = vec![key.verifying_key().clone()];
        for extra in &options.service_account_verifying_keys {
            if !keys.contains(extra) {
                keys.push(extra.clone());
            }
        }
        Ok(ServiceAccountTokens {
            verifier: TokenVerifier::new([issuer.clone()], keys, audiences),
            issuer: TokenIssuer::new(issuer, key),
        })
    }

    pub fn issuer(&self) -> &TokenIssuer {
        &self.issuer
    }

    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The server's own audiences (`--api-audiences`).
    pub fn api_audiences(&self) -> &[String] {
        self.verifier.api_audiences()
    }
}

/// The store as the verifier reads it: the objects a token names, by their store keys.
pub struct StoreLookup<'a>(pub &'a Store);

impl StoreLookup<'_> {
    fn state(&self, key: &str) -> Option<ObjectState> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct Meta {
            uid: String,
            #[serde(rename = "deletionTimestamp")]
            deletion_timestamp: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Object {
            #[serde(default)]
            metadata: Meta,
        }
        let entry = self.0.get(key)?;
        // A stored object that does not read is treated as present under no uid: every
        // token naming it is then refused on the uid, never accepted.
        let meta = serde_json::from_slice::<Object>(&entry.json)
            .map(|o| o.metadata)
            .unwrap_or_default();
        let deletion_timestamp = meta
            .deletion_timestamp
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map(|t| t.as_second());
        Some(ObjectState {
            uid: meta.uid,
            deletion_timestamp,
        })
    }
}

impl ObjectLookup for StoreLookup<'_> {
    fn service_account(&self, namespace: &str, name: &str) -> Option<ObjectState> {
        self.state(&format!("serviceaccounts/{namespace}/{name}"))
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<ObjectState> {
        self.state(&format!("pods/{namespace}/{name}"))
    }

    fn secret(&self, namespace: &str, name: &str) -> Option<ObjectState> {
        self.state(&format!("secrets/{namespace}/{name}"))
    }

    fn node(&self, name: &str) -> Option<ObjectState> {
        self.state(&format!("nodes/{name}"))
    }
}

/// Authenticates a request's `Authorization: Bearer <token>` as the service account of a
/// token this server issued: `None` when it is not such a token (another authenticator may
/// know it; upstream then answers 401 `invalid bearer token` if none does), `Some(Err(reason))`
/// for one that is refused (a 401; the reason is upstream's, for the log), `Some(Ok(user))`
/// for the service account, with `system:authenticated`.
pub fn authenticate_bearer(state: &AppState, token: &str) -> Option<Result<UserInfo, String>> {
    let tokens = &state.service_account_tokens;
    match review(state, token, tokens.api_audiences()) {
        Ok(authenticated) => Some(Ok(authenticated.user)),
        Err(VerifyError::NotServiceAccountToken) => None,
        Err(VerifyError::Invalid(reason)) => Some(Err(reason)),
    }
}

/// Verifies `token` for `audiences` (none: the API server's) now, against the store; the user
/// has `system:authenticated`, as every authenticated request's.
pub fn review(
    state: &AppState,
    token: &str,
    audiences: &[String],
) -> Result<Authenticated, VerifyError> {
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let verifier = state.service_account_tokens.verifier();
    let mut authenticated =
        verifier.verify_for(token, audiences, &StoreLookup(&state.store), now)?;
    authenticated.user = authenticated.user.authenticated();
    Ok(authenticated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_store_is_read_for_uids_and_deletion_times() {
        let store = Store::in_memory(crate::registry::indexer(), Default::default());
        let pod = serde_json::json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1",
            "deletionTimestamp": "2024-01-02T03:04:05Z"}});
        store.create("pods/ns/p", pod).await.expect("pod");
        store
            .create(
                "nodes/n",
                serde_json::json!({"metadata": {"name": "n", "uid": "u2"}}),
            )
            .await
            .expect("node");
        let lookup = StoreLookup(&store);
        assert_eq!(
            lookup.pod("ns", "p"),
            Some(ObjectState {
                uid: "u1".into(),
                deletion_timestamp: Some(1_704_164_645),
            })
        );
        assert_eq!(lookup.node("n"), Some(ObjectState::live("u2")));
        assert_eq!(lookup.secret("ns", "p"), None);
        assert_eq!(lookup.service_account("ns", "p"), None);
    }

    #[test]
    fn extra_verifying_keys_accept_another_keys_tokens() {
        use pernode_auth::serviceaccount::{IssueRequest, ObjectRef};
        let previous = ServiceAccountTokens::new(&ApiServerOptions::default()).expect("tokens");
        let current = ServiceAccountTokens::new(&ApiServerOptions {
            service_account_verifying_keys: vec![previous.issuer().key().verifying_key().clone()],
            ..ApiServerOptions::default()
        })
        .expect("tokens");
        let request = IssueRequest::new("ns", ObjectRef::new("sa", "uid"), [DEFAULT_ISSUER]);
        let token = previous.issuer().issue(&request).expect("issue").token;
        struct Account;
        impl ObjectLookup for Account {
            fn service_account(&self, _: &str, _: &str) -> Option<ObjectState> {
                Some(ObjectState::live("uid"))
            }
            fn pod(&self, _: &str, _: &str) -> Option<ObjectState> {
                None
            }
            fn secret(&self, _: &str, _: &str) -> Option<ObjectState> {
                None
            }
            fn node(&self, _: &str) -> Option<ObjectState> {
                None
            }
        }
        let user = current
            .verifier()
            .verify(&token, &Account)
            .expect("accepted");
        assert_eq!(user.name, "system:serviceaccount:ns:sa");
    }

    #[test]
    fn options_choose_issuer_audiences_and_key() {
        let dir = tempfile::tempdir().expect("dir");
        let options = ApiServerOptions {
            service_account_key: ServiceAccountKey::Dir(dir.path().to_path_buf()),
            service_account_issuer: "https://issuer.example".into(),
            ..ApiServerOptions::default()
        };
        let tokens = ServiceAccountTokens::new(&options).expect("tokens");
        assert_eq!(tokens.issuer().issuer(), "https://issuer.example");
        assert_eq!(tokens.api_audiences(), ["https://issuer.example"]);
        // The same directory gives the same key; the file alone too.
        let again = ServiceAccountTokens::new(&options).expect("again");
        assert_eq!(
            again.issuer().key().key_id(),
            tokens.issuer().key().key_id()
        );
        let file = ApiServerOptions {
            service_account_key: ServiceAccountKey::File(
                dir.path().join(pernode_auth::serviceaccount::KEY_FILE),
            ),
            api_audiences: vec!["a".into(), "b".into()],
            ..ApiServerOptions::default()
        };
        let from_file = ServiceAccountTokens::new(&file).expect("file");
        assert_eq!(
            from_file.issuer().key().key_id(),
            tokens.issuer().key().key_id()
        );
        assert_eq!(from_file.issuer().issuer(), DEFAULT_ISSUER);
        assert_eq!(from_file.api_audiences(), ["a", "b"]);
        let missing = ApiServerOptions {
            service_account_key: ServiceAccountKey::File(dir.path().join("absent.key")),
            ..ApiServerOptions::default()
        };
        assert!(ServiceAccountTokens::new(&missing).is_err());
    }
}
