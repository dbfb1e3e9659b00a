//! Where the API server keeps its objects: the embedded SQLite store in the data dir (the
//! default), or etcd with `--store etcd://h1:2379,...` and kube-apiserver's etcd flags (built
//! with the `etcd` feature).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use pernode_store::Store;

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// `etcd://host:port[,host:port...]` to keep every object in etcd, as kube-apiserver
    /// (several servers may share one); the default is the embedded store in the data dir.
    #[arg(long)]
    pub store: Option<String>,
    /// CA that signed etcd's serving certificates (kube-apiserver's flag); turns on TLS.
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd (kube-apiserver's flag).
    #[arg(long, requires = "etcd_keyfile")]
    pub etcd_certfile: Option<PathBuf>,
    /// The client certificate's key (kube-apiserver's flag).
    #[arg(long, requires = "etcd_certfile")]
    pub etcd_keyfile: Option<PathBuf>,
    /// The key prefix of every object in etcd (kube-apiserver's flag).
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    /// How often etcd's history is compacted; 0 turns it off (kube-apiserver's flag).
    #[arg(long, default_value = "5m", value_parser = interval)]
    pub etcd_compaction_interval: Duration,
}

/// A duration as `--etcd-compaction-interval` takes it: positive, or 0 for never.
fn interval(s: &str) -> Result<Duration, String> {
    match s {
        "0" => Ok(Duration::ZERO),
        _ => crate::control_plane::parse_duration(s),
    }
}

/// Opens the store the flags name: etcd, else the embedded store in `data_dir/store`.
pub async fn open(args: &StoreArgs, data_dir: &Path) -> anyhow::Result<Store> {
    match &args.store {
        Some(url) => open_etcd(args, url).await,
        None => pernode_apiserver::open_store(&data_dir.join("store"))
            .with_context(|| format!("opening the store in {}", data_dir.display())),
    }
}

#[cfg(feature = "etcd")]
async fn open_etcd(args: &StoreArgs, url: &str) -> anyhow::Result<Store> {
    use pernode_store::etcd::{EtcdConfig, EtcdTls};
    let tls = (args.etcd_cafile.is_some() || args.etcd_certfile.is_some()).then(|| EtcdTls {
        ca_file: args.etcd_cafile.clone(),
        cert_file: args.etcd_certfile.clone(),
        key_file: args.etcd_keyfile.clone(),
    });
    let mut config = EtcdConfig::from_url(url, tls).context("--store")?;
    config.prefix = format!("{}/", args.etcd_prefix.trim_end_matches('/'));
    config.compaction_interval = args.etcd_compaction_interval;
    Store::open_etcd(
        config,
        pernode_apiserver::registry::indexer(),
        Default::default(),
    )
    .await
    .context("opening the store on etcd")
}

#[cfg(not(feature = "etcd"))]
async fn open_etcd(_args: &StoreArgs, url: &str) -> anyhow::Result<Store> {
    anyhow::bail!(
        "--store {url}: this pernode was built without etcd support; build it with `--features etcd`"
    )
}
