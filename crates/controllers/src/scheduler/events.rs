//! The scheduler's events (`Scheduled`, `FailedScheduling`), written in the background under
//! the rate limit of upstream's scheduler event client.
//!
//! kube-scheduler writes events through a client of their own, built from its
//! `clientConnection` settings: 50 requests a second after a burst of 100. Its broadcaster
//! hands each event to a goroutine that waits for that limit, so recording never blocks a
//! binding and every event is written, at most 50 a second. When a whole fleet's daemon pods
//! are bound at once, the `Scheduled` events trail the bindings by minutes rather than doubling
//! the API server's writes while the fleet converges. The same happens here: events wait in a
//! queue of [`MAX_PENDING_EVENTS`] (where upstream's goroutines are unbounded; past it an
//! event is dropped and logged) and go out through a [`TokenBucket`].

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use pernode_runtime::TokenBucket;
use tokio::sync::{Semaphore, mpsc};
use tracing::debug;

/// Events waiting for the rate limit; past this many a new one is dropped.
pub const MAX_PENDING_EVENTS: usize = 10_000;

/// Event writes in flight at once (they are spaced by the rate limit; this bounds them when
/// the API server is slow to answer).
const WRITES_IN_FLIGHT: usize = 16;

/// What an event says, recorded now and turned into its API object when it is written.
/// Kept small: up to [`MAX_PENDING_EVENTS`] of them wait at once.
struct PendingEvent {
    namespace: String,
    pod: String,
    uid: Option<String>,
    resource_version: Option<String>,
    type_: &'static str,
    reason: &'static str,
    message: String,
    at: Timestamp,
}

/// The recording side, held by the scheduler. Recording never waits.
pub(super) struct EventRecorder {
    tx: mpsc::Sender<PendingEvent>,
}

/// The writing side: run it with [`EventWriter::run`].
pub(super) struct EventWriter {
    rx: mpsc::Receiver<PendingEvent>,
    client: kube::Client,
    component: String,
    bucket: TokenBucket,
}

/// A recorder and the writer that drains it at `qps` events a second after a burst of `burst`,
/// reporting as `component` (the scheduler's name).
pub(super) fn event_channel(
    client: kube::Client,
    component: String,
    qps: f64,
    burst: f64,
) -> (EventRecorder, EventWriter) {
    let (tx, rx) = mpsc::channel(MAX_PENDING_EVENTS);
    let writer = EventWriter {
        rx,
        client,
        component,
        bucket: TokenBucket::new(qps, burst),
    };
    (EventRecorder { tx }, writer)
}

impl EventRecorder {
    /// Records an event about `pod`; best effort (dropped when the queue is full).
    pub(super) fn record(
        &self,
        pod: &Pod,
        type_: &'static str,
        reason: &'static str,
        message: String,
    ) {
        let meta = &pod.metadata;
        let event = PendingEvent {
            namespace: meta.namespace.clone().unwrap_or_default(),
            pod: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            type_,
            reason,
            message,
            at: Timestamp::now(),
        };
        if let Err(e) = self.tx.try_send(event) {
            let event = e.into_inner();
            debug!(namespace = %event.namespace, pod = %event.pod, reason, "event queue full; dropping the event");
        }
    }
}

impl EventWriter {
    /// Writes recorded events until every recorder is gone.
    pub(super) async fn run(mut self) {
        let writes = Arc::new(Semaphore::new(WRITES_IN_FLIGHT));
        while let Some(event) = self.rx.recv().await {
            let wait = self.bucket.reserve(Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let Ok(permit) = writes.clone().acquire_owned().await else {
                return; // never closed
            };
            let (client, object) = (self.client.clone(), event_object(&self.component, &event));
            tokio::spawn(async move {
                if let Err(e) = write(&client, &event.namespace, &object).await {
                    debug!(namespace = %event.namespace, pod = %event.pod, error = %e, "could not record event");
                }
                drop(permit);
            });
        }
    }
}

fn event_object(component: &str, e: &PendingEvent) -> CoreEvent {
    CoreEvent {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", e.pod, e.at.as_nanosecond())),
            namespace: Some(e.namespace.clone()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(e.pod.clone()),
            namespace: Some(e.namespace.clone()),
            uid: e.uid.clone(),
            resource_version: e.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(e.reason.into()),
        message: Some(e.message.clone()),
        type_: Some(e.type_.into()),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: None,
        }),
        first_timestamp: Some(Time(e.at)),
        last_timestamp: Some(Time(e.at)),
        event_time: Some(MicroTime(e.at)),
        count: Some(1),
        action: Some(
            if e.reason == "Scheduled" {
                "Binding"
            } else {
                "Scheduling"
            }
            .into(),
        ),
        reporting_component: Some(component.to_owned()),
        reporting_instance: Some(format!("{component}-pernode")),
        ..Default::default()
    }
}

/// Creates the event; the answer is read no further than its status.
async fn write(client: &kube::Client, ns: &str, event: &CoreEvent) -> Result<(), kube::Error> {
    let body = serde_json::to_vec(event).map_err(kube::Error::SerdeError)?;
    let req = kube::core::Request::new(<CoreEvent as kube::Resource>::url_path(&(), Some(ns)))
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    client.request_text(req).await.map(|_| ())
}
