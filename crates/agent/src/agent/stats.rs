//! The kubelet's Summary API, `GET /stats/summary`: the node's CPU and memory (from
//! `/proc/stat` and `/proc/meminfo`, as cAdvisor's root container) and each running pod's
//! containers' (from the runtime: cgroups, the process, or the CRI's `ListContainerStats`),
//! in upstream's `statsapi.Summary` shape. What metrics-server (and the API server's
//! `metrics.k8s.io`) reads: `cpu.usageNanoCores` and `memory.workingSetBytes`.
//!
//! CPU figures are cumulative (`usageCoreNanoSeconds`); the rate (`usageNanoCores`) is taken
//! between samples at least [`MIN_WINDOW`] apart, as cAdvisor's housekeeping does: a sampler
//! ([`sample_every`]) keeps one recent, so the first request after a start has a rate too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::logs::LogIndex;
use super::runtime::{ContainerRuntime, ContainerUsage, UsageQuery};

/// The shortest window a CPU rate is taken over.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);

/// How often the sampler refreshes the CPU baselines (cAdvisor's housekeeping interval).
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Linux's fixed `USER_HZ`: `/proc/stat` counts hundredths of a second.
const NANOS_PER_TICK: u64 = 10_000_000;

/// A baseline: when, the cumulative CPU nanoseconds then, and the last rate computed.
type Baseline = (Instant, u64, Option<u64>);

/// Per key (the node, a container instance): the baseline sample and the last rate.
#[derive(Default)]
struct Rates {
    by_key: Mutex<HashMap<String, Baseline>>,
}

impl Rates {
    /// The rate of `cumulative` nanoseconds at `now` against the baseline: a new rate (and
    /// baseline) once [`MIN_WINDOW`] passed, else the last one.
    fn rate(&self, key: &str, now: Instant, cumulative: u64) -> Option<u64> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let Some((at, before, last)) = by_key.get(key).copied() else {
            by_key.insert(key.to_string(), (now, cumulative, None));
            return None;
        };
        let elapsed = now.saturating_duration_since(at);
        if cumulative < before {
            // A new instance under the same key: start again.
            by_key.insert(key.to_string(), (now, cumulative, None));
            return None;
        }
        if elapsed < MIN_WINDOW {
            return last;
        }
        let nanos = u128::from(cumulative - before) * 1_000_000_000 / elapsed.as_nanos().max(1);
        let rate = u64::try_from(nanos).unwrap_or(u64::MAX);
        by_key.insert(key.to_string(), (now, cumulative, Some(rate)));
        Some(rate)
    }

    /// Forgets keys not in `live`.
    fn retain(&self, live: &std::collections::HashSet<String>) {
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        by_key.retain(|k, _| live.contains(k));
    }
}

/// What the summary endpoint reads.
#[derive(Clone)]
pub struct StatsHost {
    pub node_name: String,
    pub pods: LogIndex,
    pub runtime: Arc<dyn ContainerRuntime>,
    rates: Arc<Rates>,
}

impl StatsHost {
    pub fn new(node_name: String, pods: LogIndex, runtime: Arc<dyn ContainerRuntime>) -> Self {
        StatsHost {
            node_name,
            pods,
            runtime,
            rates: Arc::default(),
        }
    }
}

/// The summary endpoint.
pub fn router(host: StatsHost) -> Router {
    Router::new()
        .route("/stats/summary", get(serve))
        .with_state(host)
}

async fn serve(State(host): State<StatsHost>) -> Response {
    axum::Json(summary(&host).await).into_response()
}

/// Samples every `interval`, so rates are ready when asked.
pub async fn sample_every(host: StatsHost, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = summary(&host).await;
    }
}

/// The node's cumulative busy CPU time and boot time, from `/proc/stat`.
fn node_cpu(stat: &str) -> Option<(u64, Option<i64>)> {
    let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| ticks.get(*i))
        .sum();
    let boot = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok());
    Some((busy.saturating_mul(NANOS_PER_TICK), boot))
}

