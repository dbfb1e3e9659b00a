//! Runs the control loops and the fleet simulator as API clients, in-process for `pernode up`
//! or against any server for `pernode controllers` / `pernode sim`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::task::JoinSet;

#[derive(Args, Debug)]
pub struct ControllersArgs {
    /// The cluster to control.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// An API server (`https://HOST:6443`) instead of the kubeconfig's, with its credentials.
    /// Repeat it for several: a request that cannot connect to one goes to the next.
    #[arg(long = "server")]
    pub servers: Vec<String>,
    /// The CA certificate (PEM) that signs approved CertificateSigningRequests of the
    /// `kubernetes.io` signers (kube-controller-manager's flag); without it nothing is signed.
    #[arg(long, requires = "cluster_signing_key_file")]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// The CA's private key (PEM).
    #[arg(long, requires = "cluster_signing_cert_file")]
    pub cluster_signing_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub flags: ControllerFlags,
    #[command(flatten)]
    pub election: crate::leader_elect::LeaderElectionFlags,
    /// Serve the controllers' work-queue metrics at `http://ADDRESS/metrics` (plain HTTP, as
    /// controller-runtime's flag: keep it on loopback, e.g. 127.0.0.1:10257; port 0 picks
    /// one). Off when unset.
    #[arg(long)]
    pub metrics_bind_address: Option<std::net::SocketAddr>,
}

/// Settings of the controllers, shared by `pernode up` and `pernode controllers`.
#[derive(Args, Debug, Clone)]
pub struct ControllerFlags {
    /// How long a node may stay silent (no lease renewal, no status heartbeat) before it is
    /// marked Unknown and tainted unreachable, e.g. 40s, 500ms, 1m. Node health is checked
    /// every 5 s, or every quarter of this when it is shorter than 20 s. `pernode up` renews
    /// simulated nodes' leases at least every quarter of this; with `pernode controllers`,
    /// keep it above four times the nodes' heartbeat interval (10 s for `pernode sim`).
    #[arg(long, value_parser = parse_duration, default_value = "40s")]
    pub node_monitor_grace_period: Duration,
    /// The CA published to every namespace as the `kube-root-ca.crt` ConfigMap, for pods to
    /// verify the API server (kube-controller-manager's flag; default: the kubeconfig's CA).
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,
    /// The CA itself, when the caller has it (`pernode up`).
    #[arg(skip)]
    pub root_ca_pem: Option<String>,
    /// The longest certificate the CSR signer issues; a request's `expirationSeconds` may ask
    /// for less (kube-controller-manager's flag).
    #[arg(long, value_parser = parse_duration, default_value = "8760h")]
    pub cluster_signing_duration: Duration,
    /// The CA that signs approved CertificateSigningRequests (`pernode up`: the cluster CA;
    /// `pernode controllers`: `--cluster-signing-cert-file`); none, no signer.
    #[arg(skip)]
    pub signing_ca: Option<std::sync::Arc<pernode_auth::pki::ClusterCa>>,
}

impl Default for ControllerFlags {
    fn default() -> Self {
        ControllerFlags {
            node_monitor_grace_period: Duration::from_secs(40),
            root_ca_file: None,
            root_ca_pem: None,
            cluster_signing_duration: pernode_controllers::csr_signing::DEFAULT_SIGNING_DURATION,
            signing_ca: None,
        }
    }
}

/// A positive duration as Go writes them (`40s`, `1m30s`, `500ms`).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let d: k8s_openapi::jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration (like 40s, 500ms, 1m): {e}"))?;
    match Duration::try_from(d) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{s:?}: the duration must be positive")),
    }
}

#[derive(Args, Debug)]
pub struct SimArgs {
    /// The cluster whose simulated nodes to run.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// An API server instead of the kubeconfig's; repeat it for several, as `controllers`.
    #[arg(long = "server")]
    pub servers: Vec<String>,
    /// Simulated nodes to create (node-1..node-N) before running them; 0 runs existing ones.
    #[arg(long, default_value_t = 0)]
    pub nodes: usize,
}

