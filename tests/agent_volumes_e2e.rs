//! End to end: `pernode up` and a real `pernode agent` (as `system:node:e2e-vol`, a client
//! certificate, on loopback), driven by the real kubectl. Pods get what a kubelet gives them:
//! a container running the real kubectl with no kubeconfig finds the API server through its
//! in-cluster configuration (the projected token and `ca.crt`, `KUBERNETES_SERVICE_HOST`/
//! `PORT`) and is refused by RBAC until a ClusterRoleBinding lets its service account list
//! nodes; a ConfigMap volume shows at its mountPath and follows `kubectl apply`; a pod whose
//! ConfigMap is missing waits in ContainerCreating with a FailedMount event until it exists.
//! The containers run in their own mount namespaces, so the agent runs as root (as CI does).

mod support;

use std::path::Path;
use std::time::Duration;

use support::agent::{Agent, UnmountOnDrop};
use support::{Cluster, eventually, kubectl_path};

const NODE: &str = "e2e-vol";

fn pod_field(c: &Cluster, pod: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")])
        .stdout
}

fn logs(c: &Cluster, pod: &str) -> String {
    c.kubectl(&["logs", pod]).stdout
}

fn config_map(name: &str, key: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  {key}: {value}\n")
}

/// A pod on `node` running `script` in `sh`, with `extra` appended to its spec.
fn pod_on(node: &str, name: &str, script: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, {script:?}]
{extra}"#
    )
}

/// A pod on the first test's node.
fn pod(name: &str, script: &str, extra: &str) -> String {
    pod_on(NODE, name, script, extra)
}

/// Starts a real agent as `node` (root dir and log under `work`) and waits for its node to
/// be Ready.
fn start_agent(c: &Cluster, work: &Path, node: &str) -> Agent {
    let admin = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let server = support::kubeconfig_field(&admin, "server:").to_string();
    let kc = work.join("kubeconfig-node");
    c.node_kubeconfig(&kc, node, &server);
    let args: Vec<String> = [
        "agent",
        "--kubeconfig",
        &kc.display().to_string(),
        "--node-name",
        node,
        "--node-ip",
        "127.0.0.1",
        "--address",
        "127.0.0.1",
        "--port",
        "0",
        "--root-dir",
        &work.join("agent").display().to_string(),
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
    let mut agent = Agent::new(args, None, work.join("agent.log"));
    agent.spawn();
    eventually(Duration::from_secs(60), "the agent's node is Ready", || {
        c.kubectl(&["get", "node", node, "--no-headers"])
            .stdout
            .contains(" Ready ")
    });
    agent
}

/// The messages of the events about `pod` with `reason`, one a line.
fn event_messages(c: &Cluster, pod: &str, reason: &str) -> String {
    c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod},reason={reason}"),
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ])
    .stdout
}

