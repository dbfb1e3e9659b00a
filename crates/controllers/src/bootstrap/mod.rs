//! The controllers of bootstrap tokens, as upstream's pkg/controller/bootstrap: the
//! [`signer`] signs `kube-public/cluster-info` with every signing-enabled token (so a joining
//! node can check the ConfigMap came from a server that knows its token), and the
//! [`cleaner`] deletes token Secrets once they expire.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::bootstrap::Error> {
//! tokio::try_join!(
//!     pernode_controllers::bootstrap::signer::run(client.clone()),
//!     pernode_controllers::bootstrap::cleaner::run(client),
//! )?;
//! # Ok(()) }
//! ```

pub mod cleaner;
pub mod signer;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use pernode_auth::bootstrap_token;
use tokio::sync::Notify;

/// Errors of the bootstrap controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0} watch ended")]
    WatchEnded(&'static str),
}

/// Follows the bootstrap token Secrets in `kube-system` into a reflector store, notifying
/// `changed` after every change; returns only when the watch ends.
async fn follow_tokens(
    client: kube::Client,
    writer: reflector::store::Writer<Secret>,
    changed: &Notify,
) {
    let api: Api<Secret> = Api::namespaced(client, bootstrap_token::NAMESPACE);
    let config =
        watcher::Config::default().fields(&format!("type={}", bootstrap_token::SECRET_TYPE));
    let stream = watcher(api, config).default_backoff().reflect(writer);
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        if let Err(e) = event {
            tracing::debug!(error = %e, "bootstrap token watch");
            continue;
        }
        changed.notify_one();
    }
}

/// A reflector store of the token Secrets and its writer.
fn token_store() -> (Store<Secret>, reflector::store::Writer<Secret>) {
    reflector::store()
}
