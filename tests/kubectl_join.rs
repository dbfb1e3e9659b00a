//! Joining nodes with a bootstrap token, end to end, as `kubeadm token create
//! --print-join-command` and `kubeadm join` with the kubelet's TLS bootstrap: two real
//! agents start from the printed command alone, get their own `system:node:<name>`
//! certificates through CertificateSigningRequests that the controllers approve and sign,
//! run a DaemonSet's pods, renew their certificates before expiry, and restart without the
//! token. A wrong CA pin or token secret is refused before anything is sent.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{Cluster, eventually};

/// A running `pernode agent`, killed on drop.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent_args(join: &[String], name: &str, ip: &str, root: &Path) -> Vec<String> {
    let mut args: Vec<String> = join.iter().skip(1).cloned().collect();
    for extra in [
        "--node-name",
        name,
        "--node-ip",
        ip,
        "--address",
        ip,
        "--port",
        "0",
        "--root-dir",
        &root.display().to_string(),
        "--lease-interval",
        "500ms",
        "--node-status-interval",
        "1s",
        "--cgroup-parent",
        "none",
    ] {
        args.push(extra.to_string());
    }
    args
}

fn spawn(args: &[String], log: PathBuf) -> Agent {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("agent log");
    let child = Command::new(env!("CARGO_BIN_EXE_pernode"))
        .args(args)
        .env("RUST_LOG", "pernode_agent=info")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("start the agent");
    Agent { child, log }
}

/// Runs the agent expecting it to give up; returns what it printed.
fn refused(args: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pernode"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the agent");
    assert!(!out.status.success(), "the agent should have refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ready(c: &Cluster, node: &str) -> bool {
    c.kubectl(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ])
    .stdout
        == "True"
}

/// `username condition...` of every CSR, one per line.
fn requests(c: &Cluster) -> Vec<String> {
    c.ok(&[
        "get",
        "csr",
        "-o",
        "jsonpath={range .items[*]}{.spec.username} {.status.conditions[*].type} {.status.certificate}{\"\\n\"}{end}",
    ])
    .lines()
    .map(|l| l.to_string())
    .collect()
}

/// Issued requests by `user`.
fn issued_by(c: &Cluster, user: &str) -> usize {
    requests(c)
        .iter()
        .filter(|l| {
            let mut f = l.split(' ');
            f.next() == Some(user)
                && f.next() == Some("Approved")
                && f.next().is_some_and(|c| !c.is_empty())
        })
        .count()
}

fn whoami(c: &Cluster, kubeconfig: &Path) -> String {
    let run = Command::new(support::kubectl_path())
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("KUBECACHEDIR", c.path("kubecache-node"))
        .output()
        .expect("kubectl");
    String::from_utf8_lossy(&run.stdout).into_owned()
}

const DAEMONSET: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: joined
spec:
  selector:
    matchLabels: {app: joined}
  template:
    metadata:
      labels: {app: joined}
    spec:
      automountServiceAccountToken: false
      containers:
      - name: sleeper
        image: sleeper
        command: ["sleep", "3600"]
"#;

