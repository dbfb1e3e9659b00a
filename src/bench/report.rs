//! One figure per measured phase, the meter that takes it, the table and the JSON document.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::cluster::Cluster;
use super::store::Limit;

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    /// One of [`super::SCENARIOS`].
    pub scenario: String,
    /// What exactly: `maxUnavailable 10%`, `Table`, `100 watchers`, `1 write per commit`, ...
    pub variant: String,
    /// Simulated nodes in the cluster.
    pub nodes: usize,
    /// Objects the phase was about (pods, events, writes).
    pub objects: usize,
    pub wall_ms: f64,
    /// Percentiles over repeated runs (list only).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Requests the API server served during the phase (unknown against `--kubeconfig`).
    pub api_requests: Option<u64>,
    /// Durable store transactions and the writes they carried during the phase.
    pub store_commits: Option<u64>,
    pub store_writes: Option<u64>,
    /// How long the store alone takes for the phase's writes at its batched rate.
    pub store_limit_ms: Option<f64>,
    /// `wall_ms / store_limit_ms`: how far from the machine's limit the product is.
    pub limit_ratio: Option<f64>,
    /// Peak resident memory of the whole process during the phase, MiB.
    pub peak_rss_mib: f64,
    /// CPU seconds (user + system) of the whole process during the phase.
    pub cpu_seconds: f64,
    /// Which round of `--runs` (from 1); 0 for a median over the rounds.
    pub run: usize,
}

/// The log target of the lines that open and close a measured phase.
const PHASE_LOG: &str = "pernode::bench::phase";

/// Counters at the start of a phase.
pub struct Meter {
    start: Instant,
    requests: Option<u64>,
    stats: Option<pernode_store::StoreStats>,
    cpu: f64,
}

