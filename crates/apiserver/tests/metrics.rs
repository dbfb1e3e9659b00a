//! `/metrics`: a known set of requests moves upstream's request, storage and commit metrics by
//! exactly as much; a watch is long-running until it ends.

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use pernode_apiserver::metrics::Samples;
use serde_json::{Value, json};
use support::{send_json, server_with_accounts};
use tower::ServiceExt;

async fn scrape(router: &Router) -> Samples {
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        pernode_apiserver::metrics::CONTENT_TYPE
    );
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Samples::parse(std::str::from_utf8(&bytes).expect("utf-8"))
}

/// A request's labels in `apiserver_request_total` (core group, `v1`, no subresource).
fn request(
    verb: &str,
    resource: &str,
    scope: &str,
    code: &str,
    dry_run: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("verb", verb.to_string()),
        ("dry_run", dry_run.to_string()),
        ("group", String::new()),
        ("version", "v1".to_string()),
        ("resource", resource.to_string()),
        ("subresource", String::new()),
        ("scope", scope.to_string()),
        ("component", "apiserver".to_string()),
        ("code", code.to_string()),
    ]
}

fn get(samples: &Samples, name: &str, labels: &[(&'static str, String)]) -> f64 {
    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    samples.get(name, &labels)
}

fn without_code(labels: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    labels
        .iter()
        .filter(|(k, _)| *k != "code")
        .cloned()
        .collect()
}

fn config_map(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

#[tokio::test]
async fn requests_move_upstreams_counters_by_exactly_their_number() {
    let server = server_with_accounts().await;
    let router = server.router();
    let before = scrape(&router).await;

    let collection = "/api/v1/namespaces/default/configmaps";
    for name in ["a", "b", "c"] {
        let (status, _) = send_json(
            &router,
            Method::POST,
            collection,
            "application/json",
            config_map(name),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let dry = format!("{collection}?dryRun=All");
    let (status, _) = send_json(
        &router,
        Method::POST,
        &dry,
        "application/json",
        config_map("d"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = send_json(
        &router,
        Method::GET,
        &format!("{collection}/a"),
        "",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..2 {
        let (status, _) = send_json(
            &router,
            Method::GET,
            &format!("{collection}/nope"),
            "",
            Value::Null,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = send_json(&router, Method::GET, collection, "", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send_json(&router, Method::GET, "/api/v1/configmaps", "", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let patch = json!({"data": {"k": "w"}});
    let (status, _) = send_json(
        &router,
        Method::PATCH,
        &format!("{collection}/b"),
        "application/merge-patch+json",
        patch,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send_json(
        &router,
        Method::DELETE,
        &format!("{collection}/c"),
        "",
        Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Refused by the authorizer: not an instrumented request, as upstream's filter refuses it
    // before the route.
    let alice = server.router_as(pernode_auth::user::UserInfo::new("alice", ["devs"]));
    let (status, _) = send_json(&alice, Method::GET, collection, "", Value::Null).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let after = scrape(&router).await;
    let moved = |name: &str, labels: &[(&'static str, String)]| {
        get(&after, name, labels) - get(&before, name, labels)
    };
    let total = "apiserver_request_total";
    let expected = [
        (request("POST", "configmaps", "resource", "201", ""), 3.0),
        (request("POST", "configmaps", "resource", "201", "All"), 1.0),
        (request("GET", "configmaps", "resource", "200", ""), 1.0),
        (request("GET", "configmaps", "resource", "404", ""), 2.0),
        (request("LIST", "configmaps", "namespace", "200", ""), 1.0),
        (request("LIST", "configmaps", "cluster", "200", ""), 1.0),
        (request("PATCH", "configmaps", "resource", "200", ""), 1.0),
        (request("DELETE", "configmaps", "resource", "200", ""), 1.0),
    ];
    for (labels, n) in &expected {
        assert_eq!(moved(total, labels), *n, "{labels:?}");
    }
    let all: f64 = expected.iter().map(|(_, n)| n).sum();
    let counted: f64 = ["GET", "LIST", "POST", "PATCH", "DELETE", "WATCH", "PUT"]
        .iter()
        .flat_map(|verb| {
            ["resource", "namespace", "cluster"]
                .into_iter()
                .flat_map(move |scope| {
                    ["200", "201", "403", "404"]
                        .into_iter()
                        .flat_map(move |code| {
                            ["", "All"]
                                .into_iter()
                                .map(move |dry| request(verb, "configmaps", scope, code, dry))
                        })
                })
        })
        .map(|labels| moved(total, &labels))
        .sum();
    assert_eq!(
        counted, all,
        "nothing else was counted for configmaps, the 403 included"
    );
    // Each request's duration observed once, under the labels without the code.
    let durations = "apiserver_request_duration_seconds_count";
    assert_eq!(moved(durations, &without_code(&expected[0].0)), 3.0);
    assert_eq!(
        moved(durations, &without_code(&expected[3].0)),
        3.0,
        "GET: 200 and 404s"
    );
    assert!(after.has("apiserver_request_duration_seconds_bucket"));

    // Two stored (a and b), the dry run and the deleted one not.
    assert_eq!(
        after.get("apiserver_storage_objects", &[("resource", "configmaps")]),
        2.0
    );
    assert!(after.get("apiserver_storage_objects", &[("resource", "namespaces")]) >= 4.0);
    // Four writes reached the store (three creates and the patch, the delete): each its own
    // batch, as they were sent one after another.
    let commits = |s: &Samples| s.get("etcd_disk_backend_commit_duration_seconds_count", &[]);
    assert_eq!(commits(&after) - commits(&before), 5.0);
    let writes = |s: &Samples| s.get("pernode_store_commit_batch_writes_sum", &[]);
    assert_eq!(writes(&after) - writes(&before), 5.0);
}

#[tokio::test]
async fn a_watch_is_long_running_until_it_ends_then_counted() {
    let server = server_with_accounts().await;
    let router = server.router();
    let watching = [
        ("verb", "WATCH"),
        ("group", "apps"),
        ("version", "v1"),
        ("resource", "daemonsets"),
        ("subresource", ""),
        ("scope", "namespace"),
        ("component", "apiserver"),
    ];
    let watched = [watching.as_slice(), &[("dry_run", ""), ("code", "200")]].concat();
    let before = scrape(&router).await;
    assert_eq!(before.get("apiserver_longrunning_requests", &watching), 0.0);

    let request = Request::builder()
        .uri("/apis/apps/v1/namespaces/default/daemonsets?watch=true")
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let open = scrape(&router).await;
    assert_eq!(open.get("apiserver_longrunning_requests", &watching), 1.0);
    assert_eq!(
        open.get("apiserver_request_total", &watched),
        before.get("apiserver_request_total", &watched),
        "counted when it ends, as upstream records it after its handler returns"
    );

    drop(response);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = scrape(&router).await;
        let ended = now.get("apiserver_longrunning_requests", &watching) == 0.0;
        let counted = now.get("apiserver_request_total", &watched)
            - before.get("apiserver_request_total", &watched);
        if ended && counted == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ended {ended}, counted {counted}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
