//! End to end: an API server (`pernode up --nodes 0`, controllers included) and three real
//! agents, each in its own network namespace (a veth pair and addresses of this test's own),
//! running a DaemonSet whose pods are small HTTP servers with readiness and liveness probes,
//! driven by the real kubectl. Without permission for namespaces (or without `ip`), the same
//! test runs with the agents on loopback addresses (127.0.0.11-13) and says so
//! (`PERNODE_E2E_LOOPBACK=1` forces that mode).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::agent::{Agent, UnmountOnDrop};
use support::{Cluster, eventually};

const NODES: usize = 3;

/// Where the agents run.
enum Net {
    /// One namespace per agent: (namespace, host-side address, agent address).
    Namespaces(Vec<(String, String, String)>),
    Loopback,
}

impl Net {
    fn setup() -> Net {
        if std::env::var_os("PERNODE_E2E_LOOPBACK").is_some() {
            println!("PERNODE_E2E_LOOPBACK is set: running the agents on loopback");
            return Net::Loopback;
        }
        let tag = std::process::id() % 10_000;
        let subnet = 100 + (std::process::id() % 40) as usize * 3;
        let mut made = Vec::new();
        for i in 1..=NODES {
            let ns = format!("pne2e{tag}-{i}");
            let host_if = format!("pn{tag}h{i}");
            let node_if = format!("pn{tag}n{i}");
            let host_ip = format!("10.213.{}.1", subnet + i);
            let node_ip = format!("10.213.{}.2", subnet + i);
            let steps: Vec<Vec<String>> = vec![
                vec!["netns".into(), "add".into(), ns.clone()],
                vec![
                    "link".into(),
                    "add".into(),
                    host_if.clone(),
                    "type".into(),
                    "veth".into(),
                    "peer".into(),
                    "name".into(),
                    node_if.clone(),
                ],
                vec![
                    "link".into(),
                    "set".into(),
                    node_if.clone(),
                    "netns".into(),
                    ns.clone(),
                ],
                vec![
                    "addr".into(),
                    "add".into(),
                    format!("{host_ip}/24"),
                    "dev".into(),
                    host_if.clone(),
                ],
                vec!["link".into(), "set".into(), host_if.clone(), "up".into()],
                vec![
                    "-n".into(),
                    ns.clone(),
                    "addr".into(),
                    "add".into(),
                    format!("{node_ip}/24"),
                    "dev".into(),
                    node_if.clone(),
                ],
                vec![
                    "-n".into(),
                    ns.clone(),
                    "link".into(),
                    "set".into(),
                    node_if.clone(),
                    "up".into(),
                ],
                vec![
                    "-n".into(),
                    ns.clone(),
                    "link".into(),
                    "set".into(),
                    "lo".into(),
                    "up".into(),
                ],
            ];
            for step in steps {
                let out = Command::new("ip")
                    .args(&step)
                    .stderr(Stdio::piped())
                    .output();
                let ok = out.as_ref().is_ok_and(|o| o.status.success());
                if !ok {
                    let why = out
                        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                        .unwrap_or_else(|e| e.to_string());
                    if i == 1 && step[0] == "netns" {
                        println!(
                            "network namespaces unavailable (`ip netns add`: {why}): running the agents on loopback"
                        );
                    } else {
                        println!(
                            "network setup failed (`ip {}`: {why}): running the agents on loopback",
                            step.join(" ")
                        );
                    }
                    Net::Namespaces(made).teardown();
                    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
                    return Net::Loopback;
                }
            }
            made.push((ns, host_ip, node_ip));
        }
        println!(
            "running the agents in network namespaces {:?}",
            made.iter().map(|m| &m.0).collect::<Vec<_>>()
        );
        Net::Namespaces(made)
    }

    fn teardown(&self) {
        if let Net::Namespaces(made) = self {
            for (ns, _, _) in made {
                // Anything still running in the namespace goes with it.
                if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                        let _ = Command::new("kill").args(["-KILL", pid]).status();
                    }
                }
                // Deleting the namespace deletes its veth end, and with it the host's end.
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
    }

