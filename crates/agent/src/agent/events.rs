//! The kubelet's events about pods (`FailedMount`, `Failed`, ...) and about its node
//! (`Starting`, `NodeReady`, ...), written as client-go's recorder writes them: an Event named
//! `<object>.<nanoseconds in hex>` from source `kubelet` on this host (a node's in `default`,
//! referring to the node with its name as UID, as the kubelet's `nodeRef`); the same event
//! again (same object, type, reason and message) bumps the first one's
//! `count` and `lastTimestamp` instead of making another; a spam filter allows each pod a
//! burst of 25 events, then one every 5 minutes. Events are best effort: one background task
//! writes them in order, and a failed write only loses that event.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use pernode_runtime::TokenBucket;
use tokio::sync::mpsc;
use tracing::debug;

/// The event source the kubelet reports as.
const COMPONENT: &str = "kubelet";
/// client-go's spam filter: a burst of 25 per object, then one per 5 minutes.
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL_PER_SEC: f64 = 1.0 / 300.0;
/// A repeat older than this makes a new event (client-go's cache forgets it eventually).
const DEDUP_WINDOW: Duration = Duration::from_secs(3600);

/// `Normal` or `Warning`.
pub const WARNING: &str = "Warning";
pub const NORMAL: &str = "Normal";

struct Request {
    object: ObjectReference,
    type_: &'static str,
    reason: &'static str,
    message: String,
}

/// Where the agent's pod events go.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Request>,
}

impl Recorder {
    /// Starts the writer task for `node`.
    pub fn start(client: kube::Client, node: String) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(client, node, rx));
        Recorder { tx }
    }

    /// Records an event about `pod`.
    pub fn pod_event(&self, pod: &Pod, type_: &'static str, reason: &'static str, message: String) {
        let m = &pod.metadata;
        debug!(pod = ?m.name, reason, %message, "event");
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            ..Default::default()
        };
        let _ = self.tx.send(Request {
            object: reference,
            type_,
            reason,
            message,
        });
    }

    /// Records an event about node `node`.
    pub fn node_event(
        &self,
        node: &str,
        type_: &'static str,
        reason: &'static str,
        message: String,
    ) {
        debug!(node, reason, %message, "event");
        let reference = ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            uid: Some(node.to_string()),
            ..Default::default()
        };
        let _ = self.tx.send(Request {
            object: reference,
            type_,
            reason,
            message,
        });
    }
}

struct Seen {
    namespace: String,
    name: String,
    count: i32,
    at: Instant,
}

async fn writer(client: kube::Client, node: String, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut spam: HashMap<String, (TokenBucket, Instant)> = HashMap::new();
    let mut seen: HashMap<(String, &'static str, &'static str, String), Seen> = HashMap::new();
    while let Some(req) = rx.recv().await {
        let uid = req.object.uid.clone().unwrap_or_default();
        let now = Instant::now();
        // Pods gone for an hour are forgotten (a full bucket refills in two).
        spam.retain(|_, (_, at)| now.duration_since(*at) < DEDUP_WINDOW);
        seen.retain(|_, s| now.duration_since(s.at) < DEDUP_WINDOW);
        let (bucket, at) = spam
            .entry(uid.clone())
            .or_insert_with(|| (TokenBucket::new(SPAM_REFILL_PER_SEC, SPAM_BURST), now));
        *at = now;
        if !bucket.try_take(now) {
            continue;
        }
        let ts = Time(Timestamp::now());
        let key = (uid, req.type_, req.reason, req.message.clone());
        if let Some(s) = seen.get_mut(&key) {
            s.count += 1;
            s.at = now;
            let api: Api<Event> = Api::namespaced(client.clone(), &s.namespace);
            let patch = serde_json::json!({"count": s.count, "lastTimestamp": ts});
            if let Err(e) = api
                .patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                debug!(error = %e, "could not update event");
            }
            continue;
        }
        let namespace = req
            .object
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let object_name = req.object.name.clone().unwrap_or_default();
        let name = format!("{object_name}.{:x}", Timestamp::now().as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: req.object,
            reason: Some(req.reason.into()),
            message: Some(req.message),
            type_: Some(req.type_.into()),
            first_timestamp: Some(ts.clone()),
            last_timestamp: Some(ts),
            count: Some(1),
            source: Some(EventSource {
                component: Some(COMPONENT.into()),
                host: Some(node.clone()),
            }),
            reporting_component: Some(COMPONENT.into()),
            reporting_instance: Some(node.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        match api.create(&PostParams::default(), &event).await {
            Ok(_) => {
                seen.insert(
                    key,
                    Seen {
                        namespace,
                        name,
                        count: 1,
                        at: now,
                    },
                );
            }
            Err(e) => debug!(error = %e, "could not write event"),
        }
    }
}