#[test]
fn pods_get_api_credentials_and_config_volumes() {
    // The container runs kubectl from the PATH the agent passes on.
    let kubectl = kubectl_path();
    let c = Cluster::start("up", &["--nodes", "0"]);
    let work = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(work.path().to_path_buf());
    let agent = start_agent(&c, work.path(), NODE);
    let within = Duration::from_secs(60);

    // In-cluster kubectl: no kubeconfig, an empty HOME.
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let script = format!(
        "while true; do {kubectl} get nodes --no-headers 2>&1; sleep 1; done",
        kubectl = Path::new(&kubectl).display()
    );
    let extra = format!(
        "    env:\n    - name: HOME\n      value: {}\n",
        home.display()
    );
    c.ok_stdin(&["apply", "-f", "-"], &pod("incluster", &script, &extra));
    let forbidden = "Error from server (Forbidden): nodes is forbidden: User \"system:serviceaccount:default:default\" cannot list resource \"nodes\" in API group \"\" at the cluster scope";
    eventually(within, "in-cluster kubectl is refused by RBAC", || {
        logs(&c, "incluster").contains(forbidden)
    });
    let env = pod_field(&c, "incluster", "{.spec.containers[0].env[*].name}");
    assert_eq!(env, "HOME", "the pod itself names no API server");
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: node-lister
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: default-lists-nodes
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: node-lister
subjects:
- kind: ServiceAccount
  name: default
  namespace: default
"#,
    );
    eventually(within, "in-cluster kubectl lists the nodes", || {
        logs(&c, "incluster")
            .lines()
            .any(|l| l.starts_with(NODE) && l.contains(" Ready "))
    });

    // A ConfigMap volume at its mountPath, following the ConfigMap.
    let mnt = work.path().join("mnt/app");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &config_map("app", "greeting", "hello"),
    );
    let script = format!(
        "while true; do echo \"greeting=$(cat {}/greeting)\"; sleep 0.5; done",
        mnt.display()
    );
    let extra = format!(
        "    volumeMounts:\n    - name: cfg\n      mountPath: {}\n  volumes:\n  - name: cfg\n    configMap:\n      name: app\n",
        mnt.display()
    );
    c.ok_stdin(&["apply", "-f", "-"], &pod("reader", &script, &extra));
    eventually(within, "the pod reads the ConfigMap", || {
        logs(&c, "reader").contains("greeting=hello")
    });
    assert_eq!(
        std::fs::read_dir(&mnt).expect("mount point").count(),
        0,
        "the mount is the container's own: the host's directory stays empty"
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &config_map("app", "greeting", "goodbye"),
    );
    eventually(within, "the pod sees the applied change", || {
        logs(&c, "reader").contains("greeting=goodbye")
    });

    // A missing ConfigMap holds the pod in ContainerCreating with a FailedMount event.
    let late = work.path().join("mnt/late");
    let script = format!("cat {}/key; echo; exec sleep 600", late.display());
    let extra = format!(
        "    volumeMounts:\n    - name: cfg\n      mountPath: {}\n  volumes:\n  - name: cfg\n    configMap:\n      name: late-config\n",
        late.display()
    );
    c.ok_stdin(&["apply", "-f", "-"], &pod("waiter", &script, &extra));
    let message =
        "MountVolume.SetUp failed for volume \"cfg\" : configmap \"late-config\" not found";
    eventually(within, "a FailedMount event for the pod", || {
        c.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=waiter,reason=FailedMount",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .stdout
        .contains(message)
    });
    assert_eq!(
        pod_field(
            &c,
            "waiter",
            "{.status.containerStatuses[0].state.waiting.reason}"
        ),
        "ContainerCreating"
    );
    let described = c.ok(&["describe", "pod", "waiter"]);
    assert!(
        described.contains("FailedMount") && described.contains(message),
        "{described}"
    );
    c.ok_stdin(
        &["apply", "-f", "-"],
        &config_map("late-config", "key", "here"),
    );
    eventually(within, "the pod runs once its ConfigMap exists", || {
        pod_field(&c, "waiter", "{.status.phase}") == "Running"
            && logs(&c, "waiter").contains("here")
    });

    c.ok(&[
        "delete",
        "pod",
        "incluster",
        "reader",
        "waiter",
        "--wait=true",
    ]);
    assert!(
        !agent.log_text().contains("panicked"),
        "{}",
        agent.log_text()
    );
    drop(agent);
    drop(c);
}

const PROBE_NODE: &str = "e2e-probe";