/// The CA (PEM) the kubeconfig's current cluster trusts, if it names one.
fn kubeconfig_ca(path: &PathBuf) -> anyhow::Result<Option<String>> {
    use base64::Engine;
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let context = kubeconfig.current_context.as_deref().unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| Some(&c.name) == cluster_name.as_ref())
        .and_then(|c| c.cluster.as_ref());
    if let Some(data) = cluster.and_then(|c| c.certificate_authority_data.as_deref()) {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .context("the kubeconfig's certificate-authority-data is not base64")?;
        return Ok(Some(
            String::from_utf8(pem).context("the kubeconfig's CA is not PEM")?,
        ));
    }
    match cluster.and_then(|c| c.certificate_authority.as_deref()) {
        Some(file) => Ok(Some(
            std::fs::read_to_string(file).with_context(|| format!("reading the CA {file}"))?,
        )),
        None => Ok(None),
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_from(path: &PathBuf) -> anyhow::Result<kube::Client> {
    Ok(kube::Client::try_from(config_from(path).await?)?)
}

async fn config_from(path: &PathBuf) -> anyhow::Result<kube::Config> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("using {}", path.display()))
}

/// [`client_from`] naming itself `agent` (upstream's component's User-Agent, whose prefix is
/// the field manager of its writes), over `servers` (the kubeconfig's credentials) when given,
/// see [`crate::failover`].
async fn client_over(
    path: &PathBuf,
    agent: &'static str,
    servers: &[String],
) -> anyhow::Result<kube::Client> {
    let mut config = config_from(path).await?;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(agent),
    ));
    crate::failover::client_over(config, servers)
}

/// The API client each control loop runs with.
#[derive(Clone)]
pub enum Clients {
    /// One client for every loop: a kubeconfig's (`pernode controllers`, `pernode sim`), as
    /// kube-controller-manager without `--use-service-account-credentials`.
    Shared(kube::Client),
    /// The server's router in-process, each loop under its own upstream identity and role:
    /// controllers as their `kube-system` service accounts (`system:controller:*` roles), the
    /// shared watches as `system:kube-controller-manager`, the scheduler as
    /// `system:kube-scheduler`, the simulator as `pernode:simulator`.
    InProcess(std::sync::Arc<pernode_apiserver::ApiServer>),
}

/// The simulator's identity in-process (bound to the `pernode:simulator` ClusterRole).
pub const SIMULATOR_USER: &str = "pernode:simulator";

/// The User-Agents of the in-process clients: upstream's components', whose prefix names the
/// field manager of their writes in managedFields.
const CONTROLLER_MANAGER_AGENT: &str = "kube-controller-manager/v1.33.0 (linux/amd64) pernode";
const SCHEDULER_AGENT: &str = "kube-scheduler/v1.33.0 (linux/amd64) pernode";
const KUBELET_AGENT: &str = "kubelet/v1.33.0 (linux/amd64) pernode";

impl Clients {
    fn as_user(&self, user: pernode_auth::user::UserInfo, agent: &'static str) -> kube::Client {
        match self {
            Clients::Shared(client) => client.clone(),
            Clients::InProcess(server) => {
                kube::Client::new(server.router_for_control_loop(user, agent), "default")
            }
        }
    }

    /// A controller's client, as its service account `kube-system/<name>`.
    pub fn controller(&self, name: &str) -> kube::Client {
        use pernode_auth::user::{ALL_SERVICE_ACCOUNTS, SERVICE_ACCOUNT_USER_PREFIX};
        self.as_user(
            pernode_auth::user::UserInfo::new(
                format!("{SERVICE_ACCOUNT_USER_PREFIX}kube-system:{name}"),
                [
                    ALL_SERVICE_ACCOUNTS.to_string(),
                    format!("{ALL_SERVICE_ACCOUNTS}:kube-system"),
                ],
            ),
            CONTROLLER_MANAGER_AGENT,
        )
    }

    /// The client of the watches controllers share (kube-controller-manager's informers).
    pub fn controller_manager(&self) -> kube::Client {
        self.as_user(
            pernode_auth::user::UserInfo::new(
                pernode_auth::user::KUBE_CONTROLLER_MANAGER,
                Vec::<String>::new(),
            ),
            CONTROLLER_MANAGER_AGENT,
        )
    }

    /// The scheduler's client.
    pub fn scheduler(&self) -> kube::Client {
        self.as_user(
            pernode_auth::user::UserInfo::new(
                pernode_auth::user::KUBE_SCHEDULER,
                Vec::<String>::new(),
            ),
            SCHEDULER_AGENT,
        )
    }

    /// The fleet simulator's client.
    pub fn simulator(&self) -> kube::Client {
        self.as_user(
            pernode_auth::user::UserInfo::new(SIMULATOR_USER, Vec::<String>::new()),
            KUBELET_AGENT,
        )
    }
}