impl Meter {
    /// Starts a phase: resets the process's peak RSS so the phase reports its own.
    pub fn start(cluster: &Cluster) -> Meter {
        reset_peak_rss();
        // Marks the measured window in the log, for tools that count only inside it
        // (scripts/bench-instructions.sh with WINDOW=phase).
        tracing::info!(target: PHASE_LOG, "phase started");
        Meter {
            start: Instant::now(),
            requests: cluster.requests(),
            stats: cluster.store_stats(),
            cpu: cpu_seconds(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Ends a phase now.
    pub fn figure(
        &self,
        cluster: &Cluster,
        limit: &Limit,
        scenario: &str,
        variant: &str,
        nodes: usize,
        objects: usize,
    ) -> Figure {
        let wall = self.elapsed();
        tracing::info!(target: PHASE_LOG, scenario, variant, "phase ended");
        let requests = cluster
            .requests()
            .zip(self.requests)
            .map(|(now, then)| now - then);
        let stats = cluster
            .store_stats()
            .zip(self.stats)
            .map(|(now, then)| (now.commits - then.commits, now.writes - then.writes));
        let wall_ms = wall.as_secs_f64() * 1e3;
        let store_limit_ms = stats.map(|(_, writes)| limit.batched_ms(writes));
        Figure {
            scenario: scenario.to_string(),
            variant: variant.to_string(),
            nodes,
            objects,
            wall_ms,
            p50_ms: None,
            p99_ms: None,
            api_requests: requests,
            store_commits: stats.map(|s| s.0),
            store_writes: stats.map(|s| s.1),
            store_limit_ms,
            limit_ratio: store_limit_ms.filter(|l| *l > 0.0).map(|l| wall_ms / l),
            peak_rss_mib: peak_rss_mib(),
            cpu_seconds: cpu_seconds() - self.cpu,
            run: 1,
        }
    }
}

/// Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+); best effort.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Peak resident memory of this process since the last reset, MiB.
pub fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:") / 1024.0
}

/// CPU seconds (user + system) of this process so far.
pub fn cpu_seconds() -> f64 {
    cpu_seconds_of(&std::fs::read_to_string("/proc/self/stat").unwrap_or_default())
}

/// CPU seconds (user + system) in the text of a `/proc/<pid>/stat`.
pub fn cpu_seconds_of(stat: &str) -> f64 {
    // Fields after the command name (which may contain spaces): utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The machine the figures were taken on.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .ok();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": model,
        "memory_gib": mem_kib.map(|k| (k as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "kernel": kernel,
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
    })
}

/// The JSON document `--json` writes: every round's figures, and with more than one round
/// their medians.
pub fn document(command: &str, figures: &[Figure], medians: &[Figure]) -> Value {
    json!({
        "command": command,
        "machine": machine(),
        "results": figures,
        "medians": medians,
    })
}

/// One figure per scenario, variant and fleet size, each value the median over its rounds (the
/// VM's speed drifts by half between minutes: one round says little). Empty when every figure
/// is from a single round.
pub fn medians(figures: &[Figure]) -> Vec<Figure> {
    let mut groups: Vec<Vec<&Figure>> = Vec::new();
    for f in figures {
        let same = |g: &&mut Vec<&Figure>| {
            g[0].scenario == f.scenario && g[0].variant == f.variant && g[0].nodes == f.nodes
        };
        match groups.iter_mut().find(same) {
            Some(group) => group.push(f),
            None => groups.push(vec![f]),
        }
    }
    if groups.iter().all(|g| g.len() < 2) {
        return Vec::new();
    }
    groups
        .into_iter()
        .map(|group| {
            let of = |value: fn(&Figure) -> Option<f64>| {
                median(group.iter().filter_map(|f| value(f)).collect())
            };
            let count = |value: fn(&Figure) -> Option<u64>| {
                median(
                    group
                        .iter()
                        .filter_map(|f| value(f).map(|v| v as f64))
                        .collect(),
                )
                .map(|v| v.round() as u64)
            };
            Figure {
                scenario: group[0].scenario.clone(),
                variant: group[0].variant.clone(),
                nodes: group[0].nodes,
                objects: group[0].objects,
                wall_ms: of(|f| Some(f.wall_ms)).unwrap_or_default(),
                p50_ms: of(|f| f.p50_ms),
                p99_ms: of(|f| f.p99_ms),
                api_requests: count(|f| f.api_requests),
                store_commits: count(|f| f.store_commits),
                store_writes: count(|f| f.store_writes),
                store_limit_ms: of(|f| f.store_limit_ms),
                limit_ratio: of(|f| f.limit_ratio),
                peak_rss_mib: of(|f| Some(f.peak_rss_mib)).unwrap_or_default(),
                cpu_seconds: of(|f| Some(f.cpu_seconds)).unwrap_or_default(),
                run: 0,
            }
        })
        .collect()
}

/// The middle value (the mean of the two middle ones for an even count); `None` for none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

pub fn print_table(figures: &[Figure]) {
    println!(
        "{:<10} {:<22} {:>6} {:>10} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>7} {:>7} {:>6}",
        "scenario",
        "variant",
        "nodes",
        "wall ms",
        "p50 ms",
        "p99 ms",
        "requests",
        "commits",
        "writes",
        "limit ms",
        "ratio",
        "RSS MiB",
        "CPU s"
    );
    let opt =
        |v: Option<f64>, p: usize| v.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
    let int = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    for f in figures {
        println!(
            "{:<10} {:<22} {:>6} {:>10.1} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>7} {:>7.0} {:>6.1}",
            f.scenario,
            f.variant,
            f.nodes,
            f.wall_ms,
            opt(f.p50_ms, 1),
            opt(f.p99_ms, 1),
            int(f.api_requests),
            int(f.store_commits),
            int(f.store_writes),
            opt(f.store_limit_ms, 1),
            opt(f.limit_ratio, 1),
            f.peak_rss_mib,
            f.cpu_seconds
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(scenario: &str, wall_ms: f64, run: usize) -> Figure {
        Figure {
            scenario: scenario.into(),
            variant: "apply".into(),
            nodes: 10,
            objects: 10,
            wall_ms,
            p50_ms: None,
            p99_ms: None,
            api_requests: Some(run as u64 * 10),
            store_commits: None,
            store_writes: None,
            store_limit_ms: None,
            limit_ratio: None,
            peak_rss_mib: 100.0,
            cpu_seconds: wall_ms / 1000.0,
            run,
        }
    }

    #[test]
    fn medians_take_the_middle_of_each_scenario_over_its_rounds() {
        let rounds = [
            figure("converge", 3000.0, 1),
            figure("list", 20.0, 1),
            figure("converge", 2000.0, 2),
            figure("list", 10.0, 2),
            figure("converge", 5000.0, 3),
            figure("list", 40.0, 3),
        ];
        let m = medians(&rounds);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].scenario.as_str(), m[0].wall_ms), ("converge", 3000.0));
        assert_eq!(m[0].cpu_seconds, 3.0);
        assert_eq!(m[0].api_requests, Some(20));
        assert_eq!(m[0].p50_ms, None);
        assert_eq!(m[0].run, 0);
        assert_eq!((m[1].scenario.as_str(), m[1].wall_ms), ("list", 20.0));
        // An even count: the mean of the middle two.
        assert_eq!(medians(&rounds[..4])[0].wall_ms, 2500.0);
        // One round: nothing to take the median of.
        assert!(medians(&rounds[..2]).is_empty());
    }
}
