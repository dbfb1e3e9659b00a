//! `pernode agent`: the real node agent on this host. Parses flags, builds
//! [`pernode_agent::agent::AgentOptions`] and runs the agent until Ctrl-C or SIGTERM (which
//! leave the containers running; the next agent on the same root directory adopts them).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use pernode_agent::agent::{self, AgentOptions, CgroupMode, env::ImageMap, host, node};

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The cluster to join, with the node's credentials in it.
    #[arg(long, required_unless_present = "token", conflicts_with = "token")]
    pub kubeconfig: Option<PathBuf>,
    /// The API server (`https://HOST:6443`): to join with `--token`, or with `--kubeconfig`
    /// instead of the kubeconfig's. Repeat it (with `--kubeconfig`) for several API servers:
    /// a request that cannot connect to one goes to the next.
    #[arg(long = "server", required_unless_present = "kubeconfig")]
    pub servers: Vec<String>,
    /// A bootstrap token (`pernode token create`): the agent gets its own client certificate
    /// through a CertificateSigningRequest and renews it, as kubeadm join and the kubelet's TLS
    /// bootstrap.
    #[arg(long, requires = "servers")]
    pub token: Option<String>,
    /// The cluster CA's pin, `sha256:<hex>` (repeatable; kubeadm's
    /// `--discovery-token-ca-cert-hash`; `pernode token create --print-join-command` prints it).
    #[arg(long = "ca-cert-hash", alias = "discovery-token-ca-cert-hash")]
    pub ca_cert_hashes: Vec<String>,
    /// Trust the discovered CA on the token's signature alone, without a pin.
    #[arg(long)]
    pub discovery_token_unsafe_skip_ca_verification: bool,
    /// The Node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Labels to register the node with: k=v,k2=v2.
    #[arg(long, default_value = "")]
    pub labels: String,
    /// Taints to register the node with: k=v:Effect,k2:Effect.
    #[arg(long, default_value = "")]
    pub taints: String,
    /// State and container logs (default ./.pernode-agent/<node>).
    #[arg(long)]
    pub root_dir: Option<PathBuf>,
    /// Directory of static pod manifests.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// How often the static pod directory is read again.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub file_check_frequency: Duration,
    /// File of IMAGE=COMMAND lines: the program run for an image when the pod gives no command.
    #[arg(long)]
    pub image_map: Option<PathBuf>,
    /// One IMAGE=COMMAND entry (repeatable; wins over --image-map). `busybox` maps to the
    /// host's busybox when there is one.
    #[arg(long = "image-command")]
    pub image_commands: Vec<String>,
    /// Address of the log endpoint the API server proxies `kubectl logs` to.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: IpAddr,
    /// Port of the log endpoint (0 picks a free one; the node reports it).
    #[arg(long, default_value_t = 10250)]
    pub port: u16,
    /// The node's InternalIP (default: the address that routes to the API server).
    #[arg(long)]
    pub node_ip: Option<Ipv4Addr>,
    /// Lease renewal interval.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub lease_interval: Duration,
    /// The lease's duration in seconds.
    #[arg(long, default_value_t = 40)]
    pub lease_duration_seconds: i32,
    /// How often the node status is posted.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub node_status_interval: Duration,
    /// Pod capacity reported.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// cgroup v2 directory for container limits; `none` disables them (default: detect).
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// First CrashLoopBackOff delay.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub crashloop_backoff_initial: Duration,
    /// CrashLoopBackOff cap.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    pub crashloop_backoff_max: Duration,
    /// How often pod volumes are set up again (projected tokens refreshed), as the kubelet's
    /// `--sync-frequency`; ConfigMap and Secret changes apply at once regardless.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub sync_frequency: Duration,
    /// What runs containers: `process` (host processes; the default without
    /// --container-runtime-endpoint) or `remote` (a CRI runtime).
    #[arg(long, value_parser = ["process", "remote"])]
    pub runtime: Option<String>,
    /// The CRI runtime's socket, as the kubelet's flag: `unix:///run/containerd/containerd.sock`.
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,
    /// Where a CRI runtime writes container logs (the kubelet's `podLogsDir`).
    #[arg(long, default_value = "/var/log/pods")]
    pub pod_logs_dir: PathBuf,
    /// CA whose client certificates authenticate users of the kubelet port (default: the
    /// cluster CA the agent trusts the API server with, which signs the API server's
    /// kubelet client certificate).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// The kubelet port's serving certificate (default: a self-signed one in the root dir).
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// Its private key.
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Let requests without credentials in as `system:anonymous` (then authorized as any).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// Check bearer tokens with the API server's TokenReview.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub authentication_token_webhook: bool,
    /// `Webhook` (ask the API server with SubjectAccessReviews) or `AlwaysAllow`.
    #[arg(long, default_value = "Webhook", value_parser = ["Webhook", "AlwaysAllow"])]
    pub authorization_mode: String,
}

