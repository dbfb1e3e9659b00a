//! `kubectl pernode pause|resume ds/x`: sets or removes `pernode.io/paused` with a merge patch
//! of the DaemonSet's annotations, and prints as `kubectl rollout pause|resume` does for a
//! Deployment (`daemonset.apps/x paused`, `... already paused`). Resume also clears a tripped
//! health gate (`pernode.io/health-gate-tripped`), and says so.

use clap::Args;
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::api::{Api, Patch, PatchParams};
use pernode_core::rollout::{
    HEALTH_GATE_TRIPPED_ANNOTATION, PAUSED_ANNOTATION, RolloutControls, tripped_revision,
};

use super::ClientArgs;

#[derive(Args, Debug)]
pub struct TargetArgs {
    /// The DaemonSet: `ds/NAME` (or `NAME`).
    pub daemonset: String,
}

/// Pauses (`paused`) or resumes the DaemonSet's rollout.
pub async fn set_paused(
    client_args: &ClientArgs,
    args: &TargetArgs,
    paused: bool,
) -> anyhow::Result<()> {
    let name = super::target::daemonset_name(&args.daemonset).map_err(anyhow::Error::msg)?;
    let (client, namespace) = super::client(client_args).await?;
    let api: Api<DaemonSet> = Api::namespaced(client, &namespace);
    let ds = api.get(name).await?;
    let (done, already) = if paused {
        ("paused", "already paused")
    } else {
        ("resumed", "already resumed")
    };
    let annotations = ds.metadata.annotations.as_ref();
    let tripped = tripped_revision(annotations)
        .filter(|_| !paused)
        .map(str::to_owned);
    if RolloutControls::of(annotations).paused == paused && tripped.is_none() {
        println!("daemonset.apps/{name} {already}");
        return Ok(());
    }
    let value = if paused {
        serde_json::Value::from("true")
    } else {
        serde_json::Value::Null
    };
    let mut patch = serde_json::json!({"metadata": {"annotations": {PAUSED_ANNOTATION: value}}});
    if tripped.is_some() {
        patch["metadata"]["annotations"][HEALTH_GATE_TRIPPED_ANNOTATION] = serde_json::Value::Null;
    }
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    match tripped {
        Some(hash) => println!(
            "daemonset.apps/{name} {done}; health gate cleared (it had stopped revision {hash})"
        ),
        None => println!("daemonset.apps/{name} {done}"),
    }
    Ok(())
}
