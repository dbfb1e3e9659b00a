//! `slowclients`: authorised requests while hundreds of clients hold connections without
//! finishing a request (issue 22's slow-connection test, with its timing goal measured here
//! rather than asserted in a test). An authorised GET's p50/p99 alone (`quiet`), then for
//! [`PHASE`] while [`DRIBBLING`] connections send a TLS record a byte at a time and [`IDLE`]
//! connections send nothing (`slow`). Both kinds are cut by the server's handshake timeout
//! (32 s, longer than the phase); the figure's `objects` (in `--json`) counts the slow
//! connections the server had closed by the end of the phase (0 expected), and the run fails if
//! it closed them all. The connections come from several
//! loopback addresses, so that none reaches the server's bound on one client's connections.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::cluster::Cluster;
use super::login_flood::{authorised, figure};
use super::report::{Figure, Meter};

/// Connections dribbling a TLS record.
const DRIBBLING: usize = 500;
/// Connections that send nothing.
const IDLE: usize = 2_000;
/// How long the slow connections are held while GETs are measured.
const PHASE: Duration = Duration::from_secs(30);
/// A TLS handshake record header announcing 16 KiB that never all arrive.
const RECORD_HEADER: [u8; 5] = [0x16, 0x03, 0x01, 0x40, 0x00];

/// A connection to `server` from the loopback address number `i`.
async fn connect(i: usize, server: SocketAddr) -> anyhow::Result<tokio::net::TcpStream> {
    let source = IpAddr::from([127, 0, 2, (i % 100) as u8 + 1]);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    socket
        .connect(server)
        .await
        .with_context(|| format!("connect from {source}"))
}

/// Whether the server has closed `stream` (without waiting).
fn closed_by_server(stream: &tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(stream.try_read(&mut buf), Ok(0))
}

/// The `quiet` and `slow` figures.
pub async fn slow_clients(
    cluster: &Cluster,
    nodes: usize,
    runs: usize,
) -> anyhow::Result<Vec<Figure>> {
    let Some(endpoint) = cluster.endpoint() else {
        tracing::warn!("slowclients needs an in-process cluster; skipped");
        return Ok(Vec::new());
    };
    let server: SocketAddr = endpoint
        .server
        .trim_start_matches("https://")
        .parse()
        .context("the server's address")?;
    let runs = runs.max(100);
    let meter = Meter::start(cluster);
    let quiet = authorised(cluster, runs, Instant::now()).await?;
    let mut figures = vec![figure(
        cluster,
        meter,
        "slowclients",
        "quiet",
        nodes,
        0,
        &quiet,
    )];

    let bar = super::progress(DRIBBLING + IDLE, "slow connections");
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        idle.push(connect(i, server).await?);
        bar.inc(1);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicUsize::new(0));
    let mut dribblers = tokio::task::JoinSet::new();
    for i in 0..DRIBBLING {
        let mut stream = connect(IDLE + i, server).await?;
        bar.inc(1);
        let (stop, cut) = (stop.clone(), cut.clone());
        dribblers.spawn(async move {
            let bytes = RECORD_HEADER.iter().chain(std::iter::repeat(&0u8));
            for byte in bytes {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let mut answer = [0u8; 64];
                let closed = stream.write_all(&[*byte]).await.is_err()
                    || matches!(
                        tokio::time::timeout(Duration::from_millis(100), stream.read(&mut answer))
                            .await,
                        Ok(Ok(0) | Err(_))
                    );
                if closed {
                    cut.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        });
    }
    bar.finish_and_clear();

    let meter = Meter::start(cluster);
    let times = authorised(cluster, runs, Instant::now() + PHASE).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = dribblers.join_next().await {
        done.context("a dribbling client panicked")?;
    }
    let times = times?;
    let closed = cut.load(Ordering::Relaxed) + idle.iter().filter(|s| closed_by_server(s)).count();
    if closed == DRIBBLING + IDLE {
        bail!("the server closed every slow connection before the phase ended");
    }
    figures.push(figure(
        cluster,
        meter,
        "slowclients",
        "slow",
        nodes,
        closed,
        &times,
    ));
    Ok(figures)
}