/// The runtime the flags choose.
fn runtime_choice(
    runtime: Option<&str>,
    endpoint: Option<&str>,
) -> anyhow::Result<agent::RuntimeChoice> {
    match (runtime, endpoint) {
        (Some("process"), Some(_)) => {
            anyhow::bail!("--runtime process takes no --container-runtime-endpoint")
        }
        (Some("process"), None) | (None, None) => Ok(agent::RuntimeChoice::Process),
        (_, Some(e)) => {
            let path = e.strip_prefix("unix://").with_context(|| {
                format!("--container-runtime-endpoint {e:?}: only unix:// sockets are supported")
            })?;
            Ok(agent::RuntimeChoice::Cri(PathBuf::from(path)))
        }
        (Some(_), None) => anyhow::bail!("--runtime remote needs --container-runtime-endpoint"),
    }
}

/// The kubelet port's TLS and access flags; `cluster_ca_pem` is the default client CA.
fn server_auth(
    args: &AgentArgs,
    cluster_ca_pem: Option<String>,
) -> anyhow::Result<agent::kubelet_server::ServerAuthOptions> {
    use agent::kubelet_server::{AuthorizationMode, ServerAuthOptions};
    let client_ca_pem = match &args.client_ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading --client-ca-file {}", path.display()))?,
        ),
        None => cluster_ca_pem,
    };
    if client_ca_pem.is_none() {
        tracing::warn!(
            "no --client-ca-file and no CA in the kubeconfig: the kubelet port accepts no client certificates, so the API server cannot use it"
        );
    }
    Ok(ServerAuthOptions {
        tls_files: args
            .tls_cert_file
            .clone()
            .zip(args.tls_private_key_file.clone()),
        client_ca_pem,
        token_webhook: args.authentication_token_webhook,
        anonymous: args.anonymous_auth,
        authorization: match args.authorization_mode.as_str() {
            "AlwaysAllow" => AuthorizationMode::AlwaysAllow,
            _ => AuthorizationMode::Webhook,
        },
    })
}

/// `500ms`, `10s`, `5m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a duration"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s:?}: unit must be ms, s, m or h")),
    }
}

/// What the agent joins with: its API client, the server's URL, the cluster CA it trusts (if
/// any) and, after joining with `--token`, the certificate renewal loop to run beside it.
struct Credentials {
    client: kube::Client,
    cluster_url: http::Uri,
    ca_pem: Option<String>,
    renewal: Option<Renewal>,
}

