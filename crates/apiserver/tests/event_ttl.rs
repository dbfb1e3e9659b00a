//! Events expire `--event-ttl` after their last write, through the store (watchers see each one
//! deleted), and an event written again since is kept.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use pernode_apiserver::{ApiServer, event_ttl};
use pernode_store::EventType;
use serde_json::json;

fn event(name: &str, last: Timestamp) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default",
            "creationTimestamp": "2026-01-01T00:00:00Z"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started", "message": "m", "type": "Normal",
        "lastTimestamp": last.to_string(), "count": 1})
}

#[tokio::test]
async fn events_expire_after_the_ttl_since_their_last_write() {
    let server = ApiServer::new(support::memory_store())
        .await
        .expect("server");
    let store = server.store().clone();
    let now = Timestamp::now();
    let ago = |mins: i64| now - SignedDuration::from_mins(mins);
    store
        .create("events/default/old", event("old", ago(61)))
        .await
        .expect("old");
    store
        .create("events/default/recent", event("recent", ago(59)))
        .await
        .expect("recent");
    let mut watch = store.watch("events/", store.current_rv()).expect("watch");

    assert_eq!(
        event_ttl::expire(&store, event_ttl::DEFAULT_TTL, now).await,
        1
    );
    assert!(store.get("events/default/old").is_none());
    assert!(store.get("events/default/recent").is_some());
    let seen = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("an event")
        .expect("open")
        .expect("no error");
    assert_eq!(seen.kind, EventType::Deleted);
    assert_eq!(&*seen.entry.key, "events/default/old");

    // The sweeper: with a 1 s TTL, a fresh event is gone within seconds.
    store
        .create("events/default/fresh", event("fresh", Timestamp::now()))
        .await
        .expect("fresh");
    let sweeper = event_ttl::spawn(store.clone(), Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(15);
    while store.get("events/default/fresh").is_some() {
        assert!(
            Instant::now() < deadline,
            "the event outlived its TTL by 14 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sweeper.abort();
}
