//! End to end through a real CRI runtime: the test starts its own containerd (Debian's, with
//! runc and the overlayfs snapshotter; its own root, state and socket in a temp dir, the CRI
//! plugin's streaming server on loopback), imports small OCI images it builds from the
//! host's busybox-static (a pause image, two tags of an app image) with `ctr images import`,
//! and runs `pernode agent --container-runtime-endpoint unix://...` against `pernode up`,
//! driven by the real kubectl. A hostNetwork DaemonSet with an init container, a ConfigMap
//! volume, an emptyDir and an exec readiness probe reading the config runs Ready, with the
//! node's /etc/hosts and its `hostAliases` as its kubelet-managed /etc/hosts; `kubectl logs` (with `--timestamps`) shows that the init
//! container ran first and that the container read its config and its image's environment;
//! `kubectl exec` (output, stdin, exit code), `kubectl cp` both ways and `kubectl
//! port-forward` reach the container through the agent and containerd's streaming server;
//! `kubectl top pod` shows its figures from containerd's container stats;
//! `kubectl set image` replaces the container; an exec liveness probe reading a file only the
//! host has fails in the container (`Unhealthy` with its output) and restarts it; a
//! container's termination message is what it wrote to /dev/termination-log, or the end of
//! its log when it failed under `FallbackToLogsOnError`; an image that no registry has waits in
//! `ErrImagePull` then `ImagePullBackOff` with upstream's messages and events; a missing image
//! under `imagePullPolicy: Never` is `ErrImageNeverPull`; an image pushed to Debian's
//! docker-registry (on loopback, with a password) is pulled with the pod's `imagePullSecrets`
//! and refused without them; an agent killed and started again adopts the running container;
//! a pod off the host network gets its own address from the CNI plugins (bridge and
//! host-local, on a bridge of the test's) and serves on it; deleting the pods removes their
//! sandboxes. Without containerd, runc, ctr or busybox the test fails saying what to install.

#[path = "support/containerd.rs"]
mod containerd;
mod support;

use std::path::Path;
use std::time::Duration;

use containerd::{
    CNI_SUBNET, Containerd, Registry, build_image, free_port, http_get_from, require,
};
use support::agent::{Agent, UnmountOnDrop};
use support::{Cluster, eventually, eventually_explained};

const NODE: &str = "e2e-cri";
const PAUSE: &str = "localhost/pernode-test/pause:1";
const APP_V1: &str = "localhost/pernode-test/app:1";
const APP_V2: &str = "localhost/pernode-test/app:2";

fn pod_names(c: &Cluster, selector: &str) -> Vec<String> {
    c.kubectl(&[
        "get",
        "pods",
        "-l",
        selector,
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .stdout
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

fn field(c: &Cluster, pod: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")])
        .stdout
}

fn events_of(c: &Cluster, pod: &str) -> String {
    c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
        "-o",
        "jsonpath={range .items[*]}{.type} {.reason} {.message}{\"\\n\"}{end}",
    ])
    .stdout
}

const DAEMONSET: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  greeting: hello from the configmap
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: app
spec:
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      hostNetwork: true
      hostAliases:
      - ip: 10.1.2.3
        hostnames: [foo.local, bar.local]
      terminationGracePeriodSeconds: 5
      initContainers:
      - name: init
        image: localhost/pernode-test/app:1
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "echo init ran > /work/init; echo init done"]
        volumeMounts:
        - {name: work, mountPath: /work}
      containers:
      - name: main
        image: localhost/pernode-test/app:1
        imagePullPolicy: IfNotPresent
        command: [sh, -c]
        args:
        - |
          cat /config/greeting; echo
          cat /work/init
          echo "version=$VERSION"
          trap 'echo stopping; exit 0' TERM
          while true; do sleep 1; done
        readinessProbe:
          periodSeconds: 1
          exec:
            command: [cat, /config/greeting]
        resources:
          limits: {cpu: 200m, memory: 64Mi}
        volumeMounts:
        - {name: config, mountPath: /config}
        - {name: work, mountPath: /work}
      volumes:
      - name: config
        configMap: {name: app-config}
      - name: work
        emptyDir: {}
"#;

