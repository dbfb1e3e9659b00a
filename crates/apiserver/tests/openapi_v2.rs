//! `/openapi/v2` over HTTP as kube-openapi's handler serves it: protobuf or JSON by Accept,
//! 406 otherwise, one ETag, 304 on a matching If-None-Match, `Vary: Accept`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// What client-go's `DiscoveryClient.OpenAPISchema` sends.
const CLIENT_GO_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

struct Reply {
    status: StatusCode,
    content_type: String,
    etag: String,
    vary: String,
    body: Vec<u8>,
}

async fn get(router: &Router, headers: &[(header::HeaderName, &str)]) -> Reply {
    let mut request = Request::get("/openapi/v2");
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let header = |name: header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (status, content_type, etag, vary) = (
        response.status(),
        header(header::CONTENT_TYPE),
        header(header::ETAG),
        header(header::VARY),
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        content_type,
        etag,
        vary,
        body,
    }
}

#[tokio::test]
async fn served_as_protobuf_or_json_by_accept() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");

    let pb = get(&router, &[(header::ACCEPT, CLIENT_GO_ACCEPT)]).await;
    assert_eq!(pb.status, StatusCode::OK);
    assert_eq!(pb.content_type, pernode_resources::OPENAPI_V2_PROTOBUF);
    assert_eq!(pb.body, pernode_resources::openapi_v2_protobuf());
    assert_eq!(pb.vary, "Accept");
    assert!(pb.etag.starts_with('"') && pb.etag.len() > 2, "{}", pb.etag);

    let json = get(&router, &[(header::ACCEPT, "application/json")]).await;
    assert_eq!(json.status, StatusCode::OK);
    assert_eq!(json.content_type, "application/json");
    let doc: serde_json::Value = serde_json::from_slice(&json.body).expect("JSON");
    assert_eq!(doc["swagger"], "2.0");
    assert!(doc["definitions"]["io.k8s.api.apps.v1.DaemonSet"].is_object());
    assert_eq!(json.etag, pb.etag, "one ETag for both encodings");

    // No Accept is */*: JSON.
    let any = get(&router, &[]).await;
    assert_eq!(any.content_type, "application/json");

    let refused = get(&router, &[(header::ACCEPT, "application/yaml")]).await;
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
    assert!(refused.body.is_empty());
    assert_eq!(refused.vary, "Accept");
}

#[tokio::test]
async fn a_matching_if_none_match_is_not_modified() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let first = get(&router, &[(header::ACCEPT, CLIENT_GO_ACCEPT)]).await;
    let again = get(
        &router,
        &[
            (header::ACCEPT, CLIENT_GO_ACCEPT),
            (header::IF_NONE_MATCH, &first.etag),
        ],
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.etag, first.etag);

    let stale = get(
        &router,
        &[
            (header::ACCEPT, CLIENT_GO_ACCEPT),
            (header::IF_NONE_MATCH, "\"0000\""),
        ],
    )
    .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body, first.body);
}

/// kubectl lists CRDs when a kind is in neither OpenAPI document; pernode serves none.
#[tokio::test]
async fn the_crd_list_is_empty() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let response = router
        .clone()
        .oneshot(
            Request::get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let list: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(list["kind"], "CustomResourceDefinitionList");
    assert_eq!(list["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(list["items"], serde_json::json!([]));
    assert!(list["metadata"]["resourceVersion"].is_string());
}
