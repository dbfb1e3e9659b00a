//! `/metrics` of a separate `pernode controllers`: client-go's work-queue metrics of every
//! controller queue (`workqueue_depth`, `workqueue_adds_total`, ...), in the OpenMetrics text
//! format of the API server's page. In `pernode up` they are on the API server's `/metrics`; a
//! process of its own serves them itself, as kube-controller-manager does.
//!
//! kube-controller-manager serves its page on its HTTPS port behind delegated authentication
//! (TokenReview, SubjectAccessReview). This listener is plain HTTP, as controller-runtime's
//! `--metrics-bind-address`: bind it to loopback (or a network only the scraper reaches). It
//! serves whether or not the replica leads, as upstream's does.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use pernode_apiserver::metrics::CONTENT_TYPE as OPENMETRICS;
use prometheus_client::registry::Registry;

/// Binds `address` and serves the work queues' metrics there until the process ends; returns
/// the bound address (`:0` picks a free port).
pub async fn serve(address: SocketAddr) -> anyhow::Result<SocketAddr> {
    let mut registry = Registry::default();
    pernode_controllers::workqueue_metrics::register(&mut registry);
    let registry = Arc::new(registry);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding --metrics-bind-address {address}"))?;
    let bound = listener
        .local_addr()
        .context("the metrics listener's address")?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut text = String::new();
                // Writing to a String cannot fail.
                let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
                ([(CONTENT_TYPE, OPENMETRICS)], text)
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    tracing::info!("serving /metrics on http://{bound}/metrics");
    Ok(bound)
}
