//! The kubelet's core metrics, on the agent's HTTP endpoint at `/metrics` (kubelet's
//! `pkg/kubelet/metrics` names): `kubelet_running_pods`, `kubelet_running_containers
//! {container_state}`, `kubelet_pod_start_duration_seconds` and `kubelet_started_containers_total
//! {container_type}`.
//!
//! Process-wide, as the kubelet's legacy registry: the pod workers count themselves and their
//! container processes with guards ([`RunningPod`], [`RunningContainer`]), so a gauge can never
//! drift from what runs.

use std::sync::LazyLock;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerState {
    container_state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ContainerType {
    container_type: &'static str,
}

struct KubeletMetrics {
    registry: Registry,
    running_pods: Gauge,
    running_containers: Gauge,
    pod_start_duration: Histogram,
    started_containers: Family<ContainerType, Counter>,
}

/// The kubelet's buckets for pod start durations (0.5 s to an hour).
const POD_START_BUCKETS: [f64; 25] = [
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0,
    300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
];

static METRICS: LazyLock<KubeletMetrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let running_pods = Gauge::default();
    registry.register(
        "kubelet_running_pods",
        "Number of pods that have a running pod sandbox",
        running_pods.clone(),
    );
    let running_containers = Family::<ContainerState, Gauge>::default();
    registry.register(
        "kubelet_running_containers",
        "Number of containers currently running",
        running_containers.clone(),
    );
    let pod_start_duration = Histogram::new(POD_START_BUCKETS);
    registry.register(
        "kubelet_pod_start_duration_seconds",
        "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
        pod_start_duration.clone(),
    );
    let started_containers = Family::<ContainerType, Counter>::default();
    // The text encoder appends `_total` to a counter's name.
    registry.register(
        "kubelet_started_containers",
        "Cumulative number of containers started",
        started_containers.clone(),
    );
    let running_containers = running_containers.get_or_create_owned(&ContainerState {
        container_state: "running",
    });
    KubeletMetrics {
        registry,
        running_pods,
        running_containers,
        pod_start_duration,
        started_containers,
    }
});

/// A pod worker, counted in `kubelet_running_pods` while it lives.
pub(crate) struct RunningPod(());

impl RunningPod {
    pub(crate) fn new() -> RunningPod {
        METRICS.running_pods.inc();
        RunningPod(())
    }
}

impl Drop for RunningPod {
    fn drop(&mut self) {
        METRICS.running_pods.dec();
    }
}

/// A container process, counted in `kubelet_running_containers{container_state="running"}`
/// while it is followed.
pub(crate) struct RunningContainer(());

impl RunningContainer {
    pub(crate) fn new() -> RunningContainer {
        METRICS.running_containers.inc();
        RunningContainer(())
    }
}

impl Drop for RunningContainer {
    fn drop(&mut self) {
        METRICS.running_containers.dec();
    }
}

/// A container process started (not adopted): `init_container` or `container`.
pub(crate) fn container_started(init: bool) {
    let container_type = if init { "init_container" } else { "container" };
    METRICS
        .started_containers
        .get_or_create(&ContainerType { container_type })
        .inc();
}

/// Every container of a pod runs, `since` the agent first saw it.
pub(crate) fn pod_started(since: Duration) {
    METRICS.pod_start_duration.observe(since.as_secs_f64());
}

/// The exposition of the kubelet's metrics.
pub fn encode() -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &METRICS.registry);
    text
}

/// `GET /metrics` (unauthenticated, as the kubelet's read-only port serves it; the agent's
/// endpoint serves logs the same way).
pub fn router() -> Router {
    Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                encode(),
            )
                .into_response()
        }),
    )
}