    /// The API server's listen address.
    fn listen(&self) -> &'static str {
        match self {
            Net::Namespaces(..) => "0.0.0.0:0",
            Net::Loopback => "127.0.0.1:0",
        }
    }

    /// The agent's own IP (its node's InternalIP) for node `i` (1-based).
    fn node_ip(&self, i: usize) -> String {
        match self {
            Net::Namespaces(made) => made[i - 1].2.clone(),
            Net::Loopback => format!("127.0.0.{}", 10 + i),
        }
    }

    /// The address the agent reaches the API server at.
    fn server_host(&self, i: usize) -> String {
        match self {
            Net::Namespaces(made) => made[i - 1].1.clone(),
            Net::Loopback => "127.0.0.1".into(),
        }
    }

    fn namespace(&self, i: usize) -> Option<String> {
        match self {
            Net::Namespaces(made) => Some(made[i - 1].0.clone()),
            Net::Loopback => None,
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// PIDs of processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = state
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'));
            !zombie && String::from_utf8_lossy(&cmd).contains(marker)
        })
        .collect()
}

fn python() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then_some(path)
}

fn daemonset(python: &str, dir: &Path, version: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: x
spec:
  selector:
    matchLabels: {{app: x}}
  updateStrategy:
    rollingUpdate: {{maxUnavailable: 1}}
  template:
    metadata:
      labels: {{app: x}}
      annotations: {{version: "{version}"}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: python:3
        command: [sh, -c]
        args:
        - mkdir -p {dir}/$(NODE) && touch {dir}/$(NODE)/alive && echo serving on $(NODE) && exec {python} -u -m http.server 8080 --bind $(POD_IP) --directory {dir}/$(NODE)
        env:
        - name: NODE
          valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
        - name: POD_IP
          valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 1
        livenessProbe:
          httpGet: {{path: /alive, port: 8080}}
          initialDelaySeconds: 1
          periodSeconds: 1
          failureThreshold: 2
"#,
        dir = dir.display()
    )
}

