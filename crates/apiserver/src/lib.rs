//! pernode's Kubernetes API server: the HTTP surface kubectl, kube-rs and client-go talk to.
//!
//! A request flows: [`target`] (what the path names) → [`params`] (query, Accept) → [`handlers`]
//! (the verb) → [`registry`] (per-kind strategy and typed admission) → the store. Lists and
//! watches are answered from the store's in-memory state ([`filter`], [`watch`]); Tables come
//! from pernode-printers; discovery and OpenAPI from pernode-resources.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let router = pernode_apiserver::in_memory_router().await?;
//! // In-process client, no TCP: kube::Client::new(router, "default")
//! # Ok(()) }
//! ```

pub mod access_review;
pub mod admission_plugins;
pub mod audit;
pub mod authentication;
pub mod authorization;
pub mod bootstrap_rbac;
pub mod codec;
pub mod crd;
pub mod edit;
pub mod error;
pub mod event_ttl;
pub mod eviction;
pub mod field_manager;
pub mod filter;
pub mod handlers;
mod health;
pub mod impersonation;
pub mod kinds;
pub mod kubernetes_service;
pub mod max_in_flight;
pub mod metrics;
pub mod namespace_lifecycle;
pub mod node_graph;
pub mod node_proxy;
pub mod params;
pub mod rbac_authorizer;
pub mod rbac_escalation;
pub mod registry;
pub mod service_account;
pub mod service_alloc;
pub mod serving;
pub mod target;
pub mod token_authn;
pub mod token_request;
pub mod token_review;
pub mod ui;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pernode_store::{Store, StoreError};
use serde_json::{Value, json};
use tokio::sync::watch as signal;

use crate::error::ApiError;

/// Shared state of the API server.
pub struct AppState {
    pub store: Store,
    /// The only way out to nodes (kubelets): see [`node_proxy`].
    pub node_dialer: node_proxy::NodeDialer,
    /// How connections to kubelets are secured and who the server is to them.
    pub kubelet_client: node_proxy::KubeletClient,
    /// Flips to true when the server shuts down, so open watch streams end.
    pub shutdown: signal::Receiver<bool>,
    /// Requests dispatched since start (for `pernode bench`).
    pub requests: std::sync::atomic::AtomicU64,
    /// What this server serves: the built-ins and the established CRDs' resources.
    pub catalog: Arc<pernode_resources::Catalog>,
    /// Establishes CRDs and keeps `catalog` current ([`crd`]).
    pub crds: Arc<crd::Controller>,
    /// Decides on every request ([`authorization`]).
    pub authorizer: Box<dyn pernode_auth::authorizer::Authorizer>,
    /// Keeps the RBAC authorizer's policy (in `authorizer`'s chain) current
    /// ([`rbac_authorizer`]); the escalation checks of RBAC writes read it.
    pub rbac: Arc<rbac_authorizer::Controller>,
    /// Issues (TokenRequest) and verifies (TokenReview, bearer tokens) service-account tokens
    /// ([`token_authn`]).
    pub service_account_tokens: token_authn::ServiceAccountTokens,
    /// Logs every request ([`audit`]); `None` (the default) audits nothing, at no cost.
    pub audit: Option<Arc<audit::Auditor>>,
    /// What `/metrics` exposes; `dispatch` records every authorized resource request.
    pub metrics: Arc<metrics::ApiMetrics>,
}

/// Where the key that signs service-account tokens comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ServiceAccountKey {
    /// A fresh key for this process alone: its tokens die with it (tests, in-memory servers).
    #[default]
    Ephemeral,
    /// The key kept in this directory ([`pernode_auth::serviceaccount::KEY_FILE`], owner-only),
    /// generated on the first start and read on every later one: `pernode up`'s data dir.
    Dir(std::path::PathBuf),
    /// The key in this PEM file (kube-apiserver's `--service-account-signing-key-file`).
    File(std::path::PathBuf),
}

