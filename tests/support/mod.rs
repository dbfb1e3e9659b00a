//! Test harness: starts `pernode` as a child process on a free loopback port with its own data
//! dir, and drives it with the real kubectl (on the PATH, as on the machine image).

#![allow(dead_code)]

pub mod agent;
pub mod browser;
pub mod client_script;
pub mod component;
pub mod plugin;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A DaemonSet `agent` (pods labelled `app=agent`, one container `agent` of `busybox:1.36`) on
/// every node.
pub const AGENT_DS: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: busybox:1.36
"#;

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    args: Vec<String>,
}

pub struct Run {
    pub ok: bool,
    /// The exit code (none when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

pub fn kubectl_path() -> String {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let found = Command::new(&kubectl)
        .arg("version")
        .arg("--client")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "these tests drive the real kubectl: `{kubectl}` was not found on the PATH (set KUBECTL to its path)"
    );
    kubectl
}

impl Cluster {
    /// `pernode <command> --listen 127.0.0.1:0 --data-dir <tmp>/data --kubeconfig <tmp>/kubeconfig [extra]`.
    pub fn start(command: &str, extra: &[&str]) -> Cluster {
        Cluster::start_on("127.0.0.1:0", command, extra)
    }

    /// As [`Cluster::start`], listening on `listen` (e.g. `0.0.0.0:0` for other namespaces).
    pub fn start_on(listen: &str, command: &str, extra: &[&str]) -> Cluster {
        let cluster = Cluster::start_unready(listen, command, extra);
        cluster.wait_ready();
        cluster
    }

    /// As [`Cluster::start_on`] without waiting for the server to be ready
    /// ([`Cluster::wait_ready`]).
    pub fn start_unready(listen: &str, command: &str, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec![command.to_string(), "--listen".into(), listen.to_string()];
        args.extend([
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
        ]);
        args.extend([
            "--kubeconfig".into(),
            dir.path().join("kubeconfig").display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cluster = Cluster {
            dir,
            child: None,
            args,
        };
        cluster.spawn_process();
        cluster
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn spawn(&mut self) {
        self.spawn_process();
        self.wait_ready();
    }

    fn spawn_process(&mut self) {
        let _ = std::fs::remove_file(self.kubeconfig());
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let out = std::fs::File::create(self.dir.path().join("server.out")).expect("stdout file");
        let child = Command::new(env!("CARGO_BIN_EXE_pernode"))
            .args(&self.args)
            .stdout(out)
            .stderr(log)
            .spawn()
            .expect("start pernode");
        self.child = Some(child);
    }

    /// Waits until the server has written its kubeconfig and answers `/readyz`.
    pub fn wait_ready(&self) {
        let kubeconfig = self.kubeconfig();
        eventually(
            Duration::from_secs(60),
            "the server writes its kubeconfig and answers /readyz",
            || kubeconfig.exists() && self.kubectl(&["get", "--raw", "/readyz"]).stdout == "ok",
        );
    }

    /// SIGTERM and wait: the server must exit cleanly.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pernode did not exit within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn restart(&mut self) {
        self.spawn();
    }

    /// What the server printed on its standard output (`pernode up`'s usage lines).
    pub fn server_stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.out")).unwrap_or_default()
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(kubectl_path());
        cmd.env("KUBECONFIG", self.kubeconfig())
            .env("KUBECACHEDIR", self.dir.path().join("kubecache"));
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().expect("run kubectl"))
    }

    /// DaemonSet `name` runs `image` on all `nodes` nodes: the controller has seen the
    /// template, and every pod is updated and available.
    pub fn rolled_out(&self, name: &str, image: &str, nodes: usize) -> bool {
        let out = self.kubectl(&["get", "ds", name, "-o", "json"]).stdout;
        let ds: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let status = &ds["status"];
        ds["spec"]["template"]["spec"]["containers"][0]["image"] == image
            && status["observedGeneration"] == ds["metadata"]["generation"]
            && status["desiredNumberScheduled"] == nodes
            && status["updatedNumberScheduled"] == nodes
            && status["numberAvailable"] == nodes
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        Run::from(child.wait_with_output().expect("kubectl output"))
    }

