//! What the tests of the API server share: an in-memory store, a server on a loopback port,
//! and one request through the router.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use pernode_apiserver::serving::ServeOptions;
use pernode_apiserver::{ApiServer, Serving};
use pernode_store::Store;
use serde_json::Value;
use tower::ServiceExt;

/// A fresh in-memory store with the API server's indexes.
pub fn memory_store() -> Store {
    Store::in_memory(pernode_apiserver::registry::indexer(), Default::default())
}

/// An API server serving on a loopback port until dropped with it.
pub struct Tcp {
    pub addr: SocketAddr,
    pub serving: Serving,
    pub server: Arc<ApiServer>,
}

/// Serves `server` on a free loopback port with `options`.
pub async fn serve_tcp(server: ApiServer, options: ServeOptions) -> Tcp {
    let server = Arc::new(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let serving = server.spawn_serving_with(listener, options).expect("serve");
    Tcp {
        addr: serving.addr,
        serving,
        server,
    }
}

/// Sends one request through `router`; the status and the body as JSON (null if it is not).
pub async fn send(
    router: &Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body.into())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// [`send`] with a JSON body (`Value::Null`: none).
pub async fn send_json(
    router: &Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: Value,
) -> (StatusCode, Value) {
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    send(router, method, path, content_type, body).await
}

/// A server over a fresh in-memory store, run without controllers: the `default`
/// ServiceAccounts stand in for the service account controller's.
pub async fn server_with_accounts() -> ApiServer {
    let store = memory_store();
    pernode_apiserver::seed_default_service_accounts(&store)
        .await
        .expect("accounts");
    ApiServer::new(store).await.expect("server")
}
