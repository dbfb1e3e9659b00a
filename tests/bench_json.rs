//! `pernode bench --json` writes every scenario with every key (shape only: timings belong in
//! the bench itself).

use std::process::Command;

const KEYS: &[&str] = &[
    "scenario",
    "variant",
    "nodes",
    "objects",
    "wall_ms",
    "p50_ms",
    "p99_ms",
    "api_requests",
    "store_commits",
    "store_writes",
    "store_limit_ms",
    "limit_ratio",
    "peak_rss_mib",
    "cpu_seconds",
    "run",
];

/// Runs `pernode bench ARGS --json FILE` and answers the JSON it wrote.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.json");
    let status = Command::new(env!("CARGO_BIN_EXE_pernode"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&out)
        .status()
        .expect("running pernode bench");
    assert!(status.success(), "pernode bench failed: {status}");
    serde_json::from_slice(&std::fs::read(&out).expect("reading the JSON")).expect("JSON")
}

#[test]
fn bench_json_has_every_scenario_and_key() {
    let doc = bench_json(&[
        "--nodes",
        "30",
        "--only",
        "store,converge,rollout,nodechurn,list,create,watch,memory",
        "--watchers",
        "3",
        "--events",
        "200",
        "--list-runs",
        "3",
    ]);
    assert!(doc["command"].as_str().is_some_and(|c| c.contains("bench")));
    assert!(doc["machine"]["cpus"].as_u64().is_some_and(|n| n >= 1));
    let results = doc["results"].as_array().expect("results");
    // One round: no medians.
    assert_eq!(doc["medians"], serde_json::json!([]));
    for scenario in [
        "store",
        "converge",
        "rollout",
        "nodechurn",
        "list",
        "create",
        "watch",
        "memory",
    ] {
        let rows: Vec<&serde_json::Value> = results
            .iter()
            .filter(|r| r["scenario"] == scenario)
            .collect();
        assert!(!rows.is_empty(), "no {scenario} in {doc}");
        for row in &rows {
            for key in KEYS {
                assert!(row.get(key).is_some(), "{scenario} lacks {key}: {row}");
            }
            assert_eq!(row["nodes"], 30, "{row}");
            assert!(row["wall_ms"].as_f64().is_some(), "{row}");
            assert!(row["peak_rss_mib"].as_f64().is_some(), "{row}");
            assert!(row["cpu_seconds"].as_f64().is_some(), "{row}");
            if scenario == "memory" {
                // A child `pernode up`: its own peak RSS and CPU, nothing the bench served.
                assert!(
                    row["peak_rss_mib"].as_f64().is_some_and(|m| m > 0.0),
                    "{row}"
                );
                continue;
            }
            // An in-process cluster knows what it served and committed.
            assert!(row["api_requests"].as_u64().is_some(), "{row}");
            assert!(row["store_commits"].as_u64().is_some(), "{row}");
        }
    }
    let variants = |s: &str| -> Vec<String> {
        results
            .iter()
            .filter(|r| r["scenario"] == s)
            .filter_map(|r| r["variant"].as_str().map(String::from))
            .collect()
    };
    assert_eq!(variants("rollout"), ["maxUnavailable 10%", "maxSurge 10%"]);
    assert_eq!(variants("list"), ["JSON", "Table"]);
    assert_eq!(variants("store"), ["1 write per commit", "batched"]);
    assert_eq!(
        variants("memory"),
        ["up, nodes Ready", "up, daemon set available"]
    );
    for row in results.iter().filter(|r| r["scenario"] == "list") {
        assert!(row["p50_ms"].as_f64().is_some() && row["p99_ms"].as_f64().is_some());
    }
    for s in ["converge", "rollout", "nodechurn", "create", "watch"] {
        for row in results.iter().filter(|r| r["scenario"] == s) {
            assert!(row["limit_ratio"].as_f64().is_some(), "{row}");
        }
    }
}

#[test]
fn bench_runs_report_each_round_and_the_medians() {
    let doc = bench_json(&["--nodes", "20", "--only", "store,converge", "--runs", "3"]);
    let results = doc["results"].as_array().expect("results");
    let converge: Vec<&serde_json::Value> = results
        .iter()
        .filter(|r| r["scenario"] == "converge")
        .collect();
    let runs: Vec<u64> = converge.iter().filter_map(|r| r["run"].as_u64()).collect();
    assert_eq!(runs, [1, 2, 3]);
    let medians = doc["medians"].as_array().expect("medians");
    let scenarios: Vec<&str> = medians
        .iter()
        .filter_map(|m| m["scenario"].as_str())
        .collect();
    assert_eq!(scenarios, ["store", "store", "converge"]);
    let median = medians[2]["wall_ms"].as_f64().expect("median wall");
    let mut walls: Vec<f64> = converge
        .iter()
        .filter_map(|r| r["wall_ms"].as_f64())
        .collect();
    walls.sort_by(f64::total_cmp);
    assert_eq!(median, walls[1], "the middle of {walls:?}");
    assert_eq!(medians[2]["run"], 0);
    for key in KEYS {
        assert!(medians[2].get(key).is_some(), "the median lacks {key}");
    }
}

/// Each measured phase is marked in the log (target `pernode::bench::phase`), which
/// `scripts/bench-instructions.sh` with `WINDOW=phase` counts between.
#[test]
fn bench_logs_the_start_and_end_of_each_measured_phase() {
    let out = Command::new(env!("CARGO_BIN_EXE_pernode"))
        .args(["bench", "--nodes", "10", "--only", "converge"])
        .env("RUST_LOG", "pernode::bench::phase=info")
        .env("NO_COLOR", "1")
        .output()
        .expect("running pernode bench");
    assert!(out.status.success(), "pernode bench failed: {}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    let started = log.find("phase started").expect("a phase start in the log");
    let ended = log.find("phase ended").expect("a phase end in the log");
    assert!(started < ended, "the phase ends after it starts:\n{log}");
    assert!(
        log[ended..].contains("converge"),
        "the end names its scenario:\n{log}"
    );
}
