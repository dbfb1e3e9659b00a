//! `pernode token create`: a bootstrap token for joining a node, as `kubeadm token create`:
//! the Secret `kube-system/bootstrap-token-<id>` (type `bootstrap.kubernetes.io/token`, usable
//! for authentication and signing, expiring after `--ttl`), and `<id>.<secret>` printed.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use pernode_auth::bootstrap_token as bt;

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a bootstrap token and print it.
    Create(CreateArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The cluster to create it in.
    #[arg(long, default_value = "./.pernode/kubeconfig")]
    pub kubeconfig: PathBuf,
    /// How long the token stays valid (kubeadm's default, 24h).
    #[arg(long, default_value = "24h", value_parser = crate::control_plane::parse_duration)]
    pub ttl: Duration,
    /// Extra groups for the token's user (each `system:bootstrappers:...`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = bt::DEFAULT_NODE_TOKEN_GROUP
    )]
    pub groups: Vec<String>,
    /// Print the `pernode agent` command that joins a node with the token (kubeadm's flag):
    /// the server and the CA pin from the kubeconfig.
    #[arg(long)]
    pub print_join_command: bool,
}

/// A random string of `len` characters of `[a-z0-9]`, as kubeadm's token generator.
fn random_part(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The Secret of token `<id>.<secret>`, expiring at `expiration`.
fn secret(id: &str, secret: &str, expiration: &str, groups: &[String]) -> anyhow::Result<Secret> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": bt::secret_name(id), "namespace": bt::NAMESPACE},
        "type": bt::SECRET_TYPE,
        "stringData": {
            "token-id": id,
            "token-secret": secret,
            "expiration": expiration,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": groups.join(","),
        },
    }))?)
}

pub async fn token(args: TokenArgs) -> anyhow::Result<()> {
    match args.command {
        TokenCommand::Create(args) => {
            let client = crate::control_plane::client_from(&args.kubeconfig).await?;
            let (id, token_secret) = (random_part(6), random_part(16));
            let ttl = k8s_openapi::jiff::SignedDuration::try_from(args.ttl)?;
            let expiration = k8s_openapi::jiff::Timestamp::now()
                .checked_add(ttl)
                .context("--ttl is too long")?
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            let api: Api<Secret> = Api::namespaced(client, bt::NAMESPACE);
            api.create(
                &PostParams::default(),
                &secret(&id, &token_secret, &expiration, &args.groups)?,
            )
            .await
            .context("creating the bootstrap token's Secret")?;
            let token = format!("{id}.{token_secret}");
            if args.print_join_command {
                println!("{}", join_command(&args.kubeconfig, &token).await?);
            } else {
                println!("{token}");
            }
            Ok(())
        }
    }
}

/// `pernode agent --server URL --token TOKEN --ca-cert-hash sha256:...` for the cluster of
/// `kubeconfig`.
async fn join_command(kubeconfig: &std::path::Path, token: &str) -> anyhow::Result<String> {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig)
            .with_context(|| format!("reading {}", kubeconfig.display()))?,
        &Default::default(),
    )
    .await
    .with_context(|| format!("using {}", kubeconfig.display()))?;
    let ca = config
        .root_cert
        .as_ref()
        .and_then(|certs| certs.first())
        .context("the kubeconfig names no certificate authority to pin")?;
    let hash = pernode_auth::discovery::ca_cert_hash_of_der(ca)?;
    let server = config.cluster_url.to_string();
    Ok(format!(
        "pernode agent --server {} --token {token} --ca-cert-hash {hash}",
        server.trim_end_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_have_the_bootstrap_shape() {
        let token = format!("{}.{}", random_part(6), random_part(16));
        assert!(bt::parse(&token).is_some(), "{token}");
        let s = secret(
            "abcdef",
            "0123456789abcdef",
            "2030-01-01T00:00:00Z",
            &["system:bootstrappers:x".into()],
        )
        .unwrap();
        assert_eq!(s.metadata.name.as_deref(), Some("bootstrap-token-abcdef"));
        let data = s.string_data.unwrap();
        assert_eq!(data["usage-bootstrap-authentication"], "true");
        assert_eq!(data["auth-extra-groups"], "system:bootstrappers:x");
    }
}
