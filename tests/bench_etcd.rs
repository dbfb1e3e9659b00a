//! `pernode bench --store etcd://...` runs its in-process cluster and its store limit on the
//! given etcd (shape only, at a tiny size: timings belong in the bench itself).

#[path = "support/etcd.rs"]
mod etcd;
mod support;

use std::process::Command;

use etcd::Etcd;

#[test]
fn the_bench_runs_its_cluster_and_store_limit_on_etcd() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.json");
    let status = Command::new(env!("CARGO_BIN_EXE_pernode"))
        .args(["bench", "--store", &etcd.cluster.url()])
        .args([
            "--nodes",
            "20",
            "--only",
            "store,converge,rollout",
            "--json",
        ])
        .arg(&out)
        .status()
        .expect("running pernode bench");
    assert!(status.success(), "pernode bench failed: {status}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("reading the JSON")).expect("JSON");
    let results = doc["results"].as_array().expect("results");
    let variants = |scenario: &str| -> Vec<String> {
        results
            .iter()
            .filter(|r| r["scenario"] == scenario)
            .map(|r| r["variant"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        variants("store"),
        ["1 write per commit", "batched"],
        "{doc}"
    );
    assert!(!variants("converge").is_empty(), "{doc}");
    assert!(!variants("rollout").is_empty(), "{doc}");
    for row in results {
        assert_eq!(row["nodes"], 20, "{row}");
        assert!(
            row["store_commits"].as_u64().is_some_and(|c| c > 0),
            "{row}"
        );
    }

    // Everything went to etcd, each part under its own prefix.
    let keys = Command::new("etcdctl")
        .args(["--endpoints", &etcd.cluster.endpoints().join(",")])
        .args(["get", "--prefix", "--keys-only", "/pernode-bench/"])
        .output()
        .expect("run etcdctl");
    let keys = String::from_utf8_lossy(&keys.stdout);
    assert!(
        keys.lines().any(|k| k.contains("/limit/pods/bench/seq-0")),
        "no store-limit writes in etcd"
    );
    assert!(
        keys.lines()
            .any(|k| k.starts_with("/pernode-bench/r") && k.contains("/daemonsets/")),
        "no daemon set in etcd"
    );
    assert!(
        keys.lines()
            .filter(|k| k.contains("/pods/bench/") && !k.contains("/limit/"))
            .count()
            >= 20,
        "no daemon pods in etcd"
    );
}
