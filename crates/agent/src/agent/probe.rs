//! Container probes (startup, liveness, readiness) with exec, httpGet and tcpSocket actions
//! and upstream's timing: nothing before `initialDelaySeconds` after the container started,
//! then one probe every `periodSeconds`, each bounded by `timeoutSeconds`; a result flips only
//! after `successThreshold` successes or `failureThreshold` failures in a row. Exec probes run
//! inside the container through its runtime (`ContainerRuntime::exec_sync`), as the kubelet's
//! prober runs them through the CRI's `ExecSync`: the command's output and exit code decide,
//! and a command that could not be run at all is an error, not a failure.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::runtime::{ContainerId, ContainerRuntime, ExecSyncResult};

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `startupProbe`: gates the other two; failing it restarts the container.
    Startup,
    /// `livenessProbe`: failing it restarts the container.
    Liveness,
    /// `readinessProbe`: decides the container's `ready`.
    Readiness,
}

impl Kind {
    /// The name upstream uses in events and messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// What a probe does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run a command in the container; exit code 0 is success.
    Exec(Vec<String>),
    /// GET `scheme://host:port/path`; a status in 200..400 is success.
    Http {
        host: String,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    /// A TCP connection that opens is success.
    Tcp { host: String, port: u16 },
}

/// A probe with its timing, defaults filled in as upstream's defaulting does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds` of the probe, if set (liveness and startup).
    pub termination_grace: Option<Duration>,
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

/// Resolves a port that may name one of the container's ports.
fn port_of(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("couldn't find port {name:?} in the container")),
    }
}

impl Spec {
    /// The probe's spec; `host` is where the container listens (the pod IP, here the node's).
    pub fn from_probe(probe: &Probe, container: &Container, host: &str) -> Result<Spec, String> {
        let action = if let Some(e) = &probe.exec {
            // Upstream expands `$(VAR)` from the container's literal `env` values only.
            let vars: HashMap<String, String> = container
                .env
                .iter()
                .flatten()
                .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                .collect();
            Action::Exec(
                e.command
                    .iter()
                    .flatten()
                    .map(|a| super::env::expand(a, &vars))
                    .collect(),
            )
        } else if let Some(h) = &probe.http_get {
            if h.scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
            {
                return Err("httpGet with scheme HTTPS is not supported by pernode agent".into());
            }
            Action::Http {
                host: h
                    .host
                    .clone()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| host.to_string()),
                port: port_of(&h.port, container)?,
                path: h
                    .path
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "/".into()),
                headers: h
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            }
        } else if let Some(t) = &probe.tcp_socket {
            Action::Tcp {
                host: t
                    .host
                    .clone()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| host.to_string()),
                port: port_of(&t.port, container)?,
            }
        } else {
            return Err("probe has no exec, httpGet or tcpSocket action".into());
        };
        Ok(Spec {
            action,
            initial_delay: secs(probe.initial_delay_seconds, 0),
            period: secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            termination_grace: probe
                .termination_grace_period_seconds
                .map(|s| Duration::from_secs(s.max(0) as u64)),
        })
    }

    /// Runs the probe once, bounded by its timeout; exec probes in container `id`.
    pub async fn run(&self, runtime: &dyn ContainerRuntime, id: &ContainerId) -> Outcome {
        match &self.action {
            Action::Exec(cmd) if cmd.is_empty() => {
                Outcome::Error("exec probe has an empty command".into())
            }
            Action::Exec(cmd) => {
                exec_outcome(cmd, runtime.exec_sync(id, cmd.clone(), self.timeout).await)
            }
            _ => self.run_network().await,
        }
    }

    /// Runs an httpGet or tcpSocket probe once, bounded by its timeout.
    async fn run_network(&self) -> Outcome {
        let run = async {
            match &self.action {
                Action::Tcp { host, port } => TcpStream::connect((host.as_str(), *port))
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("dial tcp {host}:{port}: {}", dial_error(&e))),
                Action::Http {
                    host,
                    port,
                    path,
                    headers,
                } => http_get(host, *port, path, headers).await,
                Action::Exec(_) => Err("an exec probe runs in its container".to_string()),
            }
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(())) => Outcome::Success,
            Ok(Err(why)) => Outcome::Failure(why),
            // Go's words for a dial or a request past its deadline, as upstream's probes say.
            Err(_) => Outcome::Failure(match &self.action {
                Action::Http {
                    host, port, path, ..
                } => format!(
                    "Get \"http://{host}:{port}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                ),
                Action::Tcp { host, port } => format!("dial tcp {host}:{port}: i/o timeout"),
                Action::Exec(_) => format!("timeout after {}s", self.timeout.as_secs()),
            }),
        }
    }
}

