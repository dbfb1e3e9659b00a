//! `pernode`: the Kubernetes DaemonSet as a small control plane. A thin binary over the
//! workspace crates; each subcommand lives in its own module.

mod agent;
mod bench;
mod certificates;
mod cluster_info;
mod control_plane;
mod controller_metrics;
mod failover;
mod kubeconfig;
mod leader_elect;
mod plugin;
mod store;
mod token;
mod up;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than glibc's malloc: every request, watch event and controller cache entry is
/// many small JSON and k8s-openapi allocations freed on other threads, and under glibc the
/// allocator itself (`_int_malloc`, `malloc_consolidate`, `free`) took about 45% of the CPU
/// of a 10,000-node converge.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pernode",
    version,
    about = "One daemon on every node that should run one: the Kubernetes DaemonSet, as a small fast control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// API server, controllers and simulated nodes in one process; writes a kubeconfig.
    Up(up::UpArgs),
    /// The API server alone, on the embedded store or etcd (`--store etcd://...`).
    Apiserver(up::ApiserverArgs),
    /// The controllers alone (daemon sets, scheduler, garbage collector, namespaces, service
    /// accounts, ...) against a cluster.
    Controllers(control_plane::ControllersArgs),
    /// The fleet simulator alone: runs the simulated nodes of a cluster.
    Sim(control_plane::SimArgs),
    /// The node agent: registers this host as a Node and runs its pods as host processes.
    Agent(agent::AgentArgs),
    /// Measure the control plane on a temporary cluster and print a table.
    Bench(bench::BenchArgs),
    /// Bootstrap tokens for joining nodes (`token create`, as kubeadm's).
    Token(token::TokenArgs),
    /// Install the kubectl plugin: a `kubectl-pernode` symlink to this binary in DIR, so that
    /// `kubectl pernode pause|resume ds/x` runs it.
    InstallPlugin(plugin::InstallPluginArgs),
    /// What applying a DaemonSet would do (`kubectl pernode whatif`), predicted on a
    /// simulated copy of the cluster; the live cluster is only read.
    Whatif(plugin::whatif::WhatifCommand),
}

fn main() -> anyhow::Result<()> {
    // Quiet by default; RUST_LOG=pernode=debug (or info) for more.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Started as `kubectl-pernode` (by kubectl): the plugin's verbs, not pernode's commands.
    if plugin::invoked_as_plugin(std::env::args_os().next().as_deref()) {
        let cli = plugin::PluginCli::parse();
        // Multi-threaded: `whatif` runs a simulated cluster in this process.
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(plugin::plugin(cli));
    }
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Agent(_)) {
        disable_transparent_huge_pages();
        pernode_apiserver::serving::raise_open_file_limit();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Up(args) => up::up(args).await,
            Command::Apiserver(args) => up::apiserver(args).await,
            Command::Controllers(args) => control_plane::controllers(args).await,
            Command::Sim(args) => control_plane::sim(args).await,
            Command::Bench(args) => bench::bench(args).await,
            Command::Agent(args) => agent::agent(args).await,
            Command::Token(args) => token::token(args).await,
            Command::InstallPlugin(args) => plugin::install_plugin(args),
            Command::Whatif(cmd) => plugin::whatif_command(cmd).await,
        }
    })
}

/// Control-plane processes run without transparent huge pages. mimalloc asks for them on its
/// arenas, and with many short-lived allocations the kernel kept zeroing fresh 2 MiB pages:
/// `clear_page_erms` was 9-12% of all CPU in a 10,000-node converge, and gone without THP.
/// Not for `pernode agent`: the flag is inherited by the daemons it starts.
fn disable_transparent_huge_pages() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "could not disable transparent huge pages");
    }
}
