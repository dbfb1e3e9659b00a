//! The `kube-public/cluster-info` ConfigMap, as `kubeadm init` publishes it: a kubeconfig
//! naming the server and its CA, no credentials. Joining agents read it anonymously and
//! trust it once its CA matches their `--ca-cert-hash` and its signature by their bootstrap
//! token (the bootstrap signer's `jws-kubeconfig-<id>`) checks out.

use std::net::SocketAddr;

use anyhow::Context;
use base64::Engine;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use pernode_auth::discovery;

/// The published kubeconfig: one unnamed cluster, as kubeadm's.
pub fn render(server: SocketAddr, ca_pem: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://{}\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {{}}\nusers: null\n",
        crate::kubeconfig::reachable(server),
    )
}

/// Creates the ConfigMap, or points it at `server` and `ca_pem` if it names others (a new
/// port, a replaced CA); the bootstrap signer signs what changed.
pub async fn publish(client: kube::Client, server: SocketAddr, ca_pem: &str) -> anyhow::Result<()> {
    let api: Api<ConfigMap> = Api::namespaced(client, discovery::NAMESPACE);
    let kubeconfig = render(server, ca_pem);
    let existing = api
        .get_opt(discovery::CONFIG_MAP)
        .await
        .context("reading kube-public/cluster-info")?;
    match existing {
        None => {
            let cm: ConfigMap = serde_json::from_value(serde_json::json!({
                "metadata": {"name": discovery::CONFIG_MAP, "namespace": discovery::NAMESPACE},
                "data": {discovery::KUBECONFIG_KEY: kubeconfig},
            }))?;
            match api.create(&PostParams::default(), &cm).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e).context("creating kube-public/cluster-info"),
            }
        }
        Some(cm) => {
            let current = cm
                .data
                .as_ref()
                .and_then(|d| d.get(discovery::KUBECONFIG_KEY));
            if current != Some(&kubeconfig) {
                let patch = serde_json::json!({"data": {discovery::KUBECONFIG_KEY: kubeconfig}});
                api.patch(
                    discovery::CONFIG_MAP,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .context("updating kube-public/cluster-info")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_kubeconfig_has_no_credentials() {
        let text = render("0.0.0.0:6443".parse().expect("addr"), "CA");
        let config: kube::config::Kubeconfig = serde_saphyr::from_str(&text).expect("kubeconfig");
        assert_eq!(config.clusters.len(), 1);
        let cluster = config.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode("CA")
                    .as_str()
            )
        );
        assert!(config.auth_infos.is_empty());
    }
}
