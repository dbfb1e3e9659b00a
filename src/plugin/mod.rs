//! `kubectl pernode`: the same binary answers as the kubectl plugin `kubectl-pernode` when it
//! is invoked under that name (`argv[0]`, as kubectl runs a plugin found on the PATH), and
//! `pernode install-plugin DIR` puts that name on the PATH as a symlink.
//!
//! Every verb writes plain API objects (annotations on the DaemonSet) with the user's
//! kubeconfig (`KUBECONFIG`, `~/.kube/config`, or the `--kubeconfig`/`--context`/`-n` kubectl
//! passes on after the plugin's name), so the same control is available from YAML and GitOps.
//! `why` and `whatif` only read.

mod pause;
mod target;
pub mod whatif;
mod why;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

/// The file name kubectl looks for on the PATH for `kubectl pernode`.
pub const PLUGIN_NAME: &str = "kubectl-pernode";

/// Whether the process was started as `kubectl-pernode` (by kubectl, or directly).
pub fn invoked_as_plugin(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|name| name == PLUGIN_NAME)
}

#[derive(Parser)]
#[command(
    name = "kubectl pernode",
    about = "pernode's rollout controls for DaemonSets, as kubectl verbs"
)]
pub struct PluginCli {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub verb: Verb,
}

/// The kubectl flags a plugin is handed (kubectl passes every argument after the plugin's name).
#[derive(Args, Clone, Debug, Default)]
pub struct ClientArgs {
    /// Path to the kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The namespace (default: the context's).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
}

#[derive(Subcommand)]
pub enum Verb {
    /// Pause a DaemonSet's rollout: no more pods are replaced (`pernode.io/paused: "true"`).
    Pause(pause::TargetArgs),
    /// Resume a paused rollout, or one the health gate stopped (removes `pernode.io/paused` and
    /// `pernode.io/health-gate-tripped`).
    Resume(pause::TargetArgs),
    /// Why a node has (or has not) the DaemonSet's pod: each placement rule with its verdict,
    /// the scheduler's, the node's state and the rollout's.
    Why(why::WhyArgs),
    /// What applying a DaemonSet would do, predicted on a simulated copy of the cluster:
    /// nodes that change, nodes that block and why, time, peak unavailable, waves. Reads the
    /// live cluster only.
    Whatif(whatif::WhatifArgs),
}

/// Runs one verb; errors are printed as kubectl prints them and end the process with 1.
pub async fn plugin(cli: PluginCli) -> anyhow::Result<()> {
    let result = match cli.verb {
        Verb::Pause(args) => pause::set_paused(&cli.client, &args, true).await,
        Verb::Resume(args) => pause::set_paused(&cli.client, &args, false).await,
        Verb::Why(args) => why::why(&cli.client, &args).await,
        Verb::Whatif(args) => whatif::whatif(&cli.client, &args).await,
    };
    report(result);
    Ok(())
}

/// `pernode whatif`: the plugin's verb under pernode's own commands.
pub async fn whatif_command(cmd: whatif::WhatifCommand) -> anyhow::Result<()> {
    report(whatif::whatif(&cmd.client, &cmd.args).await);
    Ok(())
}

/// Prints an error as kubectl does and ends the process with 1.
fn report(result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("{}", kubectl_error(&e));
        std::process::exit(1);
    }
}

/// An error as kubectl prints it: a server's Status as `Error from server (Reason): message`,
/// anything else as `error: ...`.
fn kubectl_error(e: &anyhow::Error) -> String {
    match e.downcast_ref::<kube::Error>() {
        Some(kube::Error::Api(status)) => {
            format!("Error from server ({}): {}", status.reason, status.message)
        }
        _ => format!("error: {e:#}"),
    }
}

/// A client for the user's kubeconfig and the namespace to work in.
pub async fn client(args: &ClientArgs) -> anyhow::Result<(kube::Client, String)> {
    let options = kube::config::KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .with_context(|| format!("using {}", path.display()))?
        }
        None => kube::Config::from_kubeconfig(&options)
            .await
            .context("reading the kubeconfig (KUBECONFIG or ~/.kube/config)")?,
    };
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((kube::Client::try_from(config)?, namespace))
}

/// `pernode install-plugin DIR`.
#[derive(Args, Debug)]
pub struct InstallPluginArgs {
    /// A folder on the PATH (created if missing).
    pub dir: PathBuf,
}

/// Makes `DIR/kubectl-pernode` a symlink to this binary (replacing an older one), so that
/// `kubectl pernode` runs it.
pub fn install_plugin(args: InstallPluginArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding this binary")?;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let link = args.dir.join(PLUGIN_NAME);
    match std::fs::symlink_metadata(&link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::remove_file(&link).with_context(|| format!("replacing {}", link.display()))?
        }
        Ok(_) => anyhow::bail!(
            "{} exists and is not a symlink; not replacing it",
            link.display()
        ),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&exe, &link)
        .with_context(|| format!("linking {} to {}", link.display(), exe.display()))?;
    println!("{} -> {}", link.display(), exe.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_name_is_read_from_argv0() {
        let yes = |a: &str| invoked_as_plugin(Some(std::ffi::OsStr::new(a)));
        assert!(yes("kubectl-pernode"));
        assert!(yes("/usr/local/bin/kubectl-pernode"));
        assert!(!yes("pernode"));
        assert!(!yes("/x/kubectl-pernode/pernode"));
        assert!(!invoked_as_plugin(None));
    }
}