    /// Runs kubectl and asserts it succeeded; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.kubectl(args);
        assert!(
            run.ok,
            "kubectl {args:?} failed:\n{}\n{}\nserver log:\n{}",
            run.stdout,
            run.stderr,
            self.server_log()
        );
        run.stdout
    }

    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let run = self.kubectl_stdin(args, stdin);
        assert!(
            run.ok,
            "kubectl {args:?} failed:\n{}\n{}\nserver log:\n{}",
            run.stdout,
            run.stderr,
            self.server_log()
        );
        run.stdout
    }

    /// Runs kubectl and asserts it failed; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let run = self.kubectl(args);
        assert!(
            !run.ok,
            "kubectl {args:?} should have failed, printed:\n{}",
            run.stdout
        );
        run.stderr
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, content: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, content).expect("write file");
        p.display().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` until it holds or `within` passes (then panics with `what`).
pub fn eventually(within: Duration, what: &str, check: impl FnMut() -> bool) {
    eventually_explained(within, check, || {
        format!("not true within {within:?}: {what}")
    });
}

/// As [`eventually`], panicking with what `explain` says when the time is up (logs, the
/// objects' state): for waits whose failure needs more than a sentence to diagnose.
pub fn eventually_explained(
    within: Duration,
    mut check: impl FnMut() -> bool,
    explain: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{}", explain());
}

/// `tests/bundles/<name>`: a published bundle (sources in `tests/bundles/SOURCES.md`).
pub fn bundle(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bundles")
        .join(name)
}

/// `(kind, name)` of every object in the YAML files at `path` (a file or a folder), as
/// kubectl prints them (`kind.group/name`, lower-case kind).
pub fn objects(path: &PathBuf) -> Vec<(String, String)> {
    // A bundle's own folder only: CRDs kept in a subfolder are applied on their own.
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .expect("bundle folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        f.sort();
        f
    } else {
        vec![path.clone()]
    };
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("bundle file");
        for doc in text.split("\n---") {
            let field = |key: &str| {
                doc.lines().find_map(|l| {
                    l.strip_prefix(key)
                        .map(|v| v.trim().trim_matches('"').to_string())
                })
            };
            let (Some(kind), Some(api_version)) = (field("kind:"), field("apiVersion:")) else {
                continue;
            };
            // The object's own name: the first `  name:` under `metadata:`.
            let name = doc
                .split("\nmetadata:")
                .nth(1)
                .and_then(|m| {
                    m.lines()
                        .take_while(|l| l.is_empty() || l.starts_with(' '))
                        .find_map(|l| l.strip_prefix("  name:"))
                })
                .map(|n| n.trim().trim_matches('"').to_string())
                .unwrap_or_default();
            let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
            let kind = kind.to_lowercase();
            let shown = if group.is_empty() {
                kind
            } else {
                format!("{kind}.{group}")
            };
            out.push((shown, name));
        }
    }
    out
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// The kubeconfig's `key: value` on its one line.
pub fn kubeconfig_field<'a>(kubeconfig: &'a str, key: &str) -> &'a str {
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} in the kubeconfig"))
        .trim()
}

/// Standard base64, as a kubeconfig's `*-data` fields hold PEM.
pub fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

impl Cluster {
    /// A client certificate for `user` in `group` signed by the cluster's CA (in the data dir):
    /// its certificate and key, base64 as a kubeconfig holds them.
    pub fn client_certificate(&self, user: &str, group: &str) -> (String, String) {
        let ca = pernode_auth::pki::ClusterCa::load_or_create(&self.dir.path().join("data/pki"))
            .expect("the cluster CA");
        let cert = ca
            .issue_client(user, &[group], 1)
            .expect("a client certificate");
        (b64(&cert.cert_pem), b64(&cert.key_pem))
    }

    /// A kubeconfig `file` for the same server and CA with these user fields (`{}`: none).
    pub fn kubeconfig_as(&self, file: &str, user: &str) -> String {
        let admin = std::fs::read_to_string(self.kubeconfig()).expect("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    certificate-authority-data: {}\n    server: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {user}\n",
            kubeconfig_field(&admin, "certificate-authority-data:"),
            kubeconfig_field(&admin, "server:"),
        );
        self.write(file, &text)
    }

    /// A kubeconfig `file` for `user` in `group` with a certificate the cluster's CA signed.
    pub fn kubeconfig_with_certificate(&self, file: &str, user: &str, group: &str) -> String {
        let (cert, key) = self.client_certificate(user, group);
        let fields = format!("\n    client-certificate-data: {cert}\n    client-key-data: {key}");
        self.kubeconfig_as(file, &fields)
    }
}

/// GET `path` over HTTPS trusting the kubeconfig's CA, without credentials: status and body
/// (kubectl would prompt for a user name instead).
pub fn anonymous_get(kubeconfig: &str, path: &str) -> (u16, String) {
    use base64::Engine;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let ca = base64::engine::general_purpose::STANDARD
            .decode(kubeconfig_field(kubeconfig, "certificate-authority-data:"))
            .expect("base64");
        let ca =
            pernode_auth::tls::certificates(std::str::from_utf8(&ca).expect("pem")).expect("ca");
        let mut config = kube::Config::new(
            kubeconfig_field(kubeconfig, "server:")
                .parse()
                .expect("url"),
        );
        config.root_cert = Some(ca.into_iter().map(|c| c.to_vec()).collect());
        let client = kube::Client::try_from(config).expect("client");
        let request = http::Request::get(path).body(Vec::new()).expect("request");
        let response = client
            .send(request.map(kube::client::Body::from))
            .await
            .expect("send");
        let code = response.status().as_u16();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body")
            .to_bytes();
        (code, String::from_utf8_lossy(&body).into_owned())
    })
}
