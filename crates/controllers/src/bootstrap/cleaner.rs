//! The token cleaner (upstream's tokencleaner.go): a bootstrap token Secret is deleted once
//! its `expiration` has passed (with its uid as precondition, so a recreated Secret of the
//! same name survives).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Preconditions};
use pernode_auth::bootstrap_token;
use tokio::sync::Notify;

use super::Error;

/// The longest wait between two looks (an expiration may be far away, clocks move).
const MAX_WAIT: Duration = Duration::from_secs(60);

/// When the next token expires after `now`, if any does.
fn next_expiry(
    tokens: &[Arc<Secret>],
    now: k8s_openapi::jiff::Timestamp,
) -> Option<k8s_openapi::jiff::Timestamp> {
    tokens
        .iter()
        .filter_map(|s| s.data.as_ref()?.get("expiration"))
        .filter_map(|v| std::str::from_utf8(&v.0).ok()?.parse().ok())
        .filter(|at| *at > now)
        .min()
}

/// Runs the cleaner until the token watch ends.
pub async fn run(client: kube::Client) -> Result<(), Error> {
    let changed = Arc::new(Notify::new());
    let (tokens, writer) = super::token_store();
    let follow = {
        let (client, changed) = (client.clone(), changed.clone());
        async move { super::follow_tokens(client, writer, &changed).await }
    };
    let api: Api<Secret> = Api::namespaced(client, bootstrap_token::NAMESPACE);
    let clean = async {
        let _ = tokens.wait_until_ready().await;
        loop {
            let now = k8s_openapi::jiff::Timestamp::now();
            let state = tokens.state();
            for secret in state
                .iter()
                .filter(|s| s.metadata.deletion_timestamp.is_none())
                .filter(|s| bootstrap_token::has_expired(s, now))
            {
                let name = secret.metadata.name.clone().unwrap_or_default();
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: secret.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&name, &params).await {
                    Ok(_) => tracing::info!(secret = %name, "deleted expired bootstrap token"),
                    Err(e) => {
                        tracing::debug!(secret = %name, error = %e, "deleting bootstrap token")
                    }
                }
            }
            let wait = next_expiry(&state, now)
                .and_then(|at| Duration::try_from(at.duration_since(now)).ok())
                .map_or(MAX_WAIT, |d| d.min(MAX_WAIT));
            let _ = tokio::time::timeout(wait, changed.notified()).await;
        }
    };
    tokio::select! {
        () = follow => Err(Error::WatchEnded("bootstrap token")),
        () = clean => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn expiring(at: &str) -> Arc<Secret> {
        Arc::new(Secret {
            data: Some([("expiration".to_string(), ByteString(at.as_bytes().to_vec()))].into()),
            ..Secret::default()
        })
    }

    #[test]
    fn waits_for_the_next_expiry_only() {
        let now: k8s_openapi::jiff::Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        let tokens = [
            expiring("2026-12-06T00:00:00Z"),
            expiring("2026-12-07T00:00:30Z"),
            expiring("2026-12-07T01:00:00Z"),
            expiring("garbage"),
        ];
        assert_eq!(
            next_expiry(&tokens, now),
            Some("2026-12-07T00:00:30Z".parse().unwrap())
        );
        assert_eq!(next_expiry(&tokens[..1], now), None);
    }
}
