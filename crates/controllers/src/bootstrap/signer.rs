//! The bootstrap signer (upstream's bootstrapsigner.go): `kube-public/cluster-info` carries
//! `jws-kubeconfig-<id>`, the detached JWS of its `kubeconfig` by each bootstrap token that is
//! valid for signing, and no other signatures; it is re-signed whenever the ConfigMap or a
//! token changes, and once a minute for tokens that expired meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use pernode_auth::{bootstrap_token, discovery};
use tokio::sync::Notify;

use super::Error;

/// How often tokens are looked at again without a change (expirations).
const RESYNC: Duration = Duration::from_secs(60);

/// The data `cm` should hold given `tokens`, or `None` when it already does (or has no
/// `kubeconfig` to sign).
pub fn signed_data(
    cm: &ConfigMap,
    tokens: &[Arc<Secret>],
    now: k8s_openapi::jiff::Timestamp,
) -> Option<BTreeMap<String, String>> {
    let data = cm.data.clone().unwrap_or_default();
    let content = data.get(discovery::KUBECONFIG_KEY)?;
    let mut want: BTreeMap<String, String> = data
        .iter()
        .filter(|(k, _)| !k.starts_with(discovery::JWS_KEY_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for secret in tokens {
        if let Some((id, token_secret)) = bootstrap_token::signing_token(secret, now) {
            want.insert(
                discovery::jws_key(&id),
                discovery::detached_signature(content, &id, &token_secret),
            );
        }
    }
    (want != data).then_some(want)
}

/// Runs the signer until a watch ends.
pub async fn run(client: kube::Client) -> Result<(), Error> {
    let changed = Arc::new(Notify::new());
    let (tokens, token_writer) = super::token_store();
    let (maps, map_writer) = reflector::store::<ConfigMap>();
    let follow_tokens = {
        let (client, changed) = (client.clone(), changed.clone());
        async move { super::follow_tokens(client, token_writer, &changed).await }
    };
    let follow_map = {
        let (client, changed) = (client.clone(), changed.clone());
        async move {
            let api: Api<ConfigMap> = Api::namespaced(client, discovery::NAMESPACE);
            let config = watcher::Config::default()
                .fields(&format!("metadata.name={}", discovery::CONFIG_MAP));
            let stream = watcher(api, config).default_backoff().reflect(map_writer);
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                if event.is_ok() {
                    changed.notify_one();
                }
            }
        }
    };
    tokio::select! {
        () = follow_tokens => Err(Error::WatchEnded("bootstrap token")),
        () = follow_map => Err(Error::WatchEnded("cluster-info")),
        r = sign_loop(client, tokens, maps, &changed) => r,
    }
}

async fn sign_loop(
    client: kube::Client,
    tokens: Store<Secret>,
    maps: Store<ConfigMap>,
    changed: &Notify,
) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(client, discovery::NAMESPACE);
    let _ = tokio::join!(tokens.wait_until_ready(), maps.wait_until_ready());
    loop {
        if let Err(e) = sign_once(&api, &tokens, &maps).await {
            // A conflict or a transient failure: the next change or resync retries.
            tracing::debug!(error = %e, "signing cluster-info");
        }
        let _ = tokio::time::timeout(RESYNC, changed.notified()).await;
    }
}

async fn sign_once(
    api: &Api<ConfigMap>,
    tokens: &Store<Secret>,
    maps: &Store<ConfigMap>,
) -> Result<(), kube::Error> {
    let Some(cm) = maps.state().into_iter().next() else {
        return Ok(());
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let Some(data) = signed_data(&cm, &tokens.state(), now) else {
        return Ok(());
    };
    let mut updated = (*cm).clone();
    updated.data = Some(data);
    api.replace(discovery::CONFIG_MAP, &PostParams::default(), &updated)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, signing: bool) -> Arc<Secret> {
        use k8s_openapi::ByteString;
        let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
        let mut secret = Secret {
            type_: Some(bootstrap_token::SECRET_TYPE.into()),
            data: Some(
                [
                    ("token-id".to_string(), bytes(id)),
                    ("token-secret".to_string(), bytes("0123456789abcdef")),
                    (
                        "usage-bootstrap-signing".to_string(),
                        bytes(if signing { "true" } else { "false" }),
                    ),
                ]
                .into(),
            ),
            ..Secret::default()
        };
        secret.metadata.name = Some(bootstrap_token::secret_name(id));
        Arc::new(secret)
    }

    fn cluster_info(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn signs_with_signing_tokens_and_drops_stale_signatures() {
        let now = k8s_openapi::jiff::Timestamp::now();
        let cm = cluster_info(&[("kubeconfig", "K"), ("jws-kubeconfig-gone00", "old")]);
        let data = signed_data(&cm, &[token("abcdef", true), token("zzzzzz", false)], now)
            .expect("a change");
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            ["jws-kubeconfig-abcdef", "kubeconfig"]
        );
        assert!(discovery::signature_is_valid(
            &data["jws-kubeconfig-abcdef"],
            "K",
            "abcdef",
            "0123456789abcdef"
        ));
        let signed = cluster_info(
            &data
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(signed_data(&signed, &[token("abcdef", true)], now), None);
        assert_eq!(
            signed_data(
                &cluster_info(&[("other", "x")]),
                &[token("abcdef", true)],
                now
            ),
            None
        );
    }
}
