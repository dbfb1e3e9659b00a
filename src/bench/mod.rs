//! `pernode bench`: measures the control plane the way users meet it. For each `--nodes` count
//! it starts its own in-process cluster (API server on a temporary data dir with the real
//! SQLite store, the controllers, and the fleet simulator with a start delay of 0, exactly as
//! `pernode up` wires them) or connects to a running one (`--kubeconfig`), drives it over
//! loopback HTTP through a kube::Client like a user, and prints a table.
//!
//! With `--store etcd://...` (and kube-apiserver's etcd flags, as `pernode apiserver`) the
//! in-process cluster and the store limit run on that etcd instead, each round under a key
//! prefix of its own (`/pernode-bench/<run>/...`), so rounds never see each other's objects.
//!
//! Scenarios (`--only`):
//! - `store`: the machine's limit, durable commits of the store alone, one write per commit and
//!   batched; every other scenario is compared with it ([`store`]);
//! - `converge`, `rollout`, `nodechurn`: a daemon set on the simulated fleet ([`daemonset`]);
//! - `create`, `list`, `watch`: pods through the API, lists as JSON and Table, watch fan-out
//!   ([`api`]);
//! - `loginflood`: an authorised GET's latency alone and while two dozen clients fail to
//!   log in as fast as they can ([`login_flood`]);
//! - `slowclients`: the same GET's latency while 500 connections dribble a TLS record and
//!   2,000 sit idle for 30 s ([`slow_clients`]; not in the default);
//! - `memory`: `pernode up --nodes N` as a child process, its own peak RSS and CPU until every
//!   node is Ready and then until a daemon set is available on every node ([`memory`]).
//!
//! Each figure carries the wall time, API requests served, store commits and writes, the
//! store's time for the same number of writes (and the ratio), the peak RSS of the whole
//! process during the phase and its CPU seconds.

mod api;
mod cluster;
mod daemonset;
mod login_flood;
mod memory;
mod report;
mod slow_clients;
mod store;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

pub use report::Figure;

use cluster::Cluster;

/// Every scenario, in the order they run.
pub const SCENARIOS: &[&str] = &[
    "store",
    "converge",
    "rollout",
    "nodechurn",
    "list",
    "create",
    "watch",
    "loginflood",
    "slowclients",
    "memory",
];

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Fleet sizes, comma-separated: one cluster (and one run of every scenario) per size.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub nodes: Vec<usize>,
    /// Scenarios to run, comma-separated: store,converge,rollout,nodechurn,list,create,watch,
    /// loginflood,slowclients,memory (slowclients and memory are not in the default: one holds
    /// 2,500 connections for 30 s, the other starts `pernode up` as a child process).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "store,converge,rollout,nodechurn,list,create,watch,loginflood"
    )]
    pub only: Vec<String>,
    /// Concurrent watchers in the watch scenario.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Events (pod creations) each watcher receives; also the pods of the create scenario.
    #[arg(long, default_value_t = 10_000)]
    pub events: usize,
    /// Runs of each list for the percentiles.
    #[arg(long, default_value_t = 50)]
    pub list_runs: usize,
    /// Measure the cluster of this kubeconfig instead of starting one (it must run the
    /// controllers and the simulator, as `pernode up` does). API requests and store commits
    /// are then unknown; RSS and CPU are this process's.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Rounds of every scenario per fleet size, each on a fresh cluster; with more than one,
    /// the table and the JSON end with each figure's median over the rounds.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub runs: u64,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The store of the in-process cluster and of the store limit (default: SQLite).
    #[command(flatten)]
    pub store: crate::store::StoreArgs,
}

