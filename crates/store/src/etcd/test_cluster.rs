//! A throwaway 3-member etcd cluster for tests: each member on free loopback ports, its data
//! and log in a temporary directory, killed (and the directory removed) when dropped.
//!
//! Needs the `etcd` binary (`$ETCD_BIN`, else `etcd` on the PATH); without it
//! [`TestCluster::start`] fails saying so, so that tests needing etcd fail rather than pass
//! unseen.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};
use parking_lot::Mutex;
use thiserror::Error;

/// Why a test cluster could not start.
#[derive(Debug, Error)]
pub enum TestClusterError {
    #[error(
        "cannot run `{binary}`: {source}. The etcd tests run a real 3-member etcd cluster: \
         install etcd (Debian: `apt-get install etcd-server`; CI does) or set ETCD_BIN"
    )]
    NoBinary {
        binary: String,
        source: std::io::Error,
    },
    #[error("test cluster i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("etcd member {member} exited early ({status}); its log:\n{log}")]
    Exited {
        member: usize,
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("etcd member {member} was not healthy within {timeout:?}; its log:\n{log}")]
    Unhealthy {
        member: usize,
        timeout: Duration,
        log: String,
    },
}

const HEALTHY_WITHIN: Duration = Duration::from_secs(30);

struct Member {
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// A running cluster. Members are numbered 0..3.
pub struct TestCluster {
    dir: PathBuf,
    binary: String,
    token: String,
    members: Vec<Member>,
}

impl TestCluster {
    /// Starts three members and waits (with a deadline) until each answers a read. A member
    /// that exits at once (another process took its port between our pick and its bind) makes
    /// a new cluster on other ports, a few times.
    pub async fn start() -> Result<TestCluster, TestClusterError> {
        let mut tries = 3;
        loop {
            match TestCluster::start_once().await {
                Err(TestClusterError::Exited { log, .. })
                    if tries > 1 && log.contains("address already in use") =>
                {
                    tries -= 1;
                }
                other => return other,
            }
        }
    }

    async fn start_once() -> Result<TestCluster, TestClusterError> {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let binary = std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into());
        if let Err(source) = Command::new(&binary)
            .arg("--version")
            .stdout(Stdio::null())
            .output()
        {
            return Err(TestClusterError::NoBinary { binary, source });
        }
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let token = format!("pernode-test-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&token);
        std::fs::create_dir_all(&dir)?;
        let mut members = Vec::new();
        for _ in 0..3 {
            members.push(Member {
                client_port: free_port()?,
                peer_port: free_port()?,
                child: None,
            });
        }
        let mut cluster = TestCluster {
            dir,
            binary,
            token,
            members,
        };
        for i in 0..3 {
            cluster.spawn(i, "new")?;
        }
        for i in 0..3 {
            cluster.wait_healthy(i).await?;
        }
        Ok(cluster)
    }

    /// `etcd://127.0.0.1:a,127.0.0.1:b,127.0.0.1:c`, for `--store`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect();
        format!("etcd://{}", hosts.join(","))
    }

    /// `http://127.0.0.1:port` of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// Kills member `i` (SIGKILL) and waits for it to exit.
    pub fn stop_member(&mut self, i: usize) {
        if let Some(mut child) = self.members.get_mut(i).and_then(|m| m.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a stopped member again on its data directory and waits until it answers.
    pub async fn start_member(&mut self, i: usize) -> Result<(), TestClusterError> {
        self.start_members(&[i]).await
    }

    /// Starts stopped members together (a member alone cannot answer without a quorum) and
    /// waits until each answers.
    pub async fn start_members(&mut self, ids: &[usize]) -> Result<(), TestClusterError> {
        for &i in ids {
            self.spawn(i, "existing")?;
        }
        for &i in ids {
            self.wait_healthy(i).await?;
        }
        Ok(())
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<(), TestClusterError> {
        let peers: Vec<String> = self
            .members
            .iter()
            .enumerate()
            .map(|(j, m)| format!("m{j}=http://127.0.0.1:{}", m.peer_port))
            .collect();
        let Some(member) = self.members.get(i) else {
            return Ok(());
        };
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        let child = Command::new(&self.binary)
            .arg("--name")
            .arg(format!("m{i}"))
            .arg("--data-dir")
            .arg(self.dir.join(format!("m{i}")))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &peers.join(",")])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            // Quicker elections than the defaults (100 ms, 1 s): members start and stop often.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|source| TestClusterError::NoBinary {
                binary: self.binary.clone(),
                source,
            })?;
        if let Some(member) = self.members.get_mut(i) {
            member.child = Some(child);
        }
        Ok(())
    }

    async fn wait_healthy(&mut self, i: usize) -> Result<(), TestClusterError> {
        let Some(endpoint) = self.endpoints().get(i).cloned() else {
            return Ok(());
        };
        let deadline = Instant::now() + HEALTHY_WITHIN;
        loop {
            if let Some(child) = self.members.get_mut(i).and_then(|m| m.child.as_mut())
                && let Some(status) = child.try_wait()?
            {
                return Err(TestClusterError::Exited {
                    member: i,
                    status,
                    log: self.log_tail(i),
                });
            }
            if answers(&endpoint).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(TestClusterError::Unhealthy {
                    member: i,
                    timeout: HEALTHY_WITHIN,
                    log: self.log_tail(i),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("m{i}.log"))
    }

    fn log_tail(&self, i: usize) -> String {
        let log = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The directory holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop_member(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a linearizable read through this member alone succeeds within a second (it needs
/// the member up and a leader elected).
async fn answers(endpoint: &str) -> bool {
    let read = async {
        let options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(1));
        let mut client = Client::connect([endpoint], Some(options)).await.ok()?;
        client.get("health", None).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), read).await,
        Ok(Some(_))
    )
}

/// A loopback port nobody listens on now (the OS's pick for a throwaway listener), never one
/// this process handed out before: clusters of tests running in parallel do not collide.
fn free_port() -> std::io::Result<u16> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if GIVEN.lock().insert(port) {
            return Ok(port);
        }
    }
}