/// The credentials from `--kubeconfig`, or by joining with `--token`.
async fn credentials(
    args: &AgentArgs,
    node_name: &str,
    root_dir: &std::path::Path,
) -> anyhow::Result<Credentials> {
    if let Some(path) = &args.kubeconfig {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .with_context(|| format!("reading {}", path.display()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .with_context(|| format!("using {}", path.display()))?;
        let ca_pem = config.root_cert.as_ref().map(|certs| {
            certs
                .iter()
                .map(|der| pernode_auth::pem::encode("CERTIFICATE", der))
                .collect::<String>()
        });
        let (client, cluster_url) = failover_client(config, &args.servers)?;
        return Ok(Credentials {
            client,
            cluster_url,
            ca_pem,
            renewal: None,
        });
    }
    if args.servers.len() > 1 {
        anyhow::bail!(
            "joining with --token takes one --server; several API servers need --kubeconfig (the joined agent writes one in its root dir)"
        );
    }
    let opts = pernode_agent::join::JoinOptions {
        server: args
            .servers
            .first()
            .cloned()
            .context("--server is required with --token")?,
        token: args
            .token
            .clone()
            .context("--token or --kubeconfig is required")?,
        ca_cert_hashes: args.ca_cert_hashes.clone(),
        unsafe_skip_ca_verification: args.discovery_token_unsafe_skip_ca_verification,
        node_name: node_name.to_string(),
        dir: root_dir.to_path_buf(),
    };
    let joined = pernode_agent::join::join(&opts)
        .await
        .context("joining the cluster")?;
    Ok(Credentials {
        client: joined.client,
        cluster_url: joined.cluster_url,
        ca_pem: Some(joined.ca_pem),
        renewal: Some(joined.renewal),
    })
}

/// The kubeconfig's client (over `servers` when given) and the URL of the first server.
fn failover_client(
    config: kube::Config,
    servers: &[String],
) -> anyhow::Result<(kube::Client, http::Uri)> {
    let url = match servers.first() {
        Some(first) => first
            .parse()
            .with_context(|| format!("--server {first:?} is not a URL"))?,
        None => config.cluster_url.clone(),
    };
    Ok((crate::failover::client_over(config, servers)?, url))
}

type Renewal = futures::future::BoxFuture<'static, Result<(), pernode_agent::join::JoinError>>;

pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let node_name = args.node_name.clone().unwrap_or_else(host::hostname);
    let root_dir = args
        .root_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(".pernode-agent").join(&node_name));
    let Credentials {
        client,
        cluster_url,
        ca_pem,
        renewal,
    } = credentials(&args, &node_name, &root_dir).await?;
    let server_host = cluster_url
        .host()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']'])
        .to_string();
    let server_port = cluster_url.port_u16().unwrap_or(443);
    let node_ip = match args.node_ip {
        Some(ip) => ip,
        None => {
            let (host, port) = (server_host.as_str(), server_port);
            let target: SocketAddr = (host, port)
                .to_socket_addrs()
                .with_context(|| format!("resolving {host}"))?
                .next()
                .with_context(|| format!("{host} has no address"))?;
            host::source_ip_towards(target).with_context(|| {
                format!("no IPv4 route to the API server at {target}; pass --node-ip")
            })?
        }
    };
    let mut opts = AgentOptions::new(&node_name, node_ip, root_dir);
    opts.labels = node::parse_labels(&args.labels).map_err(anyhow::Error::msg)?;
    opts.taints = node::parse_taints(&args.taints).map_err(anyhow::Error::msg)?;
    opts.pod_manifest_path = args.pod_manifest_path.clone();
    opts.file_check_frequency = args.file_check_frequency;
    let mut images = ImageMap::default();
    if let Some(busybox) =
        agent::env::find_program("busybox", &std::env::var("PATH").unwrap_or_default())
    {
        images
            .add(&format!("busybox={} sh", busybox.display()))
            .map_err(anyhow::Error::msg)?;
    }
    if let Some(path) = &args.image_map {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file = ImageMap::parse(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("parsing {}", path.display()))?;
        images.extend(file);
    }
    for entry in &args.image_commands {
        images.add(entry).map_err(anyhow::Error::msg)?;
    }
    opts.image_map = images;
    opts.listen = SocketAddr::new(args.address, args.port);
    opts.lease_interval = args.lease_interval;
    opts.lease_duration_seconds = args.lease_duration_seconds;
    opts.node_status_interval = args.node_status_interval;
    opts.max_pods = args.max_pods;
    opts.cgroups = match args.cgroup_parent.as_deref() {
        None => CgroupMode::Auto,
        Some("none") => CgroupMode::Disabled,
        Some(p) => CgroupMode::Parent(PathBuf::from(p)),
    };
    // Containers reach the API server where the agent does (there is no service proxy for
    // the `kubernetes` Service's cluster IP).
    opts.api_server = Some((server_host, server_port));
    opts.volume_resync = args.sync_frequency;
    opts.backoff_initial = args.crashloop_backoff_initial;
    opts.backoff_max = args.crashloop_backoff_max;
    opts.runtime = runtime_choice(
        args.runtime.as_deref(),
        args.container_runtime_endpoint.as_deref(),
    )?;
    opts.pod_logs_dir = args.pod_logs_dir.clone();
    opts.server_auth = server_auth(&args, ca_pem)?;
    let renewal = async {
        match renewal {
            Some(renewal) => renewal.await.context("client certificate rotation"),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = agent::run(client, opts) => r.context("node agent"),
        r = renewal => r,
        r = crate::up::shutdown_signal() => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_flags_choose_the_runtime() {
        use agent::RuntimeChoice;
        assert_eq!(
            runtime_choice(None, None).ok(),
            Some(RuntimeChoice::Process)
        );
        assert_eq!(
            runtime_choice(Some("process"), None).ok(),
            Some(RuntimeChoice::Process)
        );
        assert_eq!(
            runtime_choice(None, Some("unix:///run/containerd/containerd.sock")).ok(),
            Some(RuntimeChoice::Cri("/run/containerd/containerd.sock".into()))
        );
        assert!(runtime_choice(Some("process"), Some("unix:///x")).is_err());
        assert!(runtime_choice(Some("remote"), None).is_err());
        assert!(runtime_choice(None, Some("tcp://127.0.0.1:1")).is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