impl BenchArgs {
    fn wants(&self, scenario: &str) -> bool {
        self.only.iter().any(|o| o == scenario)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.max(1))
    }
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    for o in &args.only {
        if !SCENARIOS.contains(&o.as_str()) {
            bail!("unknown scenario {o:?}; known: {}", SCENARIOS.join(","));
        }
    }
    if args.nodes.is_empty() || args.nodes.contains(&0) {
        bail!("--nodes needs at least one count above 0");
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut figures: Vec<Figure> = Vec::new();
    for (size, &nodes) in args.nodes.iter().enumerate() {
        for run in 1..=args.runs as usize {
            let first = figures.len();
            let round = format!("{size}-{run}");
            bench_round(&args, nodes, &round, &mut figures).await?;
            for f in &mut figures[first..] {
                f.run = run;
            }
        }
    }
    report::print_table(&figures);
    let medians = report::medians(&figures);
    if !medians.is_empty() {
        println!("\nmedians of {} runs:", args.runs);
        report::print_table(&medians);
    }
    if let Some(path) = &args.json {
        let doc = report::document(&command, &figures, &medians);
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Every wanted scenario once at one fleet size, on a cluster of its own.
async fn bench_round(
    args: &BenchArgs,
    nodes: usize,
    round: &str,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let run = format!("r{}-{round}", std::process::id());
    // The store's limit comes first: every other figure is set beside it.
    let limit = store::limit(nodes, &on_etcd(&args.store, &format!("{run}/limit")))
        .await
        .context("store limit")?;
    if args.wants("store") {
        figures.extend(limit.figures.iter().cloned());
    }
    if args.wants("memory") {
        if args.kubeconfig.is_some() {
            bail!("the memory scenario starts its own pernode up; drop --kubeconfig");
        }
        figures.extend(memory::up(nodes, args.timeout()).await.context("memory")?);
    }
    let needs_cluster = SCENARIOS[1..]
        .iter()
        .filter(|s| **s != "memory")
        .any(|s| args.wants(s));
    if !needs_cluster {
        return Ok(());
    }
    let mut cluster = match &args.kubeconfig {
        Some(path) => Cluster::connect(path, &run).await?,
        None => Cluster::start(&run, &on_etcd(&args.store, &run)).await?,
    };
    let result = run_cluster(args, &mut cluster, nodes, &limit, figures).await;
    let stopped = cluster.stop().await;
    result?;
    stopped?;
    Ok(())
}

async fn run_cluster(
    args: &BenchArgs,
    cluster: &mut Cluster,
    nodes: usize,
    limit: &store::Limit,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    cluster.create_nodes(1, nodes, args.timeout()).await?;
    let fleet_scenarios = ["converge", "rollout", "nodechurn", "list"];
    if fleet_scenarios.iter().any(|s| args.wants(s)) {
        // The daemon set's pods are what list lists: converge first, reported or not.
        let f = daemonset::converge(cluster, nodes, limit, args.timeout()).await?;
        if args.wants("converge") {
            figures.push(f);
        }
    }
    if args.wants("rollout") {
        figures.extend(daemonset::rollouts(cluster, nodes, limit, args.timeout()).await?);
    }
    if args.wants("list") {
        figures.extend(api::list(cluster, nodes, args.list_runs).await?);
    }
    if args.wants("nodechurn") {
        figures.push(daemonset::node_churn(cluster, nodes, limit, args.timeout()).await?);
    }
    if args.wants("create") || args.wants("watch") {
        let (created, from_rv) = api::create(cluster, nodes, args.events, limit).await?;
        if args.wants("create") {
            figures.push(created);
        }
        if args.wants("watch") {
            figures.push(
                api::watch(
                    cluster,
                    nodes,
                    from_rv,
                    args.events,
                    args.watchers,
                    limit,
                    args.timeout(),
                )
                .await?,
            );
        }
    }
    if args.wants("loginflood") {
        figures.extend(login_flood::login_flood(cluster, nodes, args.list_runs * 20).await?);
    }
    if args.wants("slowclients") {
        figures.extend(slow_clients::slow_clients(cluster, nodes, args.list_runs * 20).await?);
    }
    Ok(())
}

/// `store` with the etcd key prefix of the part of a round named `tag` (nothing changes for the
/// embedded store).
fn on_etcd(store: &crate::store::StoreArgs, tag: &str) -> crate::store::StoreArgs {
    let mut store = store.clone();
    store.etcd_prefix = format!("/pernode-bench/{tag}");
    store
}

/// A progress bar for one phase (drawn on stderr, hidden when it is not a terminal).
pub(crate) fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>32} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}
