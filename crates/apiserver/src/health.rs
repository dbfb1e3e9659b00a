//! `/readyz` as kube-apiserver's healthz handler writes it: `ok` while every check passes;
//! otherwise 500 (upstream's code: `http.Error` with `StatusInternalServerError`) listing each
//! check (`[+]name ok`, `[-]name failed: reason withheld`) and
//! `readyz check failed`. The checks are `ping` and `log` (which always pass here) and the
//! store's own (`etcd` on etcd: a read within its health-check timeout).

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use pernode_store::Store;

/// The `/readyz` answer for a server on `store`.
pub(crate) async fn readyz(store: &Store) -> Response {
    let Some(name) = store.ready_check_name() else {
        return text(StatusCode::OK, "ok".into());
    };
    match store.check_ready().await {
        Ok(()) => text(StatusCode::OK, "ok".into()),
        Err(e) => {
            tracing::info!(check = name, error = %e, "readyz check failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "[+]ping ok\n[+]log ok\n[-]{name} failed: reason withheld\nreadyz check failed\n"
                ),
            )
        }
    }
}

/// As Go's `http.Error` (for the failure) and the plain `ok`.
fn text(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status != StatusCode::OK {
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    response
}
