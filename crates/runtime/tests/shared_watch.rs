//! The shared watch against a real API server (in memory): every subscriber sees the list and
//! every change, the object decoded once and shared.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher::Event;
use pernode_runtime::{SharedWatch, Subscription};

async fn client() -> kube::Client {
    let router = pernode_apiserver::in_memory_router()
        .await
        .expect("api server");
    kube::Client::new(router, "default")
}

fn lease(name: &str) -> Lease {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("lease")
}

/// The next event, within a deadline.
async fn next(sub: &mut Subscription<Lease>) -> Event<Arc<Lease>> {
    tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an event within 10 s")
        .expect("the watch is running")
}

fn name(obj: &Lease) -> &str {
    obj.metadata.name.as_deref().unwrap_or("")
}

#[tokio::test]
async fn every_subscriber_sees_the_list_and_each_change_of_one_decoded_object() {
    let client = client().await;
    let api: Api<Lease> = Api::namespaced(client, "default");
    api.create(&PostParams::default(), &lease("before"))
        .await
        .expect("create");

    let mut watch = SharedWatch::new(api.clone());
    let mut first = watch.subscribe();
    let mut second = watch.subscribe();
    tokio::spawn(watch.run());

    for sub in [&mut first, &mut second] {
        assert!(matches!(next(sub).await, Event::Init));
        match next(sub).await {
            Event::InitApply(obj) => assert_eq!(name(&obj), "before"),
            other => panic!("expected the listed object, got {other:?}"),
        }
        assert!(matches!(next(sub).await, Event::InitDone));
    }

    api.create(&PostParams::default(), &lease("after"))
        .await
        .expect("create");
    let (Event::Apply(a), Event::Apply(b)) = (next(&mut first).await, next(&mut second).await)
    else {
        panic!("expected the creation");
    };
    assert_eq!(name(&a), "after");
    assert!(Arc::ptr_eq(&a, &b), "decoded once, shared by both");

    api.delete("after", &DeleteParams::default())
        .await
        .expect("delete");
    for sub in [&mut first, &mut second] {
        match next(sub).await {
            Event::Delete(obj) => assert_eq!(name(&obj), "after"),
            other => panic!("expected the deletion, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_watch_stops_when_every_subscriber_has_gone() {
    let client = client().await;
    let api: Api<Lease> = Api::namespaced(client, "default");
    let mut watch = SharedWatch::new(api.clone());
    let mut only = watch.subscribe();
    let running = tokio::spawn(watch.run());
    assert!(matches!(next(&mut only).await, Event::Init));
    drop(only);
    // The next event finds nobody to deliver to.
    api.create(&PostParams::default(), &lease("unread"))
        .await
        .expect("create");
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the watch ends within 10 s")
        .expect("the watch task does not panic");
}
