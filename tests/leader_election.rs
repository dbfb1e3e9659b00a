//! `pernode controllers` replicas elect a leader as kube-controller-manager's do: a Lease
//! `kube-system/kube-controller-manager`; kill -9 the leader during a rollout and the standby
//! takes over and finishes it; a leader cut off from the API server exits before its Lease
//! could expire.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::component::Component;
use support::{AGENT_DS, Cluster, eventually};

/// Short election durations, so that a takeover takes seconds (upstream: 15 s, 10 s, 2 s).
const QUICK_ELECTION: [&str; 6] = [
    "--leader-elect-lease-duration",
    "3s",
    "--leader-elect-renew-deadline",
    "2s",
    "--leader-elect-retry-period",
    "500ms",
];

/// A `pernode controllers` replica with the quick election durations.
fn controllers(server: &Cluster, name: &str) -> Component {
    let mut args = vec!["controllers"];
    args.extend(QUICK_ELECTION);
    Component::start(server, name, &args)
}

fn leads(replica: &Component) -> bool {
    replica.log_text().contains("started leading")
}

fn lease(server: &Cluster) -> Value {
    let out = server.ok(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        "kube-controller-manager",
        "-o",
        "json",
    ]);
    serde_json::from_str(&out).expect("a Lease")
}

/// `2026-12-07T12:00:00.123456Z`: a MicroTime, six fractional digits.
fn is_micro_time(value: &Value) -> bool {
    value.as_str().is_some_and(|t| {
        t.len() == 27
            && t.ends_with('Z')
            && t.as_bytes().get(19) == Some(&b'.')
            && t[20..26].bytes().all(|b| b.is_ascii_digit())
    })
}

#[test]
fn the_standby_takes_over_when_the_leader_is_killed_and_finishes_the_rollout() {
    let server = Cluster::start("apiserver", &[]);
    let _sim = Component::start(&server, "sim", &["sim", "--nodes", "3"]);
    let mut replicas = [controllers(&server, "one"), controllers(&server, "two")];
    eventually(Duration::from_secs(60), "one replica leads", || {
        replicas.iter().any(leads)
    });
    let leader = usize::from(!leads(&replicas[0]));
    let standby = 1 - leader;
    let held = lease(&server);
    let spec = &held["spec"];
    let holder = spec["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert!(
        holder.starts_with(&format!("{}_", host.trim())) && holder.len() > host.trim().len() + 30,
        "<hostname>_<uuid>: {holder}"
    );
    assert_eq!(spec["leaseDurationSeconds"], 3);
    assert_eq!(spec["leaseTransitions"], 0);
    assert!(is_micro_time(&spec["acquireTime"]), "{spec}");
    assert!(is_micro_time(&spec["renewTime"]), "{spec}");

    server.ok_stdin(&["apply", "-f", "-"], AGENT_DS);
    eventually(Duration::from_secs(90), "the first rollout", || {
        server.rolled_out("agent", "busybox:1.36", 3)
    });
    assert!(!leads(&replicas[standby]), "the standby waits");

    // A rollout under way when the leader dies.
    server.ok(&["set", "image", "ds/agent", "agent=busybox:1.37"]);
    replicas[leader].kill9();
    eventually(Duration::from_secs(60), "the standby takes over", || {
        leads(&replicas[standby])
    });
    let taken = lease(&server);
    assert_ne!(taken["spec"]["holderIdentity"], holder.as_str());
    assert_eq!(taken["spec"]["leaseTransitions"], 1);
    eventually(
        Duration::from_secs(120),
        "the new leader finishes the rollout",
        || server.rolled_out("agent", "busybox:1.37", 3),
    );
    // One pod a node, none left behind.
    let pods = server.ok(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName} {.spec.containers[0].image}{\"\\n\"}{end}",
    ]);
    let mut lines: Vec<&str> = pods.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "node-1 busybox:1.37",
            "node-2 busybox:1.37",
            "node-3 busybox:1.37"
        ]
    );
}

#[test]
fn a_leader_cut_off_from_the_api_server_stops_and_exits_before_its_lease_expires() {
    let mut server = Cluster::start("apiserver", &[]);
    let mut replica = controllers(&server, "one");
    eventually(Duration::from_secs(60), "it leads", || leads(&replica));
    server.kill9();
    // Renew deadline 2 s plus a retry period: it gives up within 2.5 s of its last renewal,
    // before the 3 s lease is up (the limit here only bounds the test).
    let mut status = None;
    eventually(Duration::from_secs(30), "the leader exits", || {
        status = replica.try_wait();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(1));
    assert!(
        replica.log_text().contains("leaderelection lost"),
        "{}",
        replica.log_text()
    );
}

#[test]
fn without_election_the_controllers_run_at_once_and_write_no_lease() {
    let server = Cluster::start("apiserver", &[]);
    let _sim = Component::start(&server, "sim", &["sim", "--nodes", "1"]);
    let replica = Component::start(&server, "one", &["controllers", "--leader-elect=false"]);
    server.ok_stdin(&["apply", "-f", "-"], AGENT_DS);
    eventually(Duration::from_secs(60), "the daemon pod runs", || {
        server
            .kubectl(&[
                "get",
                "ds",
                "agent",
                "-o",
                "jsonpath={.status.numberAvailable}",
            ])
            .stdout
            == "1"
    });
    assert!(!leads(&replica));
    let missing = server.fails(&[
        "get",
        "lease",
        "-n",
        "kube-system",
        "kube-controller-manager",
    ]);
    assert!(missing.contains("NotFound"), "{missing}");
}
