//! Token discovery, as kubeadm's `discovery/token`: the joining node reads
//! `kube-public/cluster-info` without trusting the server yet, accepts its CA only if the
//! ConfigMap carries a valid signature by the node's bootstrap token (the server knows the
//! token) and the CA matches one of the given pins (the CA is the one the admin meant), then
//! reads it again over TLS verified by that CA and checks nothing changed.

use base64::Engine;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use pernode_auth::discovery;

use super::JoinError;
use super::credentials::{self, Auth};

/// The CA (PEM) of the cluster at `server`, verified as above (`pins` empty: the signature
/// alone, kubeadm's unsafe mode).
pub async fn discover(
    server: &str,
    token_id: &str,
    token_secret: &str,
    pins: &[String],
) -> Result<String, JoinError> {
    let insecure = credentials::client(server, "", Auth::InsecureAnonymous).await?;
    let unverified = fetch(insecure).await?;
    let ca_pem = check(&unverified, token_id, token_secret, pins)?;
    // Again over verified TLS: what we trust must be what the CA's holder serves.
    let verified = fetch(credentials::client(server, &ca_pem, Auth::Anonymous).await?).await?;
    if verified.data != unverified.data {
        return Err(JoinError::Discovery(
            "cluster-info changed between the unverified and the verified read".into(),
        ));
    }
    Ok(ca_pem)
}

async fn fetch(client: kube::Client) -> Result<ConfigMap, JoinError> {
    let api: Api<ConfigMap> = Api::namespaced(client, discovery::NAMESPACE);
    api.get(discovery::CONFIG_MAP).await.map_err(|e| {
        JoinError::Discovery(format!(
            "reading {}/{}: {e}",
            discovery::NAMESPACE,
            discovery::CONFIG_MAP
        ))
    })
}

/// The CA of `cm` if its signature by the token and its pin check out.
pub fn check(
    cm: &ConfigMap,
    token_id: &str,
    token_secret: &str,
    pins: &[String],
) -> Result<String, JoinError> {
    let fail = |m: String| Err(JoinError::Discovery(m));
    let data = cm.data.clone().unwrap_or_default();
    let Some(content) = data.get(discovery::KUBECONFIG_KEY) else {
        return fail("cluster-info has no kubeconfig".into());
    };
    let Some(jws) = data.get(&discovery::jws_key(token_id)) else {
        return fail(format!(
            "there is no JWS signed token in the cluster-info ConfigMap for token ID {token_id:?} (has the token expired, or was it never created?)"
        ));
    };
    if !discovery::signature_is_valid(jws, content, token_id, token_secret) {
        return fail(format!(
            "failed to verify JWS signature of received cluster info object, can't trust this API Server (token ID {token_id:?})"
        ));
    }
    let config = kube::config::Kubeconfig::from_yaml(content)
        .map_err(|e| JoinError::Discovery(format!("cluster-info's kubeconfig: {e}")))?;
    let Some(ca_b64) = config
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
    else {
        return fail("cluster-info's kubeconfig names no certificate authority".into());
    };
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca_b64.trim())
        .map_err(|e| JoinError::Discovery(format!("cluster-info's CA: {e}")))?;
    let ca_pem = String::from_utf8(ca)
        .map_err(|_| JoinError::Discovery("cluster-info's CA is not PEM".into()))?;
    if !pins.is_empty() {
        let matched = discovery::ca_matches(&ca_pem, pins)
            .map_err(|e| JoinError::Discovery(e.to_string()))?;
        if !matched {
            let actual = discovery::ca_cert_hash(&ca_pem).unwrap_or_default();
            return fail(format!(
                "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"{actual}\" are pinned"
            ));
        }
    }
    Ok(ca_pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "abcdef";
    const SECRET: &str = "0123456789abcdef";

    fn cluster_info(ca_pem: &str, signed_by: &str) -> ConfigMap {
        let content = format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://127.0.0.1:6443\n  name: \"\"\nkind: Config\n",
            base64::engine::general_purpose::STANDARD.encode(ca_pem)
        );
        let jws = discovery::detached_signature(&content, ID, signed_by);
        ConfigMap {
            data: Some(
                [
                    ("kubeconfig".to_string(), content),
                    (discovery::jws_key(ID), jws),
                ]
                .into(),
            ),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn a_signed_pinned_ca_is_trusted() {
        let ca = pernode_auth::pki::ClusterCa::generate().expect("ca");
        let pin = discovery::ca_cert_hash(&ca.cert_pem).expect("pin");
        let got = check(&cluster_info(&ca.cert_pem, SECRET), ID, SECRET, &[pin]).expect("trusted");
        assert_eq!(got, ca.cert_pem);
    }

    #[test]
    fn a_wrong_signature_or_pin_is_refused() {
        let ca = pernode_auth::pki::ClusterCa::generate().expect("ca");
        let other = pernode_auth::pki::ClusterCa::generate().expect("ca");
        let pin = discovery::ca_cert_hash(&ca.cert_pem).expect("pin");
        let forged = check(
            &cluster_info(&ca.cert_pem, "ffffffffffffffff"),
            ID,
            SECRET,
            std::slice::from_ref(&pin),
        );
        assert!(
            forged
                .unwrap_err()
                .to_string()
                .contains("failed to verify JWS signature"),
        );
        let swapped = check(&cluster_info(&other.cert_pem, SECRET), ID, SECRET, &[pin]);
        assert!(swapped.unwrap_err().to_string().contains("are pinned"));
        let unsigned = check(&cluster_info(&ca.cert_pem, SECRET), "zzzzzz", SECRET, &[]);
        assert!(
            unsigned
                .unwrap_err()
                .to_string()
                .contains("no JWS signed token")
        );
    }
}