/// How an API server is set up beyond its store ([`ApiServer::with_options`]).
#[derive(Default)]
pub struct ApiServerOptions {
    /// The only way out to nodes ([`node_proxy`]).
    pub node_dialer: node_proxy::NodeDialer,
    /// TLS to kubelets: the server's client certificate and the kubelets' CA
    /// ([`node_proxy::KubeletClient`]; by default none of either).
    pub kubelet_client: node_proxy::KubeletClient,
    /// The service-account token signing key.
    pub service_account_key: ServiceAccountKey,
    /// More keys tokens are accepted from besides the signing key's (kube-apiserver's
    /// `--service-account-key-file`, e.g. the previous key during a rotation).
    pub service_account_verifying_keys: Vec<pernode_auth::serviceaccount::VerifyingKey>,
    /// The `iss` of issued tokens (`--service-account-issuer`); empty: upstream's
    /// [`pernode_auth::serviceaccount::DEFAULT_ISSUER`].
    pub service_account_issuer: String,
    /// The server's own audiences (`--api-audiences`); empty: the issuer alone, as upstream.
    pub api_audiences: Vec<String>,
    /// The audit log (kube-apiserver's `--audit-log-path`, `--audit-policy-file`).
    pub audit: Option<audit::Auditor>,
}

/// A running API server's handle: its router and the switch that ends its watches.
pub struct ApiServer {
    state: Arc<AppState>,
    shutdown: signal::Sender<bool>,
}

impl ApiServer {
    /// Wraps a store, creating the system namespaces and ensuring the bootstrap RBAC policy
    /// ([`bootstrap_rbac`]).
    pub async fn new(store: Store) -> Result<ApiServer, ApiError> {
        ApiServer::with_node_dialer(store, node_proxy::NodeDialer::default()).await
    }

    /// As [`ApiServer::new`], dialling nodes through `node_dialer` (tests count and restrict
    /// the server's outbound connections with it).
    pub async fn with_node_dialer(
        store: Store,
        node_dialer: node_proxy::NodeDialer,
    ) -> Result<ApiServer, ApiError> {
        let options = ApiServerOptions {
            node_dialer,
            ..ApiServerOptions::default()
        };
        ApiServer::with_options(store, options).await
    }

    /// As [`ApiServer::new`], set up by `options` (where the token signing key is kept, the
    /// issuer and audiences, the node dialer).
    pub async fn with_options(
        store: Store,
        mut options: ApiServerOptions,
    ) -> Result<ApiServer, ApiError> {
        let audit = options.audit.take();
        let service_account_tokens = token_authn::ServiceAccountTokens::new(&options)
            .map_err(|e| ApiError::internal(format!("service account signing key: {e}")))?;
        let (shutdown, rx) = signal::channel(false);
        let catalog = Arc::new(pernode_resources::Catalog::new());
        let crds = crd::Controller::new(catalog.clone());
        let rbac = rbac_authorizer::Controller::new();
        let graph = Arc::new(node_graph::StoreGraph::new(store.clone()));
        let metrics = Arc::new(metrics::ApiMetrics::new(&store));
        let state = Arc::new(AppState {
            store,
            node_dialer: options.node_dialer,
            kubelet_client: options.kubelet_client,
            shutdown: rx.clone(),
            requests: Default::default(),
            catalog,
            crds,
            authorizer: Box::new(authorization::chain(graph, rbac.authorizer())),
            rbac,
            service_account_tokens,
            audit: audit.map(Arc::new),
            metrics,
        });
        bootstrap(&state.store).await?;
        bootstrap_rbac::ensure(&state.store).await?;
        // After the bootstrap policy, so that it decides the first request.
        state.rbac.start(state.store.clone(), rx.clone()).await;
        state.crds.start(state.store.clone(), rx).await;
        Ok(ApiServer { state, shutdown })
    }

    /// The router for in-process callers, as `system:admin` (group `system:masters`): tests
    /// and tools that own the server. The control loops use [`ApiServer::router_as`].
    pub fn router(&self) -> Router {
        self.router_as(pernode_auth::user::UserInfo::new(
            "system:admin",
            [pernode_auth::user::SYSTEM_PRIVILEGED_GROUP],
        ))
    }