/// The controllers: daemon sets, scheduler, garbage collector, pod GC, node lifecycle,
/// ClusterRole aggregation, disruption budgets, the node-critical gate, namespaces, service
/// accounts, the root CA
/// publisher, and the certificate approver, signer and cleaner. Each runs until it fails.
#[cfg(test)]
pub fn spawn_controllers(tasks: &mut JoinSet<anyhow::Result<()>>, client: &kube::Client) {
    spawn_controllers_with(
        tasks,
        &Clients::Shared(client.clone()),
        &ControllerFlags::default(),
    );
}

/// [`spawn_controllers`] with settings from the command line, each with its client.
pub fn spawn_controllers_with(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    clients: &Clients,
    flags: &ControllerFlags,
) {
    use pernode_controllers::{
        clusterrole_aggregation, daemonset, disruption, garbage_collector, namespace,
        node_lifecycle, pod_gc, root_ca_publisher, scheduler, service_account,
    };
    spawn_certificate_controllers(tasks, clients, flags);
    // One pod watch for the DaemonSet controller, the scheduler, the garbage collector, pod GC,
    // node lifecycle, the disruption and the node-critical controllers, as kube-controller-manager's shared
    // informer; every subscriber before it runs.
    let mut pods = pernode_controllers::pod_watch::PodWatch::all(&clients.controller_manager());
    let (ds_pods, scheduler_pods) = (pods.subscribe(), pods.subscribe());
    let (collector_pods, gc_pods) = (pods.subscribe(), pods.subscribe());
    let (lifecycle_pods, disruption_pods) = (pods.subscribe(), pods.subscribe());
    let critical_pods = pods.subscribe();
    let c = clients.controller("daemon-set-controller");
    tasks.spawn(async move {
        daemonset::run_with_pods(c, Default::default(), ds_pods)
            .await
            .context("daemonset controller")
    });
    let c = clients.scheduler();
    tasks.spawn(async move {
        scheduler::run_with_pods(c, Default::default(), scheduler_pods)
            .await
            .context("scheduler")
    });
    let c = clients.controller("generic-garbage-collector");
    tasks.spawn(async move {
        garbage_collector::run_with_pods(c, Default::default(), collector_pods)
            .await
            .context("garbage collector")
    });
    let c = clients.controller("pod-garbage-collector");
    tasks.spawn(async move {
        pod_gc::run_with_pods(c, Default::default(), gc_pods)
            .await
            .context("pod garbage collector")
    });
    let c = clients.controller("disruption-controller");
    tasks.spawn(async move {
        disruption::run_with_pods(c, Default::default(), disruption_pods)
            .await
            .context("disruption controller")
    });
    let c = clients.controller("node-critical-controller");
    tasks.spawn(async move {
        pernode_controllers::node_critical::run_with_pods(c, critical_pods)
            .await
            .context("node-critical controller")
    });
    let c = clients.controller("node-controller");
    let grace = flags.node_monitor_grace_period;
    let defaults = node_lifecycle::NodeLifecycleOptions::default();
    let opts = node_lifecycle::NodeLifecycleOptions {
        node_monitor_grace_period: grace,
        // A short grace period needs a check that is at least as quick.
        node_monitor_period: defaults.node_monitor_period.min(grace / 4),
        ..defaults
    };
    tasks.spawn(async move {
        node_lifecycle::run_with_pods(c, opts, lifecycle_pods)
            .await
            .context("node lifecycle controller")
    });
    let c = clients.controller("clusterrole-aggregation-controller");
    tasks.spawn(async move {
        clusterrole_aggregation::run(c)
            .await
            .context("clusterrole aggregation controller")
    });
    let c = clients.controller("namespace-controller");
    tasks.spawn(async move {
        namespace::run(c, Default::default())
            .await
            .context("namespace controller")
    });
    let c = clients.controller("service-account-controller");
    tasks.spawn(async move {
        service_account::run(c)
            .await
            .context("service account controller")
    });
    if let Some(ca_pem) = flags.root_ca_pem.clone() {
        let c = clients.controller("root-ca-cert-publisher");
        tasks.spawn(async move {
            root_ca_publisher::run(c, ca_pem)
                .await
                .context("root CA publisher")
        });
    }
    let c = clients.controller("bootstrap-signer");
    tasks.spawn(async move {
        pernode_controllers::bootstrap::signer::run(c)
            .await
            .context("bootstrap signer")
    });
    let c = clients.controller("token-cleaner");
    tasks.spawn(async move {
        pernode_controllers::bootstrap::cleaner::run(c)
            .await
            .context("token cleaner")
    });
    // The watch ends only once every subscriber has stopped, which has ended `pernode` already.
    tasks.spawn(async move {
        pods.run().await;
        anyhow::bail!("the shared pod watch stopped")
    });
}