/// A failed connect as Go's net package words it (`connect: connection refused`), which
/// upstream's probe output shows: the system's text of the error, lower-cased as Go's.
fn dial_error(e: &std::io::Error) -> String {
    let Some(code) = e.raw_os_error() else {
        return e.to_string();
    };
    let text = std::io::Error::from_raw_os_error(code).to_string();
    let text = text
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&text);
    let mut chars = text.chars();
    let lowered: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("connect: {lowered}")
}

/// One run of a probe, as upstream's prober tells them apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// It failed: the output upstream's `Unhealthy` event shows (`<Kind> probe failed: ...`).
    Failure(String),
    /// It could not be run; upstream records `<Kind> probe errored ...` and counts nothing.
    Error(String),
}

impl Outcome {
    /// The `Unhealthy` event's message for this outcome of a `kind` probe, if it warrants one.
    pub fn event_message(&self, kind: Kind) -> Option<String> {
        match self {
            Outcome::Success => None,
            Outcome::Failure(output) => Some(format!("{} probe failed: {output}", kind.name())),
            Outcome::Error(why) => Some(format!(
                "{} probe errored and resulted in unknown state: {why}",
                kind.name()
            )),
        }
    }
}

/// An exec probe's outcome from what its command did (upstream's exec prober): exit code 0 is
/// success whatever it printed; another is a failure showing the output; a timeout is a
/// failure naming the command (the kubelet's `command "..." timed out`).
pub fn exec_outcome(cmd: &[String], ran: Result<ExecSyncResult, String>) -> Outcome {
    match ran {
        Ok(ExecSyncResult::Exited { code: 0, .. }) => Outcome::Success,
        Ok(ExecSyncResult::Exited { output, .. }) => {
            Outcome::Failure(String::from_utf8_lossy(&output).into_owned())
        }
        Ok(ExecSyncResult::TimedOut) => {
            Outcome::Failure(format!("command {:?} timed out", cmd.join(" ")))
        }
        Err(why) => Outcome::Error(why),
    }
}

/// A minimal HTTP/1.1 GET: success when the status code is in 200..400, as upstream.
async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let mut stream = TcpStream::connect((host, port)).await.map_err(|e| {
        format!(
            "Get \"http://{host}:{port}{path}\": dial tcp {host}:{port}: {}",
            dial_error(&e)
        )
    })?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    // Only the status line matters.
    while !buf.contains(&b'\n') && buf.len() < 4096 {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "malformed HTTP response".to_string())?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

/// Counts consecutive results and decides when the probe's result flips (upstream's worker:
/// `resultRun` against the thresholds).
#[derive(Clone, Debug)]
pub struct Tracker {
    success_threshold: u32,
    failure_threshold: u32,
    last: Option<bool>,
    run: u32,
    /// The current (thresholded) result.
    pub result: Option<bool>,
}

impl Tracker {
    /// A tracker starting at `initial` (readiness: failure; liveness: success; startup: none).
    pub fn new(spec: &Spec, initial: Option<bool>) -> Tracker {
        Tracker {
            success_threshold: spec.success_threshold,
            failure_threshold: spec.failure_threshold,
            last: None,
            run: 0,
            result: initial,
        }
    }

    /// Records one probe outcome; returns the new result when it flips.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if self.last == Some(ok) {
            self.run += 1;
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let threshold = if ok {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        if self.run < threshold || self.result == Some(ok) {
            return None;
        }
        self.result = Some(ok);
        Some(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, ExecAction, HTTPGetAction, TCPSocketAction};

    fn spec(success: u32, failure: u32) -> Spec {
        Spec {
            action: Action::Exec(vec!["true".into()]),
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
            termination_grace: None,
        }
    }

    #[test]
    fn defaults_follow_upstream() {
        let probe = Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("http".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = Container {
            name: "c".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        };
        let s = Spec::from_probe(&probe, &c, "10.0.0.1").expect("spec");
        assert_eq!(
            s.action,
            Action::Tcp {
                host: "10.0.0.1".into(),
                port: 8080
            }
        );
        assert_eq!(s.initial_delay, Duration::ZERO);
        assert_eq!(s.period, Duration::from_secs(10));
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!((s.success_threshold, s.failure_threshold), (1, 3));

        let probe = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(80),
                path: Some("/healthz".into()),
                ..Default::default()
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(2),
            timeout_seconds: Some(3),
            success_threshold: Some(2),
            failure_threshold: Some(4),
            ..Default::default()
        };
        let s = Spec::from_probe(&probe, &c, "10.0.0.1").expect("spec");
        assert_eq!(s.initial_delay, Duration::from_secs(5));
        assert_eq!(s.period, Duration::from_secs(2));
        assert_eq!(s.timeout, Duration::from_secs(3));
        assert_eq!((s.success_threshold, s.failure_threshold), (2, 4));
        let bad = Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("nope".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(Spec::from_probe(&bad, &c, "h").is_err());
    }

    #[test]
    fn thresholds_flip_after_runs_in_a_row() {
        let s = spec(2, 3);
        let mut t = Tracker::new(&s, Some(false));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(true));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None); // the run is broken
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
        let mut startup = Tracker::new(&spec(1, 3), None);
        assert_eq!(startup.record(true), Some(true));
    }