#[test]
fn agents_join_with_a_token_and_renew_their_certificates() {
    // Certificates of 40 s: each agent renews at 70-84% of that.
    let c = Cluster::start("up", &["--nodes", "0", "--cluster-signing-duration", "40s"]);
    let out = Command::new(env!("CARGO_BIN_EXE_pernode"))
        .args(["token", "create", "--print-join-command", "--kubeconfig"])
        .arg(c.kubeconfig())
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let join: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        join[..2],
        ["pernode".to_string(), "agent".to_string()],
        "{join:?}"
    );
    let flag = |name: &str| {
        let at = join.iter().position(|a| a == name).expect(name);
        join[at + 1].clone()
    };
    let (token, pin) = (flag("--token"), flag("--ca-cert-hash"));
    assert!(flag("--server").starts_with("https://127.0.0.1:"));
    assert!(pin.starts_with("sha256:") && pin.len() == 71, "{pin}");
    let work = tempfile::tempdir().expect("dir");

    // Refused before any request: a pin of another CA, a token the server does not know,
    // and no pin at all.
    let root = work.path().join("bad");
    let wrong_pin: Vec<String> = join
        .iter()
        .map(|a| {
            if *a == pin {
                format!("sha256:{}", "0".repeat(64))
            } else {
                a.clone()
            }
        })
        .collect();
    let err = refused(&agent_args(&wrong_pin, "bad", "127.0.0.30", &root));
    assert!(
        err.contains("none of the public keys") && err.contains("are pinned"),
        "{err}"
    );
    let (id, _) = token.split_once('.').expect("token");
    let wrong_secret: Vec<String> = join
        .iter()
        .map(|a| {
            if *a == token {
                format!("{id}.aaaaaaaaaaaaaaaa")
            } else {
                a.clone()
            }
        })
        .collect();
    let err = refused(&agent_args(&wrong_secret, "bad", "127.0.0.30", &root));
    assert!(err.contains("failed to verify JWS signature"), "{err}");
    let no_pin: Vec<String> = join
        .iter()
        .filter(|a| **a != pin && *a != "--ca-cert-hash")
        .cloned()
        .collect();
    let err = refused(&agent_args(&no_pin, "bad", "127.0.0.30", &root));
    assert!(err.contains("--ca-cert-hash"), "{err}");
    assert!(requests(&c).is_empty(), "nothing was requested");

    // Two agents join from the printed command.
    let roots: Vec<PathBuf> = (1..=2)
        .map(|i| work.path().join(format!("join-{i}")))
        .collect();
    let args: Vec<Vec<String>> = (1..=2)
        .map(|i| {
            agent_args(
                &join,
                &format!("join-{i}"),
                &format!("127.0.0.3{i}"),
                &roots[i - 1],
            )
        })
        .collect();
    let mut agents: Vec<Agent> = (1..=2)
        .map(|i| spawn(&args[i - 1], work.path().join(format!("join-{i}.log"))))
        .collect();
    let logs = |agents: &[Agent]| {
        agents
            .iter()
            .map(Agent::log)
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    eventually(
        Duration::from_secs(60),
        "both joined nodes are Ready",
        || ready(&c, "join-1") && ready(&c, "join-2"),
    );
    let bootstrap_user = format!("system:bootstrap:{id}");
    assert_eq!(issued_by(&c, &bootstrap_user), 2, "{:?}", requests(&c));
    let table = c.ok(&["get", "csr"]);
    assert!(
        table.contains("kubernetes.io/kube-apiserver-client-kubelet"),
        "{table}"
    );
    assert!(table.contains("Approved,Issued"), "{table}");

    // The kubeconfig each agent wrote is the node's identity, usable by kubectl.
    let kubeconfig = roots[0].join("kubeconfig");
    assert_eq!(whoami(&c, &kubeconfig), "system:node:join-1");
    let forbidden = Command::new(support::kubectl_path())
        .args(["label", "node", "join-2", "stolen=yes"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("kubectl");
    assert!(
        String::from_utf8_lossy(&forbidden.stderr)
            .contains("node 'join-1' cannot read 'join-2', only its own Node object"),
        "{}",
        String::from_utf8_lossy(&forbidden.stderr)
    );

    // They run a DaemonSet's pods.
    c.ok_stdin(&["apply", "-f", "-"], DAEMONSET);
    eventually(
        Duration::from_secs(60),
        "the DaemonSet is ready on both nodes",
        || {
            c.kubectl(&[
                "get",
                "ds",
                "joined",
                "-o",
                "jsonpath={.status.numberReady}",
            ])
            .stdout
                == "2"
        },
    );

    // Each renews its certificate with the current one (selfnodeclient), and keeps going.
    let link = roots[0].join("pki/kubelet-client-current.pem");
    let first = std::fs::read_link(&link).expect("current certificate link");
    eventually(
        Duration::from_secs(90),
        "both agents renewed their certificates",
        || issued_by(&c, "system:node:join-1") >= 1 && issued_by(&c, "system:node:join-2") >= 1,
    );
    assert_ne!(
        std::fs::read_link(&link).expect("link"),
        first,
        "{}",
        logs(&agents)
    );
    assert_eq!(whoami(&c, &kubeconfig), "system:node:join-1");
    eventually(
        Duration::from_secs(30),
        "the nodes stay Ready on renewed certificates",
        || ready(&c, "join-1") && ready(&c, "join-2"),
    );
    assert!(
        logs(&agents).contains("rotated the client certificate"),
        "{}",
        logs(&agents)
    );

    // Restarted without its token (deleted meanwhile), an agent keeps its credentials.
    c.ok(&[
        "-n",
        "kube-system",
        "delete",
        "secret",
        &format!("bootstrap-token-{id}"),
    ]);
    agents.remove(0);
    let restarted = spawn(&args[0], work.path().join("join-1-again.log"));
    eventually(
        Duration::from_secs(30),
        "the restarted agent reuses its certificate",
        || {
            restarted
                .log()
                .contains("reusing the node's client certificate")
        },
    );
    eventually(
        Duration::from_secs(30),
        "the restarted node is Ready",
        || ready(&c, "join-1"),
    );
    assert_eq!(
        issued_by(&c, &bootstrap_user),
        2,
        "no new bootstrap request"
    );
}