/// The certificate controllers, as kube-controller-manager's `csrapproving`, `csrsigning`
/// and `csrcleaner` under the `certificate-controller` service account: the signer only with
/// a signing CA, as upstream's runs only with its signing files.
fn spawn_certificate_controllers(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    clients: &Clients,
    flags: &ControllerFlags,
) {
    use pernode_controllers::{csr_approving, csr_cleaner, csr_signing};
    let c = clients.controller("certificate-controller");
    tasks.spawn(async move {
        csr_approving::run(c)
            .await
            .context("certificate signing request approver")
    });
    let c = clients.controller("certificate-controller");
    tasks.spawn(async move {
        csr_cleaner::run(c)
            .await
            .context("certificate signing request cleaner")
    });
    if let Some(ca) = flags.signing_ca.clone() {
        let c = clients.controller("certificate-controller");
        let options = csr_signing::SignerOptions {
            ca,
            signing_duration: flags.cluster_signing_duration,
        };
        tasks.spawn(async move {
            csr_signing::run(c, options)
                .await
                .context("certificate signing request signer")
        });
    }
}

/// The CA of `--cluster-signing-cert-file` and `--cluster-signing-key-file`, if given.
fn signing_ca(args: &ControllersArgs) -> anyhow::Result<Option<pernode_auth::pki::ClusterCa>> {
    let (Some(cert), Some(key)) = (
        &args.cluster_signing_cert_file,
        &args.cluster_signing_key_file,
    ) else {
        return Ok(None);
    };
    let read = |path: &PathBuf, flag: &str| {
        std::fs::read_to_string(path).with_context(|| format!("reading {flag} {}", path.display()))
    };
    let ca = pernode_auth::pki::ClusterCa::from_pem(
        &read(cert, "--cluster-signing-cert-file")?,
        &read(key, "--cluster-signing-key-file")?,
    )
    .context("loading the cluster signing CA")?;
    Ok(Some(ca))
}

/// The fleet simulator for every node annotated `pernode.io/simulated: "true"`.
pub fn spawn_simulator(tasks: &mut JoinSet<anyhow::Result<()>>, client: &kube::Client) {
    spawn_simulator_with(
        tasks,
        &Clients::Shared(client.clone()),
        &ControllerFlags::default(),
    );
}