    /// The router for an in-process caller with this identity (authorized as any request).
    pub fn router_as(&self, user: pernode_auth::user::UserInfo) -> Router {
        let identity = authorization::Identity::of(user.authenticated());
        let router = audit::layer(router(self.state.clone()), &self.state);
        router.layer(axum::middleware::map_request(
            move |mut request: Request| {
                let identity = identity.clone();
                async move {
                    request.extensions_mut().insert(identity);
                    request
                }
            },
        ))
    }

    /// [`ApiServer::router_as`] for an in-process control loop (a controller, the scheduler,
    /// the simulator's kubelets) that names itself with `agent` as its `User-Agent`: the prefix
    /// of the agent before its first `/` is the field manager of the loop's writes, as
    /// upstream. Its lists and watches leave out `metadata.managedFields`
    /// ([`codec::ManagedFields::Stripped`]), which kube-controller-manager's informers drop as they
    /// decode (`CreateControllerContext`'s transform): no loop reads them, and every watcher
    /// would otherwise skip them in each event.
    pub fn router_for_control_loop(
        &self,
        user: pernode_auth::user::UserInfo,
        agent: &'static str,
    ) -> Router {
        self.router_as(user).layer(axum::middleware::map_request(
            move |mut request: Request| async move {
                request
                    .headers_mut()
                    .entry(axum::http::header::USER_AGENT)
                    .or_insert(axum::http::HeaderValue::from_static(agent));
                request
                    .extensions_mut()
                    .insert(codec::ManagedFields::Stripped);
                request
            },
        ))
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The server's shared state (for the listener's authentication:
    /// [`token_authn::authenticate_bearer`]).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// What this server's `/metrics` exposes ([`metrics::ApiMetrics::add_registry`] adds more).
    pub fn metrics(&self) -> &Arc<metrics::ApiMetrics> {
        &self.state.metrics
    }

    /// Waits (up to `timeout`) until the audit events of the requests answered so far are
    /// written: before the process exits. True at once when the server audits nothing.
    pub async fn flush_audit(&self, timeout: std::time::Duration) -> bool {
        match &self.state.audit {
            Some(auditor) => auditor.sink().flush(timeout).await,
            None => true,
        }
    }

    /// Requests dispatched since start (watches count once, when they open).
    pub fn requests(&self) -> u64 {
        self.state
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Serves HTTP on `listener` in a background task until [`Serving::stop`], with
    /// kube-apiserver's defaults ([`serving::ServeOptions`]).
    pub fn spawn_serving(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
    ) -> std::io::Result<Serving> {
        self.spawn_serving_with(listener, serving::ServeOptions::default())
    }

    /// As [`ApiServer::spawn_serving`], with the given limits and timeouts.
    pub fn spawn_serving_with(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        options: serving::ServeOptions,
    ) -> std::io::Result<Serving> {
        let addr = listener.local_addr()?;
        let reconciler = kubernetes_service::spawn_reconciler(
            self.store().clone(),
            addr,
            options.endpoint_lease_ttl,
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let closer = self.shutdown.clone();
        let router = router(self.state.clone());
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.await;
                // Open watches would otherwise hold the graceful shutdown forever.
                let _ = closer.send(true);
            };
            serving::serve(listener, router, state, options, stop).await;
            Ok(())
        });
        Ok(Serving {
            addr,
            stop,
            task,
            reconciler,
            store: self.store().clone(),
        })
    }
}

/// An API server serving on a socket: its address, and how to stop it.
pub struct Serving {
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Keeps this server in the `kubernetes` Endpoints ([`kubernetes_service`]).
    reconciler: tokio::task::JoinHandle<()>,
    store: Store,
}

impl Serving {
    /// Stops accepting, ends open watches, and waits up to `grace` for connections to finish.
    /// Returns false if some were still open after `grace`.
    pub async fn stop(self, grace: std::time::Duration) -> std::io::Result<bool> {
        // Out of the `kubernetes` Endpoints first, as upstream's server removes its lease.
        self.reconciler.abort();
        if let Err(e) = kubernetes_service::remove(&self.store, self.addr).await {
            tracing::warn!(error = %e, "could not remove this server from the kubernetes Endpoints");
        }
        let _ = self.stop.send(());
        match tokio::time::timeout(grace, self.task).await {
            Ok(Ok(result)) => result.map(|()| true),
            Ok(Err(join)) => Err(std::io::Error::other(join)),
            Err(_) => Ok(false),
        }
    }
}