    #[tokio::test]
    async fn network_actions_succeed_and_fail() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let port = listener.local_addr().expect("addr").port();
        // A tiny HTTP server: /ok answers 200, anything else 500.
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let code = if req.starts_with("GET /ok ") {
                    "200 OK"
                } else {
                    "500 Oops"
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let c = Container::default();
        let http = |path: &str| Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(port.into()),
                path: Some(path.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ok = Spec::from_probe(&http("/ok"), &c, "127.0.0.1").expect("spec");
        assert_eq!(ok.run_network().await, Outcome::Success);
        let bad = Spec::from_probe(&http("/bad"), &c, "127.0.0.1").expect("spec");
        assert_eq!(
            bad.run_network().await,
            Outcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        let tcp = Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(port.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            Spec::from_probe(&tcp, &c, "127.0.0.1")
                .expect("spec")
                .run_network()
                .await,
            Outcome::Success
        );
    }

    #[tokio::test]
    async fn network_failures_are_worded_as_upstreams() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let c = Container::default();
        let tcp = Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(port.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            Spec::from_probe(&tcp, &c, "127.0.0.1")
                .expect("spec")
                .run_network()
                .await,
            Outcome::Failure(format!(
                "dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
        let http = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(port.into()),
                path: Some("/healthz".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            Spec::from_probe(&http, &c, "127.0.0.1")
                .expect("spec")
                .run_network()
                .await,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
        // A server that accepts and never answers: the request's deadline passes.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let silent_port = silent.local_addr().expect("addr").port();
        let mut hanging = Spec::from_probe(&http, &c, "127.0.0.1").expect("spec");
        hanging.action = Action::Http {
            host: "127.0.0.1".into(),
            port: silent_port,
            path: "/".into(),
            headers: Vec::new(),
        };
        hanging.timeout = Duration::from_millis(200);
        assert_eq!(
            hanging.run_network().await,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{silent_port}/\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ))
        );
        drop(silent);
    }

    #[test]
    fn exec_commands_expand_literal_env_values_only() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c",
            "env": [
                {"name": "FILE", "value": "/etc/ready"},
                {"name": "FROM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
        }))
        .expect("container");
        let probe = Probe {
            exec: Some(ExecAction {
                command: Some(vec![
                    "cat".into(),
                    "$(FILE)".into(),
                    "$(FROM)$(NONE)".into(),
                ]),
            }),
            ..Default::default()
        };
        let s = Spec::from_probe(&probe, &c, "h").expect("spec");
        assert_eq!(
            s.action,
            Action::Exec(vec!["cat".into(), "/etc/ready".into(), "$(NONE)".into()])
        );
    }

    #[test]
    fn exec_outcomes_and_their_events_follow_upstream() {
        let cmd: Vec<String> = vec!["sh".into(), "-c".into(), "sleep 5".into()];
        let exited = |code, output: &str| {
            Ok(ExecSyncResult::Exited {
                code,
                output: output.as_bytes().to_vec(),
            })
        };
        assert_eq!(exec_outcome(&cmd, exited(0, "noise")), Outcome::Success);
        let failed = exec_outcome(&cmd, exited(1, "cat: /x: No such file or directory\n"));
        assert_eq!(
            failed.event_message(Kind::Liveness).as_deref(),
            Some("Liveness probe failed: cat: /x: No such file or directory\n")
        );
        let timed_out = exec_outcome(&cmd, Ok(ExecSyncResult::TimedOut));
        assert_eq!(
            timed_out.event_message(Kind::Readiness).as_deref(),
            Some("Readiness probe failed: command \"sh -c sleep 5\" timed out")
        );
        let errored = exec_outcome(&cmd, Err("rpc error: code = Unknown desc = boom".into()));
        assert_eq!(
            errored.event_message(Kind::Startup).as_deref(),
            Some(
                "Startup probe errored and resulted in unknown state: rpc error: code = Unknown desc = boom"
            )
        );
        assert_eq!(Outcome::Success.event_message(Kind::Liveness), None);
    }
}