/// Exec probes run inside the container, through the same in-container exec `kubectl exec`
/// uses: they see its mounts (a ConfigMap at its mountPath) and not the host's files there.
#[test]
fn exec_probes_run_in_the_container() {
    let c = Cluster::start("up", &["--nodes", "0"]);
    let work = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(work.path().to_path_buf());
    let agent = start_agent(&c, work.path(), PROBE_NODE);
    let within = Duration::from_secs(60);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &config_map("probe-config", "ready", "ok"),
    );
    // The host's directory at the mountPath holds a file the container's mount hides.
    let mnt = work.path().join("mnt/probe");
    std::fs::create_dir_all(&mnt).expect("mount point");
    std::fs::write(mnt.join("host-only"), "only on the host").expect("host file");
    let volume = format!(
        "    volumeMounts:\n    - name: cfg\n      mountPath: {mnt}\n  volumes:\n  - name: cfg\n    configMap:\n      name: probe-config\n",
        mnt = mnt.display()
    );
    let probe = |kind: &str, file: &str| {
        format!(
            "    {kind}:\n      periodSeconds: 1\n      failureThreshold: 1\n      exec:\n        command: [cat, {}]\n",
            mnt.join(file).display()
        )
    };
    let ready = pod_on(
        PROBE_NODE,
        "in-view",
        "exec sleep 600",
        &(probe("readinessProbe", "ready") + &volume),
    );
    let host_only = pod_on(
        PROBE_NODE,
        "host-view",
        "exec sleep 600",
        &(probe("livenessProbe", "host-only") + &volume),
    );
    c.ok_stdin(&["apply", "-f", "-"], &format!("{ready}---\n{host_only}"));
    eventually(
        within,
        "a probe of a file in the container's view passes",
        || {
            pod_field(
                &c,
                "in-view",
                "{.status.conditions[?(@.type==\"Ready\")].status}",
            ) == "True"
        },
    );
    let missing = format!(
        "Liveness probe failed: cat: {}: No such file or directory",
        mnt.join("host-only").display()
    );
    eventually(
        within,
        "a probe of a file only the host has fails, with its output in the event",
        || event_messages(&c, "host-view", "Unhealthy").contains(&missing),
    );
    eventually(
        within,
        "the failed liveness probe restarts the container",
        || {
            pod_field(
                &c,
                "host-view",
                "{.status.containerStatuses[0].restartCount}",
            )
            .parse::<u32>()
            .is_ok_and(|n| n >= 1)
        },
    );
    assert!(
        event_messages(&c, "host-view", "Killing")
            .contains("Container c failed liveness probe, will be restarted")
    );
    c.ok(&["delete", "pod", "in-view", "host-view", "--wait=true"]);
    assert!(
        !agent.log_text().contains("panicked"),
        "{}",
        agent.log_text()
    );
}

const MESSAGE_NODE: &str = "e2e-msg";

/// Termination messages as the kubelet's: what a container writes to its
/// `terminationMessagePath` (its own file, mounted in its namespace) is its terminated state's
/// message, also as `lastState` after a restart; `FallbackToLogsOnError` takes the end of the
/// log of a container that failed without writing one.
#[test]
fn termination_messages_come_from_the_file_or_the_log() {
    let c = Cluster::start("up", &["--nodes", "0"]);
    let work = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(work.path().to_path_buf());
    let agent = start_agent(&c, work.path(), MESSAGE_NODE);
    let within = Duration::from_secs(60);
    let never = "  restartPolicy: Never\n";
    let pods = [
        pod_on(
            MESSAGE_NODE,
            "msg-file",
            "echo noise; printf 'written by the container' > /dev/termination-log; exit 0",
            never,
        ),
        pod_on(
            MESSAGE_NODE,
            "msg-logs",
            "echo first; echo last words; exit 3",
            &format!("    terminationMessagePolicy: FallbackToLogsOnError\n{never}"),
        ),
        pod_on(
            MESSAGE_NODE,
            "msg-custom",
            "printf 'at a custom path' > /tmp/pernode-e2e-message; echo log; exit 1",
            &format!(
                "    terminationMessagePath: /tmp/pernode-e2e-message\n    terminationMessagePolicy: FallbackToLogsOnError\n{never}"
            ),
        ),
        pod_on(
            MESSAGE_NODE,
            "msg-last",
            "printf 'failed run' > /dev/termination-log; exit 1",
            "",
        ),
    ];
    c.ok_stdin(&["apply", "-f", "-"], &pods.join("---\n"));
    let message = |pod: &str, state: &str| {
        pod_field(
            &c,
            pod,
            &format!("{{.status.containerStatuses[0].{state}.terminated.message}}"),
        )
    };
    eventually(within, "the file's content is the message", || {
        message("msg-file", "state") == "written by the container"
    });
    eventually(within, "a failed container's log is the message", || {
        message("msg-logs", "state") == "first\nlast words\n"
    });
    eventually(within, "a custom path's file wins over the log", || {
        message("msg-custom", "state") == "at a custom path"
    });
    // The host has an empty mount point there at most: the file written is the container's.
    let host_file = std::fs::read_to_string("/tmp/pernode-e2e-message").unwrap_or_default();
    let _ = std::fs::remove_file("/tmp/pernode-e2e-message");
    assert_eq!(
        host_file, "",
        "the file is the container's own, not the host's"
    );
    // A restarted container's last state keeps its message.
    eventually(within, "the last state keeps its message", || {
        message("msg-last", "lastState") == "failed run"
    });
    c.ok(&[
        "delete",
        "pod",
        "msg-file",
        "msg-logs",
        "msg-custom",
        "msg-last",
        "--wait=true",
    ]);
    assert!(
        !agent.log_text().contains("panicked"),
        "{}",
        agent.log_text()
    );
}