/// An API server over a fresh in-memory store, for tests and in-process clients:
/// `kube::Client::new(router, "default")`. Its system namespaces have the `default`
/// ServiceAccount the service account controller gives them in a running cluster (see
/// [`seed_default_service_accounts`]), so pods can be created there without that controller.
pub async fn in_memory_router() -> Result<Router, ApiError> {
    in_memory_router_with(ApiServerOptions::default()).await
}

/// As [`in_memory_router`], set up by `options` (e.g. its kubelet client certificate).
pub async fn in_memory_router_with(options: ApiServerOptions) -> Result<Router, ApiError> {
    let store = Store::in_memory(registry::indexer(), Default::default());
    let server = ApiServer::with_options(store, options).await?;
    seed_default_service_accounts(server.store()).await?;
    // Dropping the server drops its shutdown switch; watches then end only when clients go.
    Ok(server.router())
}

/// Opens (or creates) the embedded store in `data_dir`.
pub fn open_store(data_dir: &std::path::Path) -> Result<Store, StoreError> {
    Store::open(data_dir, registry::indexer(), Default::default())
}

/// Creates `obj` at `key` unless something is stored there (a racing writer included), with
/// the identity the server gives every new object (uid, creationTimestamp): how the server's
/// built-in objects are written.
pub(crate) async fn ensure_object(
    store: &Store,
    key: &str,
    mut obj: Value,
) -> Result<(), ApiError> {
    if store.get(key).is_some() {
        return Ok(());
    }
    obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
    obj["metadata"]["creationTimestamp"] = json!(registry::now_rfc3339());
    match store.create(key, obj).await {
        Ok(_) | Err(StoreError::AlreadyExists) => Ok(()),
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// Writes the `default` ServiceAccount of each system namespace that lacks one, as the service
/// account controller (`pernode_controllers::service_account`) does in a running cluster: for
/// servers run without controllers (tests). Pods are admitted only with an existing account.
pub async fn seed_default_service_accounts(store: &Store) -> Result<(), ApiError> {
    for ns in handlers::SYSTEM_NAMESPACES {
        let account = json!({
            "kind": "ServiceAccount",
            "apiVersion": "v1",
            "metadata": {"name": "default", "namespace": ns},
        });
        ensure_object(store, &format!("serviceaccounts/{ns}/default"), account).await?;
    }
    Ok(())
}

/// The namespaces, PriorityClasses and `kubernetes` Service every cluster starts with.
async fn bootstrap(store: &Store) -> Result<(), ApiError> {
    for ns in handlers::SYSTEM_NAMESPACES {
        let namespace = json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        ensure_object(store, &format!("namespaces/{ns}"), namespace).await?;
    }
    kubernetes_service::ensure_service(store).await?;
    for (key, class) in admission_plugins::priority::system_classes() {
        ensure_object(store, &key, class).await?;
    }
    Ok(())
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

fn json_body(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_value(v: &Value) -> Response {
    json_body(StatusCode::OK, "application/json", v.to_string())
}

async fn dispatch(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = std::time::Instant::now();
    state
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    tracing::trace!(method = %parts.method, %path, query = parts.uri.query().unwrap_or(""), "request");
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let user = match authentication::requester(&parts.extensions, &path) {
        Ok(user) => user,
        Err(why) => {
            tracing::debug!(%path, %why, "unauthenticated request");
            return authorization::unauthorized().into_response();
        }
    };
    // Present only when this request is audited ([`audit`]).
    let audit = match state.audit {
        Some(_) => parts.extensions.get::<audit::Recorder>().cloned(),
        None => None,
    };
    let requester = user.clone();
    let user = match impersonation::impersonate(state.authorizer.as_ref(), user, &parts.headers) {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    if let Some(audit) = &audit
        && !Arc::ptr_eq(&user, &requester)
    {
        audit.impersonated(user.clone());
    }
    let view = state.catalog.view();
    if let Some(req) = node_proxy::resource_metrics::parse(&path) {
        let query = params::Query::parse(parts.uri.query());
        return serve_resource_metrics(&state, &parts.method, &user, req, &query, audit.as_ref())
            .await;
    }
    if !target::is_resource_path(&path) {
        if let Err(e) = authorization::authorize_path(
            state.authorizer.as_ref(),
            &user,
            &parts.method,
            &path,
            audit.as_ref(),
        ) {
            tracing::debug!(user = %user.name, %path, message = %e.message, "request forbidden");
            return e.into_response();
        }
        if matches!(parts.method, Method::GET | Method::HEAD) && ui::is_ui_path(&path) {
            return ui::serve(&path);
        }
        if parts.method == Method::GET && path.trim_end_matches('/') == "/readyz" {
            return health::readyz(&state.store).await;
        }
        if parts.method == Method::GET
            && let Some(response) = non_resource(&state, &view, &path, &accept, &parts.headers)
        {
            return response;
        }
        return ApiError::no_route().into_response();
    }
    let target = match target::parse(&view, &path) {
        Ok(Some(t)) => t,
        Ok(None) => return ApiError::no_route().into_response(),
        Err(e) => return e.into_response(),
    };
    let query = params::Query::parse(parts.uri.query());
    if let Err(e) = authorization::authorize_resource(
        state.authorizer.as_ref(),
        &user,
        &parts.method,
        &target,
        &query,
        audit.as_ref(),
    ) {
        tracing::debug!(user = %user.name, %path, message = %e.message, "request forbidden");
        return e.into_response();
    }
    let sample =
        metrics::requests::Sample::new(started, &parts.method, &target, &query, &parts.headers);
    let live = sample
        .is_long_running()
        .then(|| state.metrics.requests.long_running(&sample));
    let response = serve_resource(&state, parts, body, target, query, user, audit).await;
    state.metrics.requests.finish(sample, live, response)
}

/// `metrics.k8s.io`: authorized as upstream authorizes a request to an aggregated API
/// (discovery as a path, metrics as resources of the group), then answered.
async fn serve_resource_metrics(
    state: &Arc<AppState>,
    method: &Method,
    user: &pernode_auth::user::UserInfo,
    req: node_proxy::resource_metrics::MetricsRequest,
    query: &params::Query,
    audit: Option<&audit::Recorder>,
) -> Response {
    use node_proxy::resource_metrics::{GROUP, MetricsRequest, VERSION};
    let authorized = match &req {
        MetricsRequest::Metrics {
            resource,
            namespace,
            name,
        } => {
            let verb = if name.is_some() { "get" } else { "list" };
            let attrs = pernode_auth::authorizer::Attributes::resource(
                user,
                verb,
                namespace.as_deref().unwrap_or(""),
                GROUP,
                VERSION,
                resource,
                "",
                name.as_deref().unwrap_or(""),
            );
            authorization::decide(state.authorizer.as_ref(), &attrs, audit)
        }
        _ => {
            let path = match req {
                MetricsRequest::Group => format!("/apis/{GROUP}"),
                _ => format!("/apis/{GROUP}/{VERSION}"),
            };
            authorization::authorize_path(state.authorizer.as_ref(), user, method, &path, audit)
        }
    };
    if let Err(e) = authorized {
        return e.into_response();
    }
    if method != Method::GET {
        return ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {GROUP})"
        ))
        .into_response();
    }
    match node_proxy::resource_metrics::serve(state, req, query).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Reads an authorized resource request's body and runs its verb.
async fn serve_resource(
    state: &Arc<AppState>,
    mut parts: http::request::Parts,
    body: Body,
    target: target::Target,
    query: params::Query,
    user: Arc<pernode_auth::user::UserInfo>,
    audit: Option<audit::Recorder>,
) -> Response {
    let path = parts.uri.path();
    // Read one byte past the limit so an oversized body is a 413, not a truncated parse.
    let body = match axum::body::to_bytes(body, codec::MAX_BODY_BYTES + 1).await {
        Ok(b) if b.len() > codec::MAX_BODY_BYTES => return ApiError::too_large().into_response(),
        Ok(b) => b,
        Err(_) => return ApiError::too_large().into_response(),
    };
    if let Some(audit) = &audit {
        audit.body(&body);
    }
    let req = handlers::Request {
        method: parts.method.clone(),
        target,
        query,
        user,
        managed_fields: parts
            .extensions
            .get::<codec::ManagedFields>()
            .copied()
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    };
    let result = if node_proxy::connect::is_connect(&req) {
        let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        node_proxy::connect::serve(state, req, upgrade).await
    } else {
        handlers::handle(state.clone(), req).await
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(method = %parts.method, %path, code = e.code, message = %e.message, "request failed");
            e.into_response()
        }
    }
}

/// Discovery, version, health and OpenAPI: everything that is not a resource.
fn non_resource(
    state: &AppState,
    view: &pernode_resources::View,
    path: &str,
    accept: &str,
    headers: &header::HeaderMap,
) -> Option<Response> {
    let path = path.trim_end_matches('/');
    let aggregated = pernode_resources::wants_aggregated(accept);
    let response = match path {
        "/healthz" | "/readyz" | "/livez" => {
            json_body(StatusCode::OK, "text/plain; charset=utf-8", "ok")
        }
        "/version" => json_value(&pernode_resources::version_info()),
        "/api" if aggregated => json_body(
            StatusCode::OK,
            pernode_resources::AGGREGATED_CONTENT_TYPE,
            pernode_resources::aggregated_discovery_core(view).to_string(),
        ),
        "/api" => json_value(&pernode_resources::api_versions()),
        "/apis" if aggregated => {
            let mut groups = pernode_resources::aggregated_discovery_apis(view);
            if let Some(items) = groups["items"].as_array_mut() {
                items.push(node_proxy::resource_metrics::aggregated_group());
            }
            json_body(
                StatusCode::OK,
                pernode_resources::AGGREGATED_CONTENT_TYPE,
                groups.to_string(),
            )
        }
        "/apis" => {
            let mut groups = pernode_resources::api_group_list(view);
            if let Some(items) = groups["groups"].as_array_mut() {
                items.push(node_proxy::resource_metrics::api_group());
            }
            json_value(&groups)
        }
        "/openapi/v3" => json_value(&state.catalog.openapi().index()),
        "/openapi/v2" => openapi_v2(state, accept, headers),
        "/metrics" => json_body(
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            state.metrics.encode(),
        ),
        _ => {
            if let Some(doc) = path.strip_prefix("/openapi/v3/") {
                return Some(match state.catalog.openapi().document(doc) {
                    Some(d) => json_body(StatusCode::OK, "application/json", d.bytes().to_vec()),
                    None => ApiError::no_route().into_response(),
                });
            }
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let list = match segments.as_slice() {
                ["api", version] => pernode_resources::api_resource_list(view, "", version),
                ["apis", group, version] => {
                    pernode_resources::api_resource_list(view, group, version)
                }
                _ => return None,
            };
            match list {
                Some(v) => json_value(&v),
                None => ApiError::no_route().into_response(),
            }
        }
    };
    Some(response)
}

/// `/openapi/v2` as kube-openapi's handler serves it: JSON or gnostic protobuf by Accept
/// (406 for anything else), `Vary: Accept`, an ETag, and 304 when If-None-Match has it.
fn openapi_v2(state: &AppState, accept: &str, headers: &header::HeaderMap) -> Response {
    let mut response = match state.catalog.openapi().v2_for(accept) {
        None => StatusCode::NOT_ACCEPTABLE.into_response(),
        Some(doc) => {
            let cached = headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|tag| ["*", doc.etag()].contains(&tag.trim().trim_start_matches("W/")));
            let mut r = if cached {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                json_body(StatusCode::OK, doc.content_type, doc.body().to_vec())
            };
            if let Ok(etag) = HeaderValue::from_str(doc.etag()) {
                r.headers_mut().insert(header::ETAG, etag);
            }
            r
        }
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

/// The address a `--listen` value names, with `:0` left for the OS to choose.
pub fn parse_listen(s: &str) -> Result<SocketAddr, std::net::AddrParseError> {
    s.parse()
}