/// `kubectl exec`, `cp` and `port-forward` reach the container through the API server, the
/// agent and containerd's streaming server.
fn exec_cp_and_port_forward(c: &Cluster, pod: &str, work: &Path) {
    let out = c.ok(&["exec", pod, "--", "cat", "/config/greeting"]);
    assert_eq!(out, "hello from the configmap");
    let run = c.kubectl(&["exec", pod, "--", "sh", "-c", "exit 3"]);
    assert_eq!(run.code, Some(3), "exit code propagated: {}", run.stderr);
    let echoed = c.ok_stdin(&["exec", "-i", pod, "--", "cat"], "through stdin\n");
    assert_eq!(echoed, "through stdin\n");

    let local = work.join("cp-src.txt");
    std::fs::write(&local, "copied in\n").expect("write");
    c.ok(&[
        "cp",
        &local.display().to_string(),
        &format!("{pod}:/work/in.txt"),
    ]);
    assert_eq!(
        c.ok(&["exec", pod, "--", "cat", "/work/in.txt"]),
        "copied in\n"
    );
    let back = work.join("cp-back.txt");
    c.ok(&[
        "cp",
        &format!("{pod}:/work/in.txt"),
        &back.display().to_string(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&back).expect("copied back"),
        "copied in\n"
    );

    // A server in the pod (on the host's loopback: hostNetwork), reached through
    // `kubectl port-forward`.
    let pod_port = free_port();
    c.ok(&[
        "exec",
        pod,
        "--",
        "httpd",
        "-p",
        &format!("127.0.0.1:{pod_port}"),
        "-h",
        "/config",
    ]);
    let local_port = free_port();
    let _forward = KillOnDrop(
        c.command()
            .args(["port-forward", pod, &format!("{local_port}:{pod_port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kubectl port-forward"),
    );
    let mut body = String::new();
    eventually(
        Duration::from_secs(30),
        "the pod's server answers through kubectl port-forward",
        || {
            body = http_get(local_port, "/greeting").unwrap_or_default();
            body.ends_with("hello from the configmap")
        },
    );
}

/// A child process killed when dropped (also when the test fails).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The response to `GET path` from 127.0.0.1:`port`, headers included.
fn http_get(port: u16, path: &str) -> Option<String> {
    http_get_from("127.0.0.1", port, path)
}

#[test]
fn daemonset_runs_in_containerd_through_cri() {
    let busybox = require("busybox", "busybox-static");
    require("runc", "runc");
    require("ctr", "containerd");
    let work = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(work.path().to_path_buf());
    let containerd = Containerd::start(work.path(), PAUSE);
    let pause = build_image(
        work.path(),
        &busybox,
        PAUSE,
        &["/bin/sleep", "2147483647"],
        &["PATH=/bin"],
    );
    containerd.import(&pause);
    for (name, version) in [(APP_V1, "1"), (APP_V2, "2")] {
        let env = format!("VERSION={version}");
        let tarball = build_image(
            work.path(),
            &busybox,
            name,
            &["/bin/sh"],
            &["PATH=/bin", &env],
        );
        containerd.import(&tarball);
    }

    let c = Cluster::start("up", &["--nodes", "0"]);
    let admin = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let server = support::kubeconfig_field(&admin, "server:").to_string();
    let kc = work.path().join("kubeconfig-node");
    c.node_kubeconfig(&kc, NODE, &server);
    let logs_dir = work.path().join("pod-logs");
    let args: Vec<String> = [
        "agent",
        "--kubeconfig",
        &kc.display().to_string(),
        "--node-name",
        NODE,
        "--node-ip",
        "127.0.0.1",
        "--address",
        "127.0.0.1",
        "--port",
        "0",
        "--root-dir",
        &work.path().join("agent").display().to_string(),
        "--container-runtime-endpoint",
        &format!("unix://{}", containerd.socket.display()),
        "--pod-logs-dir",
        &logs_dir.display().to_string(),
        "--lease-interval",
        "500ms",
        "--node-status-interval",
        "1s",
        "--crashloop-backoff-initial",
        "2s",
        "--crashloop-backoff-max",
        "8s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut agent = Agent::new(args, None, work.path().join("agent.log"));
    agent.spawn();
    let within = Duration::from_secs(90);
    let agent_log = agent.log.clone();
    let diagnostics = |what: &str| {
        format!(
            "{what}\nagent log:\n{}\ncontainerd log (tail):\n{}",
            std::fs::read_to_string(&agent_log).unwrap_or_default(),
            std::fs::read_to_string(&containerd.log)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    eventually(within, "the agent's node is Ready", || {
        c.kubectl(&["get", "node", NODE, "--no-headers"])
            .stdout
            .contains(" Ready ")
    });
    let runtime = c.ok(&[
        "get",
        "node",
        NODE,
        "-o",
        "jsonpath={.status.nodeInfo.containerRuntimeVersion}",
    ]);
    assert!(runtime.starts_with("containerd://"), "{runtime}");

    // The DaemonSet: init container first, config mounted, Ready.
    c.ok_stdin(&["apply", "-f", "-"], DAEMONSET);
    let mut pod = String::new();
    let ready = |c: &Cluster, pod: &mut String| {
        let names = pod_names(c, "app=app");
        let Some(name) = names.first() else {
            return false;
        };
        *pod = name.clone();
        field(c, name, "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"
    };
    eventually_explained(
        within,
        || ready(&c, &mut pod),
        || {
            diagnostics(&format!(
                "the DaemonSet's pod is not Ready: {}",
                c.kubectl(&["get", "pods", "-o", "yaml"]).stdout
            ))
        },
    );
    let id = field(&c, &pod, "{.status.containerStatuses[0].containerID}");
    assert!(id.starts_with("containerd://"), "{id}");
    let init = field(
        &c,
        &pod,
        "{.status.initContainerStatuses[0].state.terminated.reason}",
    );
    assert_eq!(init, "Completed");
    eventually(within, "the container's output is in kubectl logs", || {
        c.kubectl(&["logs", &pod]).stdout.contains("version=1")
    });
    let logs = c.ok(&["logs", &pod]);
    assert_eq!(
        logs, "hello from the configmap\ninit ran\nversion=1\n",
        "the container read its ConfigMap, the init container's file and its image's env"
    );
    assert_eq!(c.ok(&["logs", &pod, "-c", "init"]), "init done\n");
    let stamped = c.ok(&["logs", &pod, "--timestamps"]);
    let first = stamped.lines().next().unwrap_or_default();
    let (time, text) = first.split_once(' ').unwrap_or_default();
    assert_eq!(text, "hello from the configmap", "{stamped}");
    assert!(
        time.len() > 20 && time.contains('T') && time.ends_with('Z'),
        "an RFC 3339 time: {stamped}"
    );
    let events = events_of(&c, &pod);
    for expected in [
        "Normal Pulled Container image \"localhost/pernode-test/app:1\" already present on machine",
        "Normal Created Created container: init",
        "Normal Started Started container main",
    ] {
        assert!(events.contains(expected), "{expected:?} in\n{events}");
    }
    // The container got its cgroup limits through the CRI.
    let cid = id.trim_start_matches("containerd://");
    let (_, info) = containerd.ctr(&["containers", "info", cid]);
    assert!(
        info.contains("\"quota\": 20000") && info.contains("\"limit\": 67108864"),
        "cpu quota and memory limit in the OCI spec: {info}"
    );

    // The kubelet-managed /etc/hosts of a hostNetwork pod: the node's, then the aliases.
    let hosts = c.ok(&["exec", &pod, "--", "cat", "/etc/hosts"]);
    let node_hosts = std::fs::read_to_string("/etc/hosts").expect("the node's /etc/hosts");
    assert_eq!(
        hosts,
        format!(
            "# Kubernetes-managed hosts file (host network).\n{node_hosts}\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"
        )
    );

    // The agent restarted (killed): it adopts the running container, neither restarting nor
    // duplicating it.
    let containers = containerd.containers();
    let adopted = |log: &str| log.matches("adopted running container").count();
    let adoptions = adopted(&agent.log_text());
    agent.kill9();
    agent.spawn();
    eventually_explained(
        within,
        || adopted(&agent.log_text()) > adoptions,
        || diagnostics("the restarted agent does not adopt the running container"),
    );
    assert_eq!(
        field(&c, &pod, "{.status.containerStatuses[0].containerID}"),
        id
    );
    assert_eq!(
        field(&c, &pod, "{.status.containerStatuses[0].restartCount}"),
        "0"
    );
    assert_eq!(containerd.containers(), containers);
    eventually(within, "the pod stays Ready", || {
        field(
            &c,
            &pod,
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        ) == "True"
    });

    exec_cp_and_port_forward(&c, &pod, work.path());

    // `kubectl top pod`: the runtime's container stats through the agent's summary.
    let mut top = String::new();
    eventually(
        within,
        "kubectl top pod shows the container's figures",
        || {
            top = c
                .kubectl(&["top", "pod", &pod, "--containers", "--no-headers"])
                .stdout;
            top.starts_with(&pod) && top.contains(" main ") && top.contains("Mi")
        },
    );

    // A new image replaces the container (a new pod), which stopped gracefully.
    c.ok(&["set", "image", "ds/app", &format!("main={APP_V2}")]);
    let mut replaced = String::new();
    eventually(within, "the rollout runs the new image", || {
        let names = pod_names(&c, "app=app");
        match names.as_slice() {
            [one] if *one != pod => {
                replaced = one.clone();
                c.kubectl(&["logs", one]).stdout.contains("version=2")
            }
            _ => false,
        }
    });
    eventually(within, "the old pod's sandbox is removed", || {
        !containerd
            .containers()
            .iter()
            .any(|c| id.trim_start_matches("containerd://") == c)
    });

    // An exec probe runs in the container: a file only the host has is not there.
    let host_only = work.path().join("host-only");
    std::fs::write(&host_only, "only on the host").expect("host file");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: unhealthy
spec:
  nodeName: {NODE}
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {APP_V1}
    imagePullPolicy: IfNotPresent
    command: [sleep, "600"]
    livenessProbe:
      periodSeconds: 1
      failureThreshold: 1
      exec:
        command: [cat, {host_only}]
"#,
            host_only = host_only.display()
        ),
    );
    let missing = format!(
        "Warning Unhealthy Liveness probe failed: cat: can't open '{}': No such file or directory",
        host_only.display()
    );
    eventually(within, "the liveness probe fails in the container", || {
        events_of(&c, "unhealthy").contains(&missing)
    });
    eventually(
        within,
        "the failed liveness probe restarts the container",
        || {
            field(
                &c,
                "unhealthy",
                "{.status.containerStatuses[0].restartCount}",
            )
            .parse::<u32>()
            .is_ok_and(|n| n >= 1)
        },
    );
    c.ok(&["delete", "pod", "unhealthy", "--wait=false"]);

    // Termination messages: the container's own file at /dev/termination-log, or the end of
    // its log when it failed without one under FallbackToLogsOnError.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: goodbye
spec:
  nodeName: {NODE}
  hostNetwork: true
  restartPolicy: Never
  containers:
  - name: c
    image: {APP_V1}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "printf 'bye from the container' > /dev/termination-log"]
---
apiVersion: v1
kind: Pod
metadata:
  name: crashed
spec:
  nodeName: {NODE}
  hostNetwork: true
  restartPolicy: Never
  containers:
  - name: c
    image: {APP_V1}
    imagePullPolicy: IfNotPresent
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, "echo something broke >&2; exit 2"]
"#
        ),
    );
    let message = |pod: &str| {
        field(
            &c,
            pod,
            "{.status.containerStatuses[0].state.terminated.message}",
        )
    };
    eventually(within, "the container's termination message", || {
        message("goodbye") == "bye from the container"
    });
    eventually(within, "the end of the failed container's log", || {
        message("crashed") == "something broke\n"
    });
    c.ok(&["delete", "pod", "goodbye", "crashed", "--wait=false"]);

    // An image no registry has: ErrImagePull, then ImagePullBackOff, as upstream.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: missing
spec:
  nodeName: {NODE}
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/pernode-test/missing:1
---
apiVersion: v1
kind: Pod
metadata:
  name: never
spec:
  nodeName: {NODE}
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: localhost/pernode-test/missing:1
    imagePullPolicy: Never
"#
        ),
    );
    let waiting = |pod: &str| {
        field(
            &c,
            pod,
            "{.status.containerStatuses[0].state.waiting.reason}",
        )
    };
    let mut seen_pull_error = false;
    eventually(within, "ErrImagePull then ImagePullBackOff", || {
        match waiting("missing").as_str() {
            "ErrImagePull" => seen_pull_error = true,
            "ImagePullBackOff" => return seen_pull_error,
            _ => {}
        }
        false
    });
    assert_eq!(
        field(
            &c,
            "missing",
            "{.status.containerStatuses[0].state.waiting.message}"
        ),
        "Back-off pulling image \"localhost/pernode-test/missing:1\""
    );
    eventually(within, "the pull's events", || {
        let events = events_of(&c, "missing");
        events.contains("Normal Pulling Pulling image \"localhost/pernode-test/missing:1\"")
            && events.contains("Warning Failed Failed to pull image \"localhost/pernode-test/missing:1\": rpc error:")
            && events.contains("Warning Failed Error: ErrImagePull")
            && events.contains("Normal BackOff Back-off pulling image \"localhost/pernode-test/missing:1\"")
            && events.contains("Warning Failed Error: ImagePullBackOff")
    });
    eventually(within, "ErrImageNeverPull under policy Never", || {
        waiting("never") == "ErrImageNeverPull"
    });
    assert_eq!(
        field(
            &c,
            "never",
            "{.status.containerStatuses[0].state.waiting.message}"
        ),
        "Container image \"localhost/pernode-test/missing:1\" is not present with pull policy of Never"
    );

    // A pod on the CNI network: its own address from the bridge's range, reachable from the
    // node, and exec runs in its network namespace.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: on-cni
