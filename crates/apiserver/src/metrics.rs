//! `/metrics`: the API server's Prometheus metrics in the OpenMetrics text format
//! (prometheus-client), with kube-apiserver's names and labels.
//!
//! - [`requests`]: `apiserver_request_total`, `apiserver_request_duration_seconds`,
//!   `apiserver_longrunning_requests` (open watches, logs and node connections);
//! - `apiserver_storage_objects{resource}`: the stored objects per resource, counted at each
//!   scrape (upstream samples it every minute);
//! - the store's commit latency and batch sizes ([`pernode_store::StoreMetrics`]);
//! - whatever else the process registers with [`ApiMetrics::add_registry`] (the controllers
//!   of `pernode up`), served on the same page as kube-apiserver's legacy registry serves every
//!   component linked into it.
//!
//! Reading it is authorized as any non-resource path: upstream's `system:monitoring` group
//! (bound to the bootstrap ClusterRole of that name) may `get` `/metrics`.

pub mod requests;

use std::sync::{Arc, RwLock};

use pernode_store::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The exposition's media type (what prometheus-client writes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric one API server exposes.
pub struct ApiMetrics {
    registry: Registry,
    /// Recorded by `dispatch` for every authorized resource request.
    pub requests: Arc<requests::RequestMetrics>,
    /// More registries served on the same page, in the order added.
    others: RwLock<Vec<Arc<Registry>>>,
}

impl ApiMetrics {
    /// The metrics of a server over `store`.
    pub fn new(store: &Store) -> ApiMetrics {
        let mut registry = Registry::default();
        let requests = Arc::new(requests::RequestMetrics::default());
        requests.register(&mut registry);
        store.metrics().register(&mut registry);
        registry.register_collector(Box::new(StorageObjects {
            store: store.clone(),
        }));
        ApiMetrics {
            registry,
            requests,
            others: RwLock::default(),
        }
    }

    /// Serves `registry`'s metrics on this server's `/metrics` too.
    pub fn add_registry(&self, registry: Arc<Registry>) {
        match self.others.write() {
            Ok(mut others) => others.push(registry),
            Err(poisoned) => poisoned.into_inner().push(registry),
        }
    }

    /// The exposition: every metric, then `# EOF`.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut text = String::new();
        // Writing to a String cannot fail; a collector's error ends the page early instead.
        let _ = encode_registry(&mut text, &self.registry);
        let others = match self.others.read() {
            Ok(others) => others.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for registry in &others {
            let _ = encode_registry(&mut text, registry);
        }
        let _ = encode_eof(&mut text);
        text
    }
}

/// A scraped exposition's samples, for reading one back (tests, tools): each series by its
/// name and labels in any order.
#[derive(Clone, Debug, Default)]
pub struct Samples(std::collections::BTreeMap<String, f64>);

impl Samples {
    /// Reads the text format's sample lines (`name{k="v",...} value`); comments and lines it
    /// cannot read are skipped.
    pub fn parse(text: &str) -> Samples {
        let mut samples = std::collections::BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').unwrap_or(rest);
                    let labels: Vec<(&str, &str)> = body
                        .split("\",")
                        .filter_map(|pair| pair.split_once("=\""))
                        .map(|(k, v)| (k, v.trim_end_matches('"')))
                        .collect();
                    (name, labels)
                }
                None => (series, Vec::new()),
            };
            samples.insert(series_key(name, &labels), value);
        }
        Samples(samples)
    }

    /// The value of the series `name` with exactly `labels`; 0 when absent (a counter or
    /// gauge nobody touched yet).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .get(&series_key(name, labels))
            .copied()
            .unwrap_or(0.0)
    }

    /// Whether any series of the metric `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.0
            .keys()
            .any(|k| k == name || k.starts_with(&format!("{name}{{")))
    }
}

fn series_key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort_unstable();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// `apiserver_storage_objects`, counted from the store when scraped.
#[derive(Debug)]
struct StorageObjects {
    store: Store,
}

impl Collector for StorageObjects {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.store.count_by_resource();
        let mut family = encoder.encode_descriptor(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (segment, count) in counts {
            let labels = [("resource", resource_label(&segment))];
            let gauge = ConstGauge::new(i64::try_from(count).unwrap_or(i64::MAX));
            gauge.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Upstream's `resource` label of a store segment: the plural, `.group` appended outside the
/// core group (`daemonsets.apps`). Custom resources' segments already read so.
fn resource_label(segment: &str) -> String {
    if segment.contains('.') {
        return segment.to_string();
    }
    // Built-in plurals name one stored resource (the first entry: the kind that owns the
    // storage, core events before events.k8s.io's).
    match pernode_resources::RESOURCES
        .iter()
        .find(|r| r.plural == segment)
    {
        Some(r) if !r.group.is_empty() => format!("{}.{}", r.plural, r.group),
        _ => segment.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_back_by_name_and_labels() {
        let text = "# TYPE a counter\na_total{x=\"1\",b=\"\"} 3\nb_sum 2.5\n# EOF\n";
        let samples = Samples::parse(text);
        assert_eq!(samples.get("a_total", &[("b", ""), ("x", "1")]), 3.0);
        assert_eq!(samples.get("b_sum", &[]), 2.5);
        assert_eq!(samples.get("a_total", &[("x", "2")]), 0.0);
        assert!(samples.has("a_total") && !samples.has("a"));
    }

    #[test]
    fn storage_resources_are_labelled_as_upstream() {
        assert_eq!(resource_label("pods"), "pods");
        assert_eq!(resource_label("daemonsets"), "daemonsets.apps");
        assert_eq!(resource_label("events"), "events");
        assert_eq!(resource_label("widgets.example.com"), "widgets.example.com");
    }
}
