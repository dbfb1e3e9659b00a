//! Service-account tokens for projected volumes, as kubelet's token manager
//! (`pkg/kubelet/token/token_manager.go`): each token comes from the TokenRequest API
//! (`create` on `serviceaccounts/<name>/token`, bound to the pod), is cached by what was asked
//! (account, audiences, lifetime, bound object), and is asked for again once it is older than
//! 80% of its lifetime or 24 hours (less up to 10 s of jitter), or when the clock went back
//! before it was issued. When a refresh fails the cached token is used until it expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tracing::warn;

/// A token is refreshed once this old, whatever its lifetime (upstream's `maxTTL`).
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Refreshes are spread over up to this much (upstream's `maxJitter`).
const MAX_JITTER: Duration = Duration::from_secs(10);

/// What a projected volume asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenSpec {
    pub namespace: String,
    pub service_account: String,
    /// Empty: the API server's audiences.
    pub audience: Option<String>,
    pub expiration_seconds: i64,
    pub pod_name: String,
    pub pod_uid: String,
}

/// A token and when it expires.
#[derive(Clone, Debug)]
struct Cached {
    token: String,
    expires: Timestamp,
    /// The lifetime the server granted (`spec.expirationSeconds` of its answer).
    lifetime_seconds: i64,
}

/// The node's tokens, by what was asked.
pub struct TokenManager {
    client: kube::Client,
    cache: Mutex<HashMap<TokenSpec, Cached>>,
}

/// Whether a token issued for `lifetime_seconds` and expiring at `expires` must be asked for
/// again at `now` (upstream's `requiresRefresh`): older than 24 h, within 20% of its lifetime
/// of expiring, or issued in the future; `jitter` brings the first two earlier.
pub fn requires_refresh(
    now: Timestamp,
    expires: Timestamp,
    lifetime_seconds: i64,
    jitter: Duration,
) -> bool {
    let jitter = SignedDuration::try_from(jitter).unwrap_or(SignedDuration::ZERO);
    let issued = expires - SignedDuration::from_secs(lifetime_seconds);
    let max_ttl = SignedDuration::try_from(MAX_TTL).unwrap_or(SignedDuration::MAX);
    if now > issued + (max_ttl - jitter) {
        return true;
    }
    if now > expires - SignedDuration::from_secs(lifetime_seconds * 20 / 100) - jitter {
        return true;
    }
    now < issued
}

fn jitter() -> Duration {
    // Whole seconds, as upstream's `time.Duration(rand.Float64()*maxJitter.Seconds()) * time.Second`.
    Duration::from_secs((rand::random::<f64>() * MAX_JITTER.as_secs_f64()) as u64)
}

impl TokenManager {
    pub fn new(client: kube::Client) -> TokenManager {
        TokenManager {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, spec: &TokenSpec) -> Option<Cached> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(spec)
            .cloned()
    }

    /// The token for `spec`: the cached one unless it needs a refresh; else a new one from the
    /// API, or the cached one while it has not expired when the API fails.
    pub async fn token(&self, spec: &TokenSpec) -> Result<String, String> {
        let now = Timestamp::now();
        let cached = self.cached(spec);
        if let Some(c) = &cached
            && !requires_refresh(now, c.expires, c.lifetime_seconds, jitter())
        {
            return Ok(c.token.clone());
        }
        match self.request(spec).await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(spec.clone(), fresh);
                Ok(token)
            }
            Err(e) => match cached {
                None => Err(format!("failed to fetch token: {e}")),
                Some(c) if now > c.expires => Err(format!(
                    "token {:?}/{:?} expired and refresh failed: {e}",
                    spec.service_account, spec.namespace
                )),
                Some(c) => {
                    warn!(account = %spec.service_account, namespace = %spec.namespace, error = %e, "couldn't update token");
                    Ok(c.token)
                }
            },
        }
    }

    async fn request(&self, spec: &TokenSpec) -> Result<Cached, String> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &spec.namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: spec.audience.iter().cloned().collect(),
                expiration_seconds: Some(spec.expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(spec.pod_name.clone()),
                    uid: Some(spec.pod_uid.clone()),
                }),
            },
            ..Default::default()
        };
        let answer = api
            .create_token_request(&spec.service_account, &PostParams::default(), &request)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) => s.message.clone(),
                other => other.to_string(),
            })?;
        let status = answer
            .status
            .ok_or_else(|| "the TokenRequest answer has no status".to_string())?;
        Ok(Cached {
            token: status.token,
            expires: status.expiration_timestamp.0,
            lifetime_seconds: answer
                .spec
                .expiration_seconds
                .unwrap_or(spec.expiration_seconds),
        })
    }

    /// Forgets the tokens bound to a pod that is gone (upstream's `DeleteServiceAccountToken`).
    pub fn forget_pod(&self, pod_uid: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| k.pod_uid != pod_uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).expect("timestamp")
    }

    #[test]
    fn refresh_after_eighty_percent_of_the_lifetime() {
        // Issued at 0 for 3600 s: expires at 3600, stale from 2880 (80%).
        let expires = at(3600);
        let no_jitter = Duration::ZERO;
        assert!(!requires_refresh(at(0), expires, 3600, no_jitter));
        assert!(!requires_refresh(at(2880), expires, 3600, no_jitter));
        assert!(requires_refresh(at(2881), expires, 3600, no_jitter));
        // Jitter brings it earlier, never later.
        assert!(requires_refresh(
            at(2871),
            expires,
            3600,
            Duration::from_secs(10)
        ));
        assert!(!requires_refresh(
            at(2869),
            expires,
            3600,
            Duration::from_secs(10)
        ));
    }

    #[test]
    fn refresh_after_a_day_whatever_the_lifetime() {
        let year = 365 * 24 * 3600;
        let expires = at(year);
        assert!(!requires_refresh(
            at(24 * 3600),
            expires,
            year,
            Duration::ZERO
        ));
        assert!(requires_refresh(
            at(24 * 3600 + 1),
            expires,
            year,
            Duration::ZERO
        ));
    }

    #[test]
    fn refresh_when_the_clock_went_back() {
        assert!(requires_refresh(at(-1), at(3600), 3600, Duration::ZERO));
    }
}