/// [`spawn_simulator`] with heartbeats frequent enough for the node monitor grace period
/// (a quarter of it, as the kubelet's 10 s lease renewal against 40 s): simulated nodes never
/// look silent.
pub fn spawn_simulator_with(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    clients: &Clients,
    flags: &ControllerFlags,
) {
    let defaults = pernode_agent::simulator::SimulatorOptions::default();
    let opts = pernode_agent::simulator::SimulatorOptions {
        heartbeat_interval: defaults
            .heartbeat_interval
            .min(flags.node_monitor_grace_period / 4),
        ..defaults
    };
    let c = clients.simulator();
    tasks.spawn(async move {
        pernode_agent::simulator::run(c, opts)
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

pub async fn controllers(mut args: ControllersArgs) -> anyhow::Result<()> {
    let client = client_over(&args.kubeconfig, CONTROLLER_MANAGER_AGENT, &args.servers).await?;
    args.flags.root_ca_pem = match &args.flags.root_ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --root-ca-file {}", path.display()))?,
        ),
        None => kubeconfig_ca(&args.kubeconfig)?,
    };
    args.flags.signing_ca = signing_ca(&args)?.map(std::sync::Arc::new);
    if let Some(address) = args.metrics_bind_address {
        crate::controller_metrics::serve(address).await?;
    }
    let clients = Clients::Shared(client.clone());
    let start = || {
        let mut tasks = JoinSet::new();
        spawn_controllers_with(&mut tasks, &clients, &args.flags);
        tasks
    };
    if args.election.enabled(true) {
        args.election.validate()?;
        crate::leader_elect::run_elected(
            client,
            &args.election,
            start,
            crate::up::shutdown_signal(),
        )
        .await
    } else {
        run_until(start(), crate::up::shutdown_signal()).await
    }
}

pub async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let client = client_over(&args.kubeconfig, KUBELET_AGENT, &args.servers).await?;
    pernode_agent::simulator::create_nodes(client.clone(), args.nodes, "node")
        .await
        .context("creating simulated nodes")?;
    let mut tasks = JoinSet::new();
    spawn_simulator(&mut tasks, &client);
    run_until(tasks, crate::up::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, PostParams};
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        controllers: ControllersArgs,
    }

    fn controllers_args(flags: &[&str]) -> Result<ControllersArgs, clap::Error> {
        use clap::Parser;
        let args = ["pernode", "--kubeconfig", "/k"].into_iter();
        Flags::try_parse_from(args.chain(flags.iter().copied())).map(|f| f.controllers)
    }

    #[test]
    fn the_signer_takes_kube_controller_managers_flags() {
        let defaults = controllers_args(&[]).expect("flags");
        assert!(signing_ca(&defaults).expect("no files").is_none());
        assert_eq!(
            defaults.flags.cluster_signing_duration,
            Duration::from_secs(8760 * 3600)
        );
        // A short duration is taken as it is (certificate renewal tests use one).
        let short = controllers_args(&["--cluster-signing-duration", "60s"]).expect("flags");
        assert_eq!(
            short.flags.cluster_signing_duration,
            Duration::from_secs(60)
        );
        // The certificate and the key go together.
        assert!(controllers_args(&["--cluster-signing-cert-file", "/ca.crt"]).is_err());
        let dir = tempfile::tempdir().expect("dir");
        let ca = pernode_auth::pki::ClusterCa::load_or_create(dir.path()).expect("ca");
        let cert = dir.path().join("ca.crt").display().to_string();
        let key = dir.path().join("ca.key").display().to_string();
        let args = controllers_args(&[
            "--cluster-signing-cert-file",
            &cert,
            "--cluster-signing-key-file",
            &key,
        ])
        .expect("flags");
        let loaded = signing_ca(&args).expect("readable").expect("a CA");
        assert_eq!(loaded.cert_pem, ca.cert_pem);
        let missing = controllers_args(&[
            "--cluster-signing-cert-file",
            "/nonexistent/ca.crt",
            "--cluster-signing-key-file",
            &key,
        ])
        .expect("flags");
        let e = signing_ca(&missing).expect_err("unreadable");
        assert!(
            format!("{e:#}").contains("--cluster-signing-cert-file /nonexistent/ca.crt"),
            "{e:#}"
        );
    }

    /// The DaemonSet controller, pod GC and node lifecycle read pods from one watch, as
    /// kube-controller-manager's controllers share one informer; the scheduler and the
    /// simulator (other processes upstream) have their own. Before, there were five.
    #[tokio::test]
    async fn the_controllers_share_one_pod_watch() {
        let router = pernode_apiserver::in_memory_router()
            .await
            .expect("api server");
        let pod_watches = Arc::new(Mutex::new(0usize));
        let service = {
            let pod_watches = pod_watches.clone();
            tower::service_fn(move |req: http::Request<kube::client::Body>| {
                let query = req.uri().query().unwrap_or("");
                // Metadata-only watches count too: the garbage collector reads the shared
                // watch's pods, as upstream's takes the shared informer where there is one.
                if req.uri().path() == "/api/v1/pods" && query.contains("watch=true") {
                    *pod_watches.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                }
                router.clone().oneshot(req)
            })
        };
        let client = kube::Client::new(service, "default");
        let mut tasks = JoinSet::new();
        spawn_controllers(&mut tasks, &client);
        spawn_simulator(&mut tasks, &client);

        Api::<Node>::all(client.clone())
            .create(
                &PostParams::default(),
                &pernode_agent::simulator::simulated_node("n1"),
            )
            .await
            .expect("create node");
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "agent", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "agent", "image": "agent:1"}]},
                },
            },
        }))
        .expect("daemon set");
        let dss: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
        dss.create(&PostParams::default(), &ds)
            .await
            .expect("create daemon set");
        // Every watcher is running once the pod was created (the DaemonSet controller), bound
        // (the scheduler), run (the simulator) and counted available (the controller again).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ds = dss.get("agent").await.expect("get daemon set");
            if ds.status.and_then(|s| s.number_available) == Some(1) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the daemon pod never became available"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let watches = *pod_watches.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(
            watches, 2,
            "pod watches: the one the controllers, the scheduler and the garbage collector share, and the simulator's"
        );
        tasks.abort_all();
    }
}
