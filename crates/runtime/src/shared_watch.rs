//! One watch of a resource, fanned out to every control loop that reads it: the event half of
//! client-go's shared informer. kube-controller-manager runs one pod informer for all its
//! controllers; without it each controller decodes every pod event itself, and at 10,000 nodes
//! a pod event is a few kilobytes of JSON that each watcher has to scan in full.
//!
//! Subscribers get the watcher's events (`Init`, `InitApply`, `InitDone` on every (re)list,
//! then `Apply` and `Delete`) with the object behind an `Arc`, in the order the watch saw them.
//! Errors are retried with kube's default backoff and logged here; subscribers never see them,
//! only the re-list that follows. Each subscriber has an unbounded queue, as each of client-go's
//! handlers has: a slow consumer delays only itself.
//!
//! ```no_run
//! # async fn example(client: kube::Client) {
//! use futures::StreamExt;
//! use k8s_openapi::api::core::v1::Pod;
//! use pernode_runtime::SharedWatch;
//!
//! let mut pods = SharedWatch::new(kube::Api::<Pod>::all(client));
//! let mut first = pods.subscribe();
//! let mut second = pods.subscribe();
//! tokio::spawn(pods.run());
//! while let Some(event) = first.next().await {
//!     // ...
//! }
//! # }
//! ```

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// A watch of `K` not yet running, and the queues of its subscribers.
pub struct SharedWatch<K> {
    api: Api<K>,
    subscribers: Vec<mpsc::UnboundedSender<Event<Arc<K>>>>,
}

/// What one subscriber receives: the events of the shared watch. Ends when the watch stops.
pub type Subscription<K> = UnboundedReceiverStream<Event<Arc<K>>>;

impl<K> SharedWatch<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// A watch of everything `api` lists.
    pub fn new(api: Api<K>) -> SharedWatch<K> {
        SharedWatch {
            api,
            subscribers: Vec::new(),
        }
    }

    /// A new subscriber. Subscribe before [`run`](Self::run): the watch is started once, and a
    /// subscriber must see its first list to know what exists.
    pub fn subscribe(&mut self) -> Subscription<K> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.push(tx);
        UnboundedReceiverStream::new(rx)
    }

    /// Watches until every subscriber has gone (the watch itself retries forever).
    pub async fn run(mut self) {
        let kind = K::kind(&Default::default()).into_owned();
        let mut stream = watcher::watcher(self.api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(Event::Init) => Event::Init,
                Ok(Event::InitApply(obj)) => Event::InitApply(Arc::new(obj)),
                Ok(Event::InitDone) => Event::InitDone,
                Ok(Event::Apply(obj)) => Event::Apply(Arc::new(obj)),
                Ok(Event::Delete(obj)) => Event::Delete(Arc::new(obj)),
                Err(e) => {
                    tracing::debug!(%kind, error = %e, "shared watch interrupted; retrying");
                    continue;
                }
            };
            self.subscribers
                .retain(|subscriber| subscriber.send(event.clone()).is_ok());
            if self.subscribers.is_empty() {
                return;
            }
        }
    }
}