fn pod_on(c: &Cluster, node: &str) -> Option<(String, i64, bool)> {
    let out = c.kubectl(&[
        "get", "pods", "-l", "app=x", "--field-selector", &format!("spec.nodeName={node}"),
        "-o", "jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].ready} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.len() != 1 {
        return None;
    }
    let f: Vec<&str> = lines[0].split_whitespace().collect();
    if f.len() != 3 {
        return None; // terminating, or status not yet reported
    }
    Some((f[0].to_string(), f[1].parse().ok()?, f[2] == "true"))
}

fn node_field(c: &Cluster, node: &str, path: &str) -> String {
    c.kubectl(&["get", "node", node, "-o", &format!("jsonpath={path}")])
        .stdout
}

/// `kubectl exec` (through the API server to the agent, over kubectl's WebSocket protocol)
/// runs commands with the container's environment, passes stdin, propagates exit codes;
/// `kubectl cp` (tar through exec) copies both ways; attach and port-forward, which host
/// processes cannot serve, are refused with the agent's reason.
fn exec_and_cp(c: &Cluster, pod: &str, work: &Path) {
    let out = c.ok(&[
        "exec",
        pod,
        "--",
        "sh",
        "-c",
        "echo node=$NODE; echo err >&2",
    ]);
    assert_eq!(out, "node=e2e-1\n");
    let run = c.kubectl(&["exec", pod, "--", "sh", "-c", "exit 3"]);
    assert_eq!(run.code, Some(3), "exit code propagated: {}", run.stderr);
    let echoed = c.ok_stdin(&["exec", "-i", pod, "--", "cat"], "through stdin\n");
    assert_eq!(echoed, "through stdin\n");
    let missing = c.fails(&["exec", pod, "--", "no-such-command"]);
    assert!(
        missing.contains("executable file not found in $PATH"),
        "{missing}"
    );

    let local = work.join("cp-src.txt");
    std::fs::write(&local, "copied in\n").expect("write");
    let remote_dir = work.join("cp-remote");
    std::fs::create_dir_all(&remote_dir).expect("mkdir");
    let remote = format!("{pod}:{}/in.txt", remote_dir.display());
    c.ok(&["cp", &local.display().to_string(), &remote]);
    assert_eq!(
        std::fs::read_to_string(remote_dir.join("in.txt")).expect("copied in"),
        "copied in\n"
    );
    let back = work.join("cp-back.txt");
    c.ok(&["cp", &remote, &back.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(&back).expect("copied back"),
        "copied in\n"
    );

    // `-it`: a terminal (kubectl's own from `script`), which the command sees as its own.
    let line = format!(
        "{} exec -it {pod} -- sh -c 'test -t 0 && echo on a tty'",
        support::kubectl_path()
    );
    let tty = Command::new("script")
        .env("KUBECONFIG", c.kubeconfig())
        .env("KUBECACHEDIR", c.path("kubecache"))
        .args(["-qec", &line, "/dev/null"])
        .output()
        .expect("script");
    assert!(
        String::from_utf8_lossy(&tty.stdout).contains("on a tty"),
        "{}",
        String::from_utf8_lossy(&tty.stderr)
    );

    let attach = c.fails(&["attach", pod]);
    assert!(
        attach.contains("attach is not supported by the process runtime"),
        "{attach}"
    );
}

/// The agent's Summary API through the node proxy, and `kubectl top` from the API server's
/// `metrics.k8s.io` built on it.
fn stats_and_top(c: &Cluster, pod: &str) {
    let within = Duration::from_secs(60);
    eventually(
        within,
        "the summary has CPU rates for the node and the pod",
        || {
            let raw = c.kubectl(&["get", "--raw", "/api/v1/nodes/e2e-1/proxy/stats/summary"]);
            let Ok(summary) = serde_json::from_str::<serde_json::Value>(&raw.stdout) else {
                return false;
            };
            let Some(entry) = summary["pods"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["podRef"]["name"] == pod))
            else {
                return false;
            };
            let web = &entry["containers"][0];
            summary["node"]["cpu"]["usageCoreNanoSeconds"].as_u64() > Some(0)
                && summary["node"]["memory"]["workingSetBytes"].as_u64() > Some(0)
                && summary["node"]["cpu"]["usageNanoCores"].is_u64()
                && web["name"] == "web"
                && web["memory"]["workingSetBytes"].as_u64() > Some(0)
                && web["cpu"]["usageNanoCores"].is_u64()
        },
    );
    let mut top = String::new();
    eventually(within, "kubectl top pod shows the pod's figures", || {
        top = c.kubectl(&["top", "pod", pod, "--no-headers"]).stdout;
        top.starts_with(pod) && top.contains("Mi")
    });
    let nodes = c.ok(&["top", "node", "--no-headers"]);
    let line = nodes
        .lines()
        .find(|l| l.starts_with("e2e-1 "))
        .unwrap_or_default();
    assert!(line.contains('%') && line.contains("Mi"), "{nodes}");
}

#[test]
fn three_agents_run_a_daemonset_of_http_servers() {
    let Some(python) = python() else {
        panic!("this test runs python3's http.server as the daemon: python3 is not on the PATH");
    };
    let net = Net::setup();
    // The agents reach the server at the host's end of their links: the serving certificate
    // must name those addresses.
    let sans = (1..=NODES)
        .map(|i| net.server_host(i))
        .collect::<Vec<_>>()
        .join(",");
    let c = Cluster::start_on(
        net.listen(),
        "up",
        &[
            "--nodes",
            "0",
            "--node-monitor-grace-period",
            "4s",
            "--tls-san",
            &sans,
        ],
    );
    let kubeconfig = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let port = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .and_then(|s| s.rsplit(':').next())
        .expect("server port")
        .to_string();
    let work = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(work.path().to_path_buf());
    let serve = work.path().join("serve");
    let mut agents: Vec<Agent> = (1..=NODES)
        .map(|i| {
            let kc = work.path().join(format!("kubeconfig-{i}"));
            let server = format!("https://{}:{port}", net.server_host(i));
            // Each agent is its node (`system:node:e2e-<i>` in `system:nodes`), as a kubelet:
            // the Node authorizer and NodeRestriction decide what it may do.
            c.node_kubeconfig(&kc, &format!("e2e-{i}"), &server);
            let ip = net.node_ip(i);
            let args: Vec<String> = [
                "agent",
                "--kubeconfig",
                &kc.display().to_string(),
                "--node-name",
                &format!("e2e-{i}"),
                "--node-ip",
                &ip,
                "--address",
                &ip,
                "--port",
                "10250",
                "--root-dir",
                &work.path().join(format!("agent-{i}")).display().to_string(),
                "--lease-interval",
                "500ms",
                "--node-status-interval",
                "1s",
                "--crashloop-backoff-initial",
                "1s",
                "--crashloop-backoff-max",
                "4s",
                "--cgroup-parent",
                "none",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut a = Agent::new(
                args,
                net.namespace(i),
                work.path().join(format!("agent-{i}.log")),
            );
            a.spawn();
            a
        })
        .collect();
    let logs = |agents: &[Agent]| {
        agents
            .iter()
            .map(Agent::log_text)
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    let within = Duration::from_secs(60);
    eventually(within, "three agent nodes Ready", || {
        let out = c.kubectl(&["get", "nodes", "--no-headers"]).stdout;
        out.lines().filter(|l| l.contains(" Ready ")).count() == NODES
    });
    for i in 1..=NODES {
        let addr = node_field(
            &c,
            &format!("e2e-{i}"),
            "{.status.addresses[?(@.type==\"InternalIP\")].address}",
        );
        assert_eq!(addr, net.node_ip(i));
    }

    c.ok_stdin(&["apply", "-f", "-"], &daemonset(&python, &serve, "1"));
    let marker = serve.display().to_string();
    eventually(within, "the daemon set is Ready on every node", || {
        c.kubectl(&["get", "ds", "x", "-o", "jsonpath={.status.numberReady}"])
            .stdout
            == "3"
    });
    let pid_of = |node: usize| -> Option<u32> {
        let mut pids = processes_with(&format!("{marker}/e2e-{node}"));
        pids.retain(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains("http.server"))
                .unwrap_or(false)
        });
        (pids.len() == 1).then(|| pids[0])
    };
    let mut pids = Vec::new();
    for i in 1..=NODES {
        let pid = pid_of(i)
            .unwrap_or_else(|| panic!("exactly one process for node e2e-{i}:\n{}", logs(&agents)));
        if let Some(ns) = net.namespace(i) {
            let out = Command::new("ip")
                .args(["netns", "identify", &pid.to_string()])
                .output()
                .expect("ip");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                ns,
                "the process runs in its node's namespace"
            );
        }
        pids.push(pid);
    }
    let (_, _, ready) = pod_on(&c, "e2e-1").expect("pod on e2e-1");
    assert!(ready);

    // The kubelet's core metrics of one node, through the API server's node proxy (as
    // Prometheus scrapes kubelets): its one pod and container, started once.
    let kubelet = pernode_apiserver::metrics::Samples::parse(&c.ok(&[
        "get",
        "--raw",
        "/api/v1/nodes/e2e-1/proxy/metrics",
    ]));
    assert_eq!(kubelet.get("kubelet_running_pods", &[]), 1.0);
    let running = [("container_state", "running")];
    assert_eq!(kubelet.get("kubelet_running_containers", &running), 1.0);
    let started = [("container_type", "container")];
    assert_eq!(
        kubelet.get("kubelet_started_containers_total", &started),
        1.0
    );
    assert_eq!(
        kubelet.get("kubelet_pod_start_duration_seconds_count", &[]),
        1.0
    );

    // kubectl logs ds/x: through the API server to the agent of one of the pods.
    eventually(
        within,
        "kubectl logs ds/x shows the server's output",
        || {
            let out = c.kubectl(&["logs", "ds/x"]).stdout;
            out.contains("serving on e2e-") && out.contains("GET /alive")
        },
    );
    let tail = c.ok(&["logs", "ds/x", "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");

    let pod1 = pod_on(&c, "e2e-1").expect("pod on e2e-1").0;
    exec_and_cp(&c, &pod1, work.path());
    stats_and_top(&c, &pod1);

    // A killed process is restarted.
    let (pod1, restarts1, _) = pod_on(&c, "e2e-1").expect("pod");
    let _ = Command::new("kill")
        .args(["-KILL", &pids[0].to_string()])
        .status();
    eventually(within, "the killed process is restarted and Ready", || {
        pod_on(&c, "e2e-1").is_some_and(|(n, r, ready)| n == pod1 && r > restarts1 && ready)
            && pid_of(1).is_some_and(|p| p != pids[0])
    });
    let prev = c.ok(&["logs", &pod1, "--previous"]);
    assert!(prev.contains("serving on e2e-1"), "{prev}");

    // A failing liveness probe restarts it.
    let (pod2, restarts2, _) = pod_on(&c, "e2e-2").expect("pod");
    std::fs::remove_file(serve.join("e2e-2/alive")).expect("remove alive");
    eventually(
        within,
        "a failing liveness probe restarts the container",
        || {
            pod_on(&c, "e2e-2").is_some_and(|(n, r, ready)| n == pod2 && r > restarts2 && ready)
                && pid_of(2).is_some_and(|p| p != pids[1])
        },
    );

    // A rolling update replaces every process.
    let before: Vec<u32> = (1..=NODES)
        .map(|i| pid_of(i).expect("one process"))
        .collect();
    c.ok_stdin(&["apply", "-f", "-"], &daemonset(&python, &serve, "2"));
    c.ok(&["rollout", "status", "ds/x", "--timeout=120s"]);
    eventually(
        within,
        "one new process per node after the rolling update",
        || (1..=NODES).all(|i| pid_of(i).is_some_and(|p| !before.contains(&p))),
    );

    // An agent killed: its node goes Unknown and tainted; its daemon pod (and process) stay.
    let pid3 = pid_of(3).expect("process on e2e-3");
    let (pod3, _, _) = pod_on(&c, "e2e-3").expect("pod on e2e-3");
    agents[2].kill9();
    eventually(
        within,
        "the silent node is Unknown and tainted unreachable",
        || {
            node_field(
                &c,
                "e2e-3",
                "{.status.conditions[?(@.type==\"Ready\")].status}",
            ) == "Unknown"
                && node_field(&c, "e2e-3", "{.spec.taints[*].key}")
                    .contains("node.kubernetes.io/unreachable")
        },
    );
    let names = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=x",
        "--field-selector",
        "spec.nodeName=e2e-3",
        "-o",
        "name",
    ]);
    assert_eq!(
        names.trim(),
        format!("pod/{pod3}"),
        "the daemon pod is kept"
    );
    assert!(processes_with(&format!("{marker}/e2e-3")).contains(&pid3));

    // The agent restarted: taints gone, the same process, no duplicate.
    agents[2].spawn();
    eventually(within, "the node is Ready again without taints", || {
        node_field(
            &c,
            "e2e-3",
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        ) == "True"
            && !node_field(&c, "e2e-3", "{.spec.taints[*].key}").contains("node.kubernetes.io/")
    });
    eventually(within, "the pod is Ready again", || {
        pod_on(&c, "e2e-3").is_some_and(|(n, _, r)| n == pod3 && r)
    });
    assert_eq!(
        pid_of(3),
        Some(pid3),
        "the restarted agent adopted the process, no duplicate:\n{}",
        logs(&agents)
    );

    // A node deleted: its pod is cleaned up and its process stops.
    let pid2 = pid_of(2).expect("process on e2e-2");
    c.ok(&["delete", "node", "e2e-2"]);
    eventually(within, "the deleted node's pod is gone", || {
        c.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=x",
            "--field-selector",
            "spec.nodeName=e2e-2",
            "-o",
            "name",
        ])
        .stdout
        .trim()
        .is_empty()
    });
    eventually(within, "the deleted node's process stops", || {
        !processes_with(&format!("{marker}/e2e-2")).contains(&pid2)
    });
    eventually(within, "the daemon set counts two nodes", || {
        c.kubectl(&[
            "get",
            "ds",
            "x",
            "-o",
            "jsonpath={.status.desiredNumberScheduled}",
        ])
        .stdout
            == "2"
    });

    // Clean up: deleting the daemon set stops the remaining processes.
    c.ok(&["delete", "ds", "x"]);
    eventually(within, "every daemon process stops", || {
        processes_with(&marker).is_empty()
    });
    drop(agents);
    drop(c);
    drop(net);
}