spec:
  nodeName: {NODE}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {APP_V1}
    command: ["sh", "-c", "echo on the pod network > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
"#
        ),
    );
    let mut pod_ip = String::new();
    eventually_explained(
        within,
        || {
            pod_ip = field(&c, "on-cni", "{.status.podIP}");
            pod_ip.starts_with(&format!("{CNI_SUBNET}."))
                && field(
                    &c,
                    "on-cni",
                    "{.status.conditions[?(@.type==\"Ready\")].status}",
                ) == "True"
        },
        || {
            diagnostics(&format!(
                "the CNI pod does not run with an address of {CNI_SUBNET}.0/24: {}",
                c.kubectl(&["describe", "pod", "on-cni"]).stdout
            ))
        },
    );
    assert_eq!(field(&c, "on-cni", "{.status.podIPs[0].ip}"), pod_ip);
    assert_ne!(field(&c, "on-cni", "{.status.hostIP}"), pod_ip);
    // The pod's own network namespace holds the address (its routing table's local entries).
    let addresses = c.ok(&["exec", "on-cni", "--", "cat", "/proc/net/fib_trie"]);
    assert!(
        addresses.contains(&format!("|-- {pod_ip}\n")),
        "{addresses}"
    );
    let mut answer = String::new();
    eventually(within, "the pod's server answers at the pod IP", || {
        answer = http_get_from(&pod_ip, 8080, "/").unwrap_or_default();
        answer.contains("on the pod network")
    });
    c.ok(&["delete", "pod", "on-cni", "--wait=false"]);

    // A private image: refused without credentials, pulled with the pod's imagePullSecrets.
    let registry = Registry::start(work.path(), "puller", "s3cret-pw");
    containerd.trust_plain_http(&registry.host);
    let private = format!("{}/pernode-test/private:1", registry.host);
    let tarball = build_image(
        work.path(),
        &busybox,
        &private,
        &[
            "/bin/sh",
            "-c",
            "echo from the private registry; sleep 3600",
        ],
        &["PATH=/bin"],
    );
    containerd.import(&tarball);
    let (pushed, out) = containerd.ctr(&[
        "images",
        "push",
        "--plain-http",
        "--user",
        "puller:s3cret-pw",
        &private,
    ]);
    assert!(
        pushed,
        "ctr images push: {out}\nregistry log:\n{}",
        std::fs::read_to_string(&registry.log).unwrap_or_default()
    );
    // Only the registry has it now: the pods must pull it.
    let (removed, out) = containerd.ctr(&["images", "rm", &private]);
    assert!(removed, "ctr images rm: {out}");
    c.ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={}", registry.host),
        "--docker-username=puller",
        "--docker-password=s3cret-pw",
    ]);
    let private_pod = |name: &str, secrets: &str| {
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {NODE}
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  {secrets}
  containers:
  - name: c
    image: {private}
"#
        )
    };
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "{}---\n{}",
            private_pod("private-anonymous", ""),
            private_pod("private-with-secret", "imagePullSecrets: [{name: regcred}]")
        ),
    );
    eventually_explained(
        within,
        || {
            c.kubectl(&["logs", "private-with-secret"])
                .stdout
                .contains("from the private registry")
        },
        || {
            diagnostics(&format!(
                "the pod with the pull secret does not run: {}\nregistry log:\n{}",
                c.kubectl(&["describe", "pod", "private-with-secret"])
                    .stdout,
                std::fs::read_to_string(&registry.log).unwrap_or_default()
            ))
        },
    );
    eventually(within, "the pod without it cannot pull", || {
        matches!(
            waiting("private-anonymous").as_str(),
            "ErrImagePull" | "ImagePullBackOff"
        ) && events_of(&c, "private-anonymous").contains("401 Unauthorized")
    });
    c.ok(&[
        "delete",
        "pod",
        "private-anonymous",
        "private-with-secret",
        "--wait=false",
    ]);

    // Everything deleted: every sandbox and container is gone from the runtime.
    c.ok(&["delete", "ds", "app", "--wait=false"]);
    c.ok(&["delete", "pod", "missing", "never", "--wait=false"]);
    eventually(within, "the pods are gone", || {
        c.kubectl(&["get", "pods", "-o", "name"])
            .stdout
            .trim()
            .is_empty()
    });
    eventually_explained(
        within,
        || containerd.containers().is_empty(),
        || {
            diagnostics(&format!(
                "containers left in containerd: {:?} (replaced pod {replaced})",
                containerd.containers()
            ))
        },
    );
    drop(agent);
}