const HOSTS_NODE: &str = "e2e-hosts";

/// The kubelet-managed /etc/hosts, mounted in the container's own mount namespace: generated
/// for a pod off the host network (its IP, here the node's, with its hostname and subdomain
/// FQDN), the node's file for a hostNetwork pod; `hostAliases` appended to both. The host's
/// own /etc/hosts is left as it was.
#[test]
fn pods_get_the_kubelets_hosts_file() {
    let c = Cluster::start("up", &["--nodes", "0"]);
    let work = tempfile::tempdir().expect("tempdir");
    let _unmount = UnmountOnDrop(work.path().to_path_buf());
    let node_hosts = std::fs::read_to_string("/etc/hosts").expect("the node's /etc/hosts");
    let agent = start_agent(&c, work.path(), HOSTS_NODE);
    let within = Duration::from_secs(60);
    let aliases = "  hostAliases:\n  - ip: 10.1.2.3\n    hostnames: [foo.local, bar.local]\n";
    let pods = [
        pod_on(
            HOSTS_NODE,
            "pod-net",
            "exec sleep 600",
            &format!("  hostname: web\n  subdomain: sub\n{aliases}"),
        ),
        pod_on(
            HOSTS_NODE,
            "host-net",
            "exec sleep 600",
            &format!("  hostNetwork: true\n{aliases}"),
        ),
    ];
    c.ok_stdin(&["apply", "-f", "-"], &pods.join("---\n"));
    for pod in ["pod-net", "host-net"] {
        eventually(within, "the pod runs", || {
            pod_field(&c, pod, "{.status.phase}") == "Running"
        });
    }
    let entries = "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n";
    assert_eq!(
        c.ok(&["exec", "pod-net", "--", "cat", "/etc/hosts"]),
        format!(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n127.0.0.1\tweb.sub.default.svc.cluster.local\tweb\n{entries}"
        )
    );
    assert_eq!(
        c.ok(&["exec", "host-net", "--", "cat", "/etc/hosts"]),
        format!("# Kubernetes-managed hosts file (host network).\n{node_hosts}{entries}")
    );
    assert_eq!(
        std::fs::read_to_string("/etc/hosts").expect("the node's /etc/hosts"),
        node_hosts,
        "the host's file is untouched"
    );
    c.ok(&["delete", "pod", "pod-net", "host-net", "--wait=true"]);
    assert!(
        !agent.log_text().contains("panicked"),
        "{}",
        agent.log_text()
    );
}
