//! `loginflood`: authorised requests while others fail to log in. The issue's "a flood of
//! failed logins does not slow authorised requests", measured: p50/p99 of an authorised GET
//! alone (`quiet`); with `FLOODERS` clients sending requests with credentials that fail (a
//! forged service-account JWT, a bootstrap token with a wrong secret, a client certificate of
//! another CA) as fast as the server answers them (`flood`); and, as the control, with as
//! many clients sending the same authorised GET (`busy`). On a machine the clients and the
//! server share, any flood takes CPU; failed logins must cost no more than `busy`. `objects`
//! is the number of requests the flooding clients got answered during the phase.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pernode_agent::join::credentials::{self, Auth};

use super::cluster::Cluster;
use super::report::Figure;
use super::store::Limit;

/// Concurrent clients with bad credentials.
const FLOODERS: usize = 24;

/// A GET of `path` with `client`; its status.
async fn get(client: &kube::Client, path: &str) -> anyhow::Result<http::StatusCode> {
    let request = http::Request::get(path).body(kube::client::Body::empty())?;
    let response = client.send(request).await?;
    Ok(response.status())
}

/// Clients that each fail to authenticate.
async fn bad_clients(server: &str, ca_pem: &str) -> anyhow::Result<Vec<kube::Client>> {
    let other_ca = pernode_auth::pki::ClusterCa::generate()?;
    let forged = other_ca.issue_client("system:admin", &["system:masters"], 1)?;
    let jwt = "eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.eyJpc3MiOiJ4In0.c2lnbmF0dXJl";
    let mut clients = Vec::new();
    for i in 0..FLOODERS {
        let auth = match i % 3 {
            0 => Auth::Token(jwt),
            1 => Auth::Token("abcdef.0123456789abcdef"),
            _ => Auth::Certificate {
                cert_pem: &forged.cert_pem,
                key_pem: &forged.key_pem,
            },
        };
        clients.push(credentials::client(server, ca_pem, auth).await?);
    }
    Ok(clients)
}

/// Authorised GETs, one after another, at least `runs` of them and until `until`: their
/// latencies, sorted.
pub(super) async fn authorised(
    cluster: &Cluster,
    runs: usize,
    until: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let path = format!("/api/v1/namespaces/{}", cluster.namespace);
    let mut times = Vec::with_capacity(runs);
    while times.len() < runs.max(1) || Instant::now() < until {
        let start = Instant::now();
        let status = get(&cluster.client, &path).await?;
        times.push(start.elapsed());
        if !status.is_success() {
            bail!("authorised GET {path}: {status}");
        }
    }
    times.sort();
    Ok(times)
}

/// A figure of `scenario`'s `variant` with the percentiles of `times`.
pub(super) fn figure(
    cluster: &Cluster,
    meter: super::report::Meter,
    scenario: &str,
    variant: &str,
    nodes: usize,
    objects: usize,
    times: &[Duration],
) -> Figure {
    let pick = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    let mut f = meter.figure(cluster, &Limit::none(), scenario, variant, nodes, objects);
    f.store_limit_ms = None;
    f.p50_ms = Some(pick(0.5).as_secs_f64() * 1e3);
    f.p99_ms = Some(pick(0.99).as_secs_f64() * 1e3);
    f
}

/// `FLOODERS` clients sending GETs of `path` until stopped, counting answers with `expected`.
struct Flood {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    tasks: tokio::task::JoinSet<anyhow::Result<()>>,
}

impl Flood {
    async fn start(clients: Vec<kube::Client>, path: String, expected: http::StatusCode) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for client in clients {
            let (stop, answered, path) = (stop.clone(), answered.clone(), path.clone());
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let status = get(&client, &path).await?;
                    if status != expected {
                        bail!("GET {path} was answered {status}, expected {expected}");
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            });
        }
        // Under way before the measured phase.
        let warm = Instant::now() + Duration::from_secs(5);
        while answered.load(Ordering::Relaxed) < FLOODERS * 10 && Instant::now() < warm {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Flood {
            stop,
            answered,
            tasks,
        }
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(done) = self.tasks.join_next().await {
            done.context("a flooding client panicked")??;
        }
        Ok(())
    }
}

/// The three figures (`quiet`, `flood`, `busy`), each over `runs` authorised GETs.
pub async fn login_flood(
    cluster: &Cluster,
    nodes: usize,
    runs: usize,
) -> anyhow::Result<Vec<Figure>> {
    let Some(endpoint) = cluster.endpoint() else {
        tracing::warn!("loginflood needs an in-process cluster; skipped");
        return Ok(Vec::new());
    };
    let runs = runs.max(100);
    let meter = super::report::Meter::start(cluster);
    let quiet = authorised(cluster, runs, Instant::now()).await?;
    let mut figures = vec![figure(
        cluster,
        meter,
        "loginflood",
        "quiet",
        nodes,
        0,
        &quiet,
    )];

    let bad = bad_clients(&endpoint.server, &endpoint.ca_pem)
        .await
        .context("clients with bad credentials")?;
    let mut good = Vec::new();
    for _ in 0..FLOODERS {
        let admin = Auth::Certificate {
            cert_pem: &endpoint.admin.cert_pem,
            key_pem: &endpoint.admin.key_pem,
        };
        good.push(credentials::client(&endpoint.server, &endpoint.ca_pem, admin).await?);
    }
    let path = format!("/api/v1/namespaces/{}", cluster.namespace);
    for (variant, clients, expected) in [
        ("flood", bad, http::StatusCode::UNAUTHORIZED),
        ("busy", good, http::StatusCode::OK),
    ] {
        let flood = Flood::start(clients, path.clone(), expected).await;
        let meter = super::report::Meter::start(cluster);
        let before = flood.answered();
        let times = authorised(cluster, runs, Instant::now()).await;
        let answered = flood.answered() - before;
        let stopped = flood.stop().await;
        let times = times?;
        stopped?;
        if answered == 0 {
            bail!("no flooding request was answered during {variant}");
        }
        figures.push(figure(
            cluster,
            meter,
            "loginflood",
            variant,
            nodes,
            answered,
            &times,
        ));
    }
    Ok(figures)
}
