//! The fleet page at `/ui/`: plain HTML, CSS and JavaScript compiled into the binary
//! (`include_str!`, no build step). The files hold no data: the page reads the API itself
//! (lists and `?watch=1` streams of DaemonSets, pods, nodes, ControllerRevisions and events)
//! with the viewer's own credentials, the browser's client certificate or a bearer token it
//! keeps in `sessionStorage`, so the server adds no data endpoint and RBAC decides what each
//! viewer sees.
//!
//! `/ui` paths are non-resource URLs: [`crate::authorization`] lets anonymous requests reach
//! them (the token login form must load before there is a token) and RBAC decides, through
//! the bootstrap ClusterRole `pernode:ui` (bound to every user, authenticated or not, as
//! upstream's `system:public-info-viewer`); removing that binding closes the page to
//! whoever it leaves out with upstream's 403.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Where the page lives.
pub const PATH: &str = "/ui";

/// The page's files: `(name under /ui/, content type, bytes)`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/api.js"),
    ),
    (
        "placement.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/placement.js"),
    ),
    (
        "fleet.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/fleet.js"),
    ),
    (
        "grid.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/grid.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
];

/// Scripts and styles only from this server, no inline script, no framing: the page renders
/// API data (names, messages) and must never run any of it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Whether `path` is the page's (`/ui` or under `/ui/`).
pub fn is_ui_path(path: &str) -> bool {
    path == PATH
        || path
            .strip_prefix(PATH)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The answer to a GET of a `/ui` path: `/ui` redirects to `/ui/` (so relative asset paths
/// resolve), a known file is served, anything else is the API's 404 Status.
pub fn serve(path: &str) -> Response {
    if path == PATH {
        let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
        response
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/ui/"));
        return response;
    }
    let name = path.strip_prefix("/ui/").unwrap_or_default();
    let Some((_, content_type, text)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return ApiError::no_route().into_response();
    };
    let mut response = Response::new(Body::from(*text));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A new binary ships new files under the same names.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_served_and_nothing_else() {
        assert_eq!(serve("/ui").status(), StatusCode::MOVED_PERMANENTLY);
        for (name, content_type, _) in ASSETS {
            let response = serve(&format!("/ui/{name}"));
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], *content_type);
        }
        assert_eq!(serve("/ui/../metrics").status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("/ui/absent.js").status(), StatusCode::NOT_FOUND);
        assert!(is_ui_path("/ui") && is_ui_path("/ui/app.js"));
        assert!(!is_ui_path("/uix") && !is_ui_path("/api"));
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        let (_, _, index) = ASSETS[0];
        for (name, _, _) in &ASSETS[1..] {
            assert!(index.contains(&format!("\"{name}\"")), "{name} is linked");
        }
        assert!(!index.contains("<script>"), "no inline script (CSP)");
    }
}
