//! Streaming lists (`sendInitialEvents=true`, client-go's way of listing from 1.35): the current
//! state as ADDED events, then a BOOKMARK annotated `k8s.io/initial-events-end`, then changes;
//! kube-rs's watcher with `InitialListStrategy::StreamingList` syncs on it.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures::StreamExt;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tower::ServiceExt;

#[tokio::test]
async fn a_raw_streaming_list_ends_its_initial_events_with_the_bookmark() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let request = Request::builder()
        .method(Method::GET)
        .uri("/api/v1/namespaces?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the watch times out by itself")
        .expect("body")
        .to_bytes();
    let events: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("event"))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    // The four namespaces every cluster starts with, then the end of the initial events.
    assert_eq!(
        kinds,
        ["ADDED", "ADDED", "ADDED", "ADDED", "BOOKMARK"],
        "{events:?}"
    );
    let bookmark = &events[4]["object"];
    assert_eq!(
        bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert!(bookmark["metadata"]["resourceVersion"].as_str().is_some());

    // Without resourceVersionMatch=NotOlderThan, or on a list, it is refused as upstream.
    for (uri, message) in [
        (
            "/api/v1/namespaces?watch=true&sendInitialEvents=true",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ),
        (
            "/api/v1/namespaces?sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
            "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ),
    ] {
        let request = Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        let response = router.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let status: Value = serde_json::from_slice(&body).expect("status");
        assert_eq!(status["message"], message);
    }
}

#[tokio::test]
async fn kube_rs_syncs_with_a_streaming_list() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let client = kube::Client::new(router, "default");
    let ns: Api<Namespace> = Api::all(client);
    let config = watcher::Config::default().streaming_lists();
    let mut stream = watcher::watcher(ns.clone(), config).boxed();
    let mut initial = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("no error")
        {
            Event::Init => {}
            Event::InitApply(n) => initial.push(n.metadata.name.unwrap_or_default()),
            Event::InitDone => break,
            other => panic!("unexpected event before InitDone: {other:?}"),
        }
    }
    initial.sort();
    assert_eq!(
        initial,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    let created: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "after"}})).expect("namespace");
    ns.create(&PostParams::default(), &created)
        .await
        .expect("create");
    let applied = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the change within 10 s")
        .expect("stream open")
        .expect("no error");
    match applied {
        Event::Apply(n) => assert_eq!(n.metadata.name.as_deref(), Some("after")),
        other => panic!("expected the new namespace, got {other:?}"),
    }
}
