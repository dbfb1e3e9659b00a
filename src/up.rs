//! `pernode up` (everything in one process) and `pernode apiserver` (the API server alone).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use pernode_apiserver::ApiServer;

use crate::kubeconfig;

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Address to serve on; `127.0.0.1:0` picks a free port (the kubeconfig names the real one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Where the store, the kubeconfig and the service-account signing key live.
    #[arg(long, default_value = "./.pernode")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub store: crate::store::StoreArgs,
    /// Where to write the kubeconfig (default: <data-dir>/kubeconfig), once the server answers.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Reads served at once over TCP before more get 429 (kube-apiserver's flag; watches,
    /// logs, exec and proxies are not counted).
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: usize,
    /// Writes served at once over TCP before more get 429 (kube-apiserver's flag).
    #[arg(long, default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,
    /// How long an Event is kept after its last write (kube-apiserver's `--event-ttl`).
    #[arg(long, default_value = "1h", value_parser = crate::control_plane::parse_duration)]
    pub event_ttl: std::time::Duration,
    #[command(flatten)]
    pub tls: crate::certificates::TlsArgs,
    /// Write an audit log (`audit.k8s.io/v1` Events, one JSON object a line) to this file, or
    /// to stdout for `-` (kube-apiserver's flag); nothing is audited without it.
    #[arg(long)]
    pub audit_log_path: Option<PathBuf>,
    /// The audit policy: an `audit.k8s.io/v1` Policy file (kube-apiserver's flag). Without
    /// one, `--audit-log-path` logs every request at level Metadata.
    #[arg(long)]
    pub audit_policy_file: Option<PathBuf>,
    /// How long this server stays in the `kubernetes` Service's Endpoints after its last
    /// renewal (every two thirds of it): a server that dies drops out after this (upstream's
    /// master lease TTL).
    #[arg(long, default_value = "15s", value_parser = crate::control_plane::parse_duration)]
    pub endpoint_lease_ttl: std::time::Duration,
    /// The key that signs service-account tokens (PEM, P-256) instead of the one kept in the
    /// data dir (kube-apiserver's flag).
    #[arg(long)]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// More public (or private) keys whose tokens are accepted, e.g. the previous signing key
    /// during a rotation (kube-apiserver's flag; repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub service_account_key_file: Vec<PathBuf>,
    /// The `iss` of issued service-account tokens (kube-apiserver's flag).
    #[arg(long, default_value = pernode_auth::serviceaccount::DEFAULT_ISSUER)]
    pub service_account_issuer: String,
    /// The audiences the server accepts tokens for (default: the issuer, as kube-apiserver's).
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
}

/// The audit the flags ask for, if any.
/// How the server keeps and checks service-account tokens: the flags, else the key in the
/// data dir (so tokens outlive a restart).
fn server_options(args: &ServerArgs) -> anyhow::Result<pernode_apiserver::ApiServerOptions> {
    let service_account_key = match &args.service_account_signing_key_file {
        Some(file) => pernode_apiserver::ServiceAccountKey::File(file.clone()),
        None => pernode_apiserver::ServiceAccountKey::Dir(args.data_dir.clone()),
    };
    let mut verifying = Vec::new();
    for file in &args.service_account_key_file {
        verifying.extend(
            pernode_auth::serviceaccount::VerifyingKey::from_file(file)
                .with_context(|| format!("--service-account-key-file {}", file.display()))?,
        );
    }
    Ok(pernode_apiserver::ApiServerOptions {
        service_account_key,
        service_account_verifying_keys: verifying,
        service_account_issuer: args.service_account_issuer.clone(),
        api_audiences: args.api_audiences.clone(),
        audit: auditor(args)?,
        ..Default::default()
    })
}

fn auditor(args: &ServerArgs) -> anyhow::Result<Option<pernode_apiserver::audit::Auditor>> {
    let Some(path) = &args.audit_log_path else {
        if args.audit_policy_file.is_some() {
            tracing::warn!("--audit-policy-file without --audit-log-path: nothing is audited");
        }
        return Ok(None);
    };
    let auditor =
        pernode_apiserver::audit::Auditor::from_flags(path, args.audit_policy_file.as_deref())?;
    Ok(Some(auditor))
}

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Simulated nodes to create (node-1..node-N); 0 for none.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    #[command(flatten)]
    pub controllers: crate::control_plane::ControllerFlags,
    #[command(flatten)]
    pub election: crate::leader_elect::LeaderElectionFlags,
}

#[derive(Args, Debug)]
pub struct ApiserverArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

