//! Runs the control loops and the fleet simulator as API clients, in-process for `pernode up`
//! or against any server for `pernode controllers` / `pernode sim`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tokio::task::JoinSet;

#[derive(Args, Debug)]
pub struct ControllersArgs {
    /// The cluster to control.
    #[arg(long)]
    pub kubeconfig: PathBuf,
}

#[derive(Args, Debug)]
pub struct SimArgs {
    /// The cluster whose simulated nodes to run.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Simulated nodes to create (node-1..node-N) before running them; 0 runs existing ones.
    #[arg(long, default_value_t = 0)]
    pub nodes: usize,
}

/// A kube client from a kubeconfig file.
pub async fn client_from(path: &PathBuf) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("using {}", path.display()))?;
    Ok(kube::Client::try_from(config)?)
}

/// The controllers: daemon sets, scheduler, garbage collector, pod GC. Each runs until it fails.
pub fn spawn_controllers(tasks: &mut JoinSet<anyhow::Result<()>>, client: &kube::Client) {
    use pernode_controllers::{daemonset, garbage_collector, pod_gc, scheduler};
    let c = client.clone();
    tasks.spawn(async move {
        daemonset::run(c, Default::default())
            .await
            .context("daemonset controller")
    });
    let c = client.clone();
    tasks.spawn(async move {
        scheduler::run(c, Default::default())
            .await
            .context("scheduler")
    });
    let c = client.clone();
    tasks.spawn(async move {
        garbage_collector::run(c, Default::default())
            .await
            .context("garbage collector")
    });
    let c = client.clone();
    tasks.spawn(async move {
        pod_gc::run(c, Default::default())
            .await
            .context("pod garbage collector")
    });
}

/// The fleet simulator for every node annotated `pernode.io/simulated: "true"`.
pub fn spawn_simulator(tasks: &mut JoinSet<anyhow::Result<()>>, client: &kube::Client) {
    let c = client.clone();
    tasks.spawn(async move {
        pernode_agent::simulator::run(c, Default::default())
            .await
            .context("simulator")
    });
}

/// Waits for the first task to end (which is an error: they run forever) or for `shutdown`.
pub async fn run_until(
    mut tasks: JoinSet<anyhow::Result<()>>,
    shutdown: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        r = shutdown => r,
        Some(done) = tasks.join_next() => {
            match done {
                Ok(Ok(())) => anyhow::bail!("a control loop stopped unexpectedly"),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e).context("a control loop panicked"),
            }
        }
    }
}

pub async fn controllers(args: ControllersArgs) -> anyhow::Result<()> {
    let client = client_from(&args.kubeconfig).await?;
    let mut tasks = JoinSet::new();
    spawn_controllers(&mut tasks, &client);
    run_until(tasks, crate::up::shutdown_signal()).await
}

pub async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let client = client_from(&args.kubeconfig).await?;
    pernode_agent::simulator::create_nodes(client.clone(), args.nodes, "node")
        .await
        .context("creating simulated nodes")?;
    let mut tasks = JoinSet::new();
    spawn_simulator(&mut tasks, &client);
    run_until(tasks, crate::up::shutdown_signal()).await
}
