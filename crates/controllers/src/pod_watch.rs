//! The pod watch the DaemonSet controller, the garbage collector, node lifecycle, pod GC, the
//! disruption controller and the scheduler share, as the controllers share one pod informer in kube-controller-manager
//! (its garbage collector too: it takes a resource's shared informer where there is one). Each
//! pod event is decoded once, as a `trim::ControllerPod` with the
//! fields any of them reads, instead of once per control loop. The scheduler, another process
//! upstream, shares it too because pernode runs it beside the controllers; the simulator (the
//! kubelets) keeps its own.
//!
//! `pernode controllers` and `pernode up` make one [`PodWatch`], hand a [`PodEvents`] to each
//! control loop's `run_with_pods`, then run the watch. Each one's `run` makes a watch of its
//! own.

use std::sync::Arc;

use kube::Api;
use kube::runtime::watcher::Event;
use pernode_runtime::{SharedWatch, Subscription};

use crate::trim::ControllerPod;

/// One watch of pods for several controllers.
pub struct PodWatch(SharedWatch<ControllerPod>);

/// One controller's view of a [`PodWatch`].
pub struct PodEvents(Subscription<ControllerPod>);

impl PodWatch {
    /// A watch of the pods of every namespace.
    pub fn all(client: &kube::Client) -> PodWatch {
        PodWatch::new(Api::all(client.clone()))
    }

    /// A watch of the pods `api` lists (one namespace's, or all).
    pub(crate) fn new(api: Api<ControllerPod>) -> PodWatch {
        PodWatch(SharedWatch::new(api))
    }

    /// Another controller reading this watch; subscribe every controller before [`run`].
    ///
    /// [`run`]: PodWatch::run
    pub fn subscribe(&mut self) -> PodEvents {
        PodEvents(self.0.subscribe())
    }

    /// Watches until every subscriber has gone.
    pub async fn run(self) {
        self.0.run().await
    }

    /// Runs `controller` on a subscription of its own, the watch alongside until it returns:
    /// how a controller run alone gets its pods.
    pub(crate) async fn feed<T, F>(mut self, controller: impl FnOnce(PodEvents) -> F) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let events = self.subscribe();
        let watching = tokio::spawn(self.run());
        let result = controller(events).await;
        watching.abort();
        result
    }
}

impl PodEvents {
    /// The events, as a stream that ends when the watch stops.
    pub(crate) fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Event<Arc<ControllerPod>>> + Send + Unpin + 'static {
        self.0
    }
}