/// A started API server: where it listens and how to stop it.
struct Running {
    server: std::sync::Arc<ApiServer>,
    event_expiry: tokio::task::JoinHandle<()>,
    serving: pernode_apiserver::Serving,
    kubeconfig: PathBuf,
    /// The CA clients trust for the serving certificate.
    serving_ca_pem: String,
    /// The cluster CA, whose client certificates the server accepts: the CSR signer's.
    cluster_ca: std::sync::Arc<pernode_auth::pki::ClusterCa>,
}

async fn start(args: &ServerArgs) -> anyhow::Result<Running> {
    pernode_store::private_dir(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let store = crate::store::open(&args.store, &args.data_dir).await?;
    let certificates = crate::certificates::load(&args.data_dir, args.listen, &args.tls)?;
    let mut options = server_options(args)?;
    options.kubelet_client = certificates.kubelet_client(&args.tls)?;
    let server = std::sync::Arc::new(
        ApiServer::with_options(store, options)
            .await
            .context("starting the API server")?,
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let options = pernode_apiserver::serving::ServeOptions {
        transport: pernode_apiserver::authentication::Transport::Tls(certificates.tls.clone()),
        limits: pernode_apiserver::max_in_flight::InFlightLimits {
            readonly: args.max_requests_inflight,
            mutating: args.max_mutating_requests_inflight,
        },
        endpoint_lease_ttl: args.endpoint_lease_ttl,
        ..Default::default()
    };
    let serving = server
        .spawn_serving_with(listener, options)
        .context("serving HTTP")?;
    let addr = serving.addr;
    wait_until_ready(addr, &certificates).await?;
    let kubeconfig = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| args.data_dir.join("kubeconfig"));
    kubeconfig::write(
        &kubeconfig,
        addr,
        &certificates.serving_ca_pem,
        &certificates.admin()?,
    )?;
    crate::cluster_info::publish(
        kube::Client::new(server.router(), "default"),
        addr,
        &certificates.serving_ca_pem,
    )
    .await?;
    let event_expiry = pernode_apiserver::event_ttl::spawn(server.store().clone(), args.event_ttl);
    Ok(Running {
        server,
        event_expiry,
        serving,
        kubeconfig,
        serving_ca_pem: certificates.serving_ca_pem.clone(),
        cluster_ca: std::sync::Arc::new(certificates.ca),
    })
}

/// Polls `/readyz` over HTTPS until the server answers, so the kubeconfig is only written for
/// a live server.
async fn wait_until_ready(
    addr: SocketAddr,
    certificates: &crate::certificates::ServerCertificates,
) -> anyhow::Result<()> {
    let client = kube::Client::try_from(certificates.admin_client(addr)?)
        .context("building a TLS client")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let request = http::Request::get("/readyz").body(Vec::new())?;
        if client.request_text(request).await.is_ok_and(|t| t == "ok") {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the API server on {addr} did not become ready within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

async fn stop(running: Running) -> anyhow::Result<()> {
    if !running
        .serving
        .stop(Duration::from_secs(5))
        .await
        .context("serving HTTP")?
    {
        tracing::warn!("connections still open after 5 s; exiting anyway");
    }
    running.event_expiry.abort();
    if !running.server.flush_audit(Duration::from_secs(5)).await {
        tracing::warn!("the audit log was not written out within 5 s");
    }
    running.server.store().close().await;
    Ok(())
}

fn print_usage(addr: SocketAddr, kubeconfig: &Path) {
    println!(
        "pernode is serving the Kubernetes API on https://{}",
        kubeconfig::reachable(addr)
    );
    println!("kubeconfig: {}", kubeconfig.display());
    println!(
        "fleet page: https://{}/ui/ (browser client certificate, or a token: README \"The fleet page\")",
        kubeconfig::reachable(addr)
    );
    println!();
    println!("    export KUBECONFIG={}", absolute(kubeconfig).display());
    println!("    kubectl get nodes");
    println!();
    println!("Ctrl-C (or SIGTERM) stops it; restarting on the same --data-dir keeps every object.");
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub async fn apiserver(args: ApiserverArgs) -> anyhow::Result<()> {
    let running = start(&args.server).await?;
    print_usage(running.serving.addr, &running.kubeconfig);
    shutdown_signal().await?;
    stop(running).await
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    if args.election.enabled(false) {
        args.election.validate()?;
    }
    let running = start(&args.server).await?;
    // The control loops talk to the router in-process: the same code as over TCP, minus the
    // socket.
    let client = kube::Client::new(running.server.router(), "default");
    pernode_agent::simulator::create_nodes(client.clone(), args.nodes, "node")
        .await
        .context("creating simulated nodes")?;
    let mut tasks = tokio::task::JoinSet::new();
    let mut controllers = args.controllers;
    controllers.root_ca_pem = Some(running.serving_ca_pem.clone());
    controllers.signing_ca = Some(running.cluster_ca.clone());
    // The controllers' work queues on the API server's /metrics, as kube-apiserver's page
    // carries every component linked into the process.
    let mut queues = prometheus_client::registry::Registry::default();
    pernode_controllers::workqueue_metrics::register(&mut queues);
    running
        .server
        .metrics()
        .add_registry(std::sync::Arc::new(queues));
    let clients = crate::control_plane::Clients::InProcess(running.server.clone());
    if args.election.enabled(false) {
        // Only the controllers campaign; the simulator stands for the nodes and always runs.
        let (clients, controllers, election) =
            (clients.clone(), controllers.clone(), args.election.clone());
        tasks.spawn(async move {
            let start = || {
                let mut tasks = tokio::task::JoinSet::new();
                crate::control_plane::spawn_controllers_with(&mut tasks, &clients, &controllers);
                tasks
            };
            let lease_client = clients.controller_manager();
            crate::leader_elect::run_elected(lease_client, &election, start, std::future::pending())
                .await
        });
    } else {
        crate::control_plane::spawn_controllers_with(&mut tasks, &clients, &controllers);
    }
    crate::control_plane::spawn_simulator_with(&mut tasks, &clients, &controllers);
    print_usage(running.serving.addr, &running.kubeconfig);
    let result = crate::control_plane::run_until(tasks, shutdown_signal()).await;
    stop(running).await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn server_args(flags: &[&str]) -> ServerArgs {
        Flags::try_parse_from(std::iter::once("pernode").chain(flags.iter().copied()))
            .expect("flags")
            .server
    }

    #[test]
    fn service_account_flags_choose_key_issuer_and_audiences() {
        let defaults = server_options(&server_args(&["--data-dir", "/d"])).unwrap();
        assert_eq!(
            defaults.service_account_key,
            pernode_apiserver::ServiceAccountKey::Dir("/d".into())
        );
        assert_eq!(
            defaults.service_account_issuer,
            pernode_auth::serviceaccount::DEFAULT_ISSUER
        );
        assert!(defaults.api_audiences.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let key = pernode_auth::serviceaccount::SigningKey::generate().unwrap();
        let old = dir.path().join("old.pem");
        std::fs::write(&old, key.to_pem()).unwrap();
        let old = old.to_str().unwrap();
        let chosen = server_options(&server_args(&[
            "--service-account-signing-key-file",
            "/keys/sa.pem",
            "--service-account-key-file",
            old,
            "--service-account-issuer",
            "https://issuer.example",
            "--api-audiences",
            "a,b",
        ]))
        .unwrap();
        assert_eq!(
            chosen.service_account_key,
            pernode_apiserver::ServiceAccountKey::File("/keys/sa.pem".into())
        );
        assert_eq!(chosen.service_account_verifying_keys.len(), 1);
        assert_eq!(chosen.service_account_issuer, "https://issuer.example");
        assert_eq!(chosen.api_audiences, ["a", "b"]);
        let missing = server_options(&server_args(&["--service-account-key-file", "/nope.pem"]));
        assert!(format!("{:#}", missing.err().unwrap()).contains("/nope.pem"));
    }

    #[test]
    fn the_audit_flags_configure_the_audit_log() {
        assert!(auditor(&server_args(&[])).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let log = log.to_str().unwrap();
        assert!(
            auditor(&server_args(&["--audit-policy-file", "/nonexistent"]))
                .unwrap()
                .is_none(),
            "a policy without a log audits nothing"
        );
        assert!(
            auditor(&server_args(&["--audit-log-path", log]))
                .unwrap()
                .is_some()
        );
        assert!(log_exists(log));
        let policy = dir.path().join("policy.yaml");
        std::fs::write(
            &policy,
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
        )
        .unwrap();
        let policy = policy.to_str().unwrap();
        let e = auditor(&server_args(&[
            "--audit-log-path",
            log,
            "--audit-policy-file",
            policy,
        ]))
        .err()
        .expect("an empty policy is refused");
        assert_eq!(
            e.to_string(),
            format!("--audit-policy-file: loaded illegal policy with 0 rules: from file {policy}")
        );
    }

    fn log_exists(path: &str) -> bool {
        Path::new(path).exists()
    }
}