/// The node's memory as cAdvisor's root container: usage `MemTotal - MemFree`, working set
/// usage less inactive file pages, available `MemAvailable`; in bytes.
fn node_memory(meminfo: &str) -> Option<(u64, u64, u64)> {
    let kib = |name: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| {
            let v = l.strip_prefix(name)?.strip_prefix(':')?;
            v.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    let total = kib("MemTotal")?;
    let free = kib("MemFree")?;
    let available = kib("MemAvailable").unwrap_or(free);
    let inactive_file = kib("Inactive(file)").unwrap_or(0);
    let usage = total.saturating_sub(free);
    let working_set = usage.saturating_sub(inactive_file);
    Some((usage * 1024, working_set * 1024, available * 1024))
}

fn cpu_json(time: &str, cumulative: u64, rate: Option<u64>) -> Value {
    let mut cpu = json!({"time": time, "usageCoreNanoSeconds": cumulative});
    if let Some(r) = rate {
        cpu["usageNanoCores"] = json!(r);
    }
    cpu
}

fn memory_json(time: &str, u: &ContainerUsage) -> Value {
    json!({"time": time, "usageBytes": u.memory_usage, "workingSetBytes": u.memory_working_set})
}

/// The summary as the kubelet's `/stats/summary` answers it.
pub async fn summary(host: &StatsHost) -> Value {
    let now = Instant::now();
    let time = Timestamp::now().to_string();
    let mut node = json!({"nodeName": host.node_name});
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    if let Some((cumulative, boot)) = node_cpu(&stat) {
        if let Some(boot) = boot.and_then(|b| Timestamp::from_second(b).ok()) {
            node["startTime"] = json!(boot.to_string());
        }
        node["cpu"] = cpu_json(&time, cumulative, host.rates.rate("node", now, cumulative));
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if let Some((usage, working_set, available)) = node_memory(&meminfo) {
        node["memory"] = json!({"time": time, "availableBytes": available,
            "usageBytes": usage, "workingSetBytes": working_set});
    }

    // Running containers, pod by pod.
    let mut queries = Vec::new();
    let mut pods = Vec::new();
    for ((namespace, name), containers) in host.pods.all() {
        let mut running: Vec<(String, Option<Timestamp>)> = Vec::new();
        let mut uid = String::new();
        for (container, c) in containers {
            if let Some(id) = c.running_id {
                uid = c.pod_uid.clone();
                queries.push(UsageQuery {
                    pod_uid: c.pod_uid,
                    container: container.clone(),
                    id,
                });
                running.push((container, c.started_at));
            }
        }
        if !running.is_empty() {
            pods.push((namespace, name, uid, running));
        }
    }
    let usage = host.runtime.usage(&queries).await;
    let mut live = std::collections::HashSet::from(["node".to_string()]);
    let mut figures: HashMap<(String, String), (ContainerUsage, Option<u64>)> = HashMap::new();
    for (q, u) in queries.iter().zip(usage) {
        let Some(u) = u else { continue };
        let key = format!("{}/{}", q.pod_uid, q.container);
        let rate = host.rates.rate(&key, now, u.cpu_core_nanos);
        live.insert(key);
        figures.insert((q.pod_uid.clone(), q.container.clone()), (u, rate));
    }
    host.rates.retain(&live);

    let mut pod_list = Vec::new();
    for (namespace, name, uid, running) in pods {
        let mut containers = Vec::new();
        let mut total = ContainerUsage::default();
        let mut total_rate: Option<u64> = Some(0);
        let mut start: Option<Timestamp> = None;
        for (container, started_at) in running {
            start = match (start, started_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut c = json!({"name": container});
            if let Some(t) = started_at {
                c["startTime"] = json!(t.to_string());
            }
            if let Some((u, rate)) = figures.get(&(uid.clone(), container.clone())) {
                c["cpu"] = cpu_json(&time, u.cpu_core_nanos, *rate);
                c["memory"] = memory_json(&time, u);
                total.cpu_core_nanos += u.cpu_core_nanos;
                total.memory_usage += u.memory_usage;
                total.memory_working_set += u.memory_working_set;
                total_rate = total_rate.zip(*rate).map(|(a, b)| a + b);
            } else {
                total_rate = None;
            }
            containers.push(c);
        }
        let mut pod = json!({
            "podRef": {"name": name, "namespace": namespace, "uid": uid},
            "containers": containers,
            "cpu": cpu_json(&time, total.cpu_core_nanos, total_rate),
            "memory": memory_json(&time, &total),
        });
        if let Some(t) = start {
            pod["startTime"] = json!(t.to_string());
        }
        pod_list.push(pod);
    }
    pod_list.sort_by(|a, b| {
        let key = |p: &Value| {
            (
                p["podRef"]["namespace"].to_string(),
                p["podRef"]["name"].to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    json!({"node": node, "pods": pod_list})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_taken_over_at_least_the_minimum_window() {
        let rates = Rates::default();
        let t0 = Instant::now();
        assert_eq!(rates.rate("c", t0, 1_000), None, "no baseline yet");
        assert_eq!(
            rates.rate("c", t0 + Duration::from_millis(10), 2_000),
            None,
            "too short a window"
        );
        // Half a core over two seconds.
        let r = rates.rate("c", t0 + Duration::from_secs(2), 1_000 + 1_000_000_000);
        assert_eq!(r, Some(500_000_000));
        assert_eq!(
            rates.rate("c", t0 + Duration::from_millis(2100), 1_000_000_000),
            None,
            "a counter going back is a new instance"
        );
    }

    #[test]
    fn node_figures_are_read_as_cadvisor_reads_them() {
        let stat = "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 1 2 3 4\nbtime 1700000000\n";
        assert_eq!(
            node_cpu(stat),
            Some((160 * NANOS_PER_TICK, Some(1_700_000_000)))
        );
        let meminfo = "MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    600 kB\nInactive(file):  100 kB\n";
        assert_eq!(
            node_memory(meminfo),
            Some((800 * 1024, 700 * 1024, 600 * 1024))
        );
    }
}
