//! HTTP routes over a [`Server`] (axum on tokio).
//!
//! - `GET /healthz`: `{"status": "ok"}` and nothing else;
//! - `GET /v1/model`: the [`super::ServicePlan`] (JSON);
//! - `POST /v1/keys`: a bundle in, `{"key_id": ..., "new": ...}` out;
//! - `GET /v1/keys/{key_id}`: 200 when the tenant has the bundle, else 404;
//! - `DELETE /v1/keys/{key_id}`: the tenant's bundle deleted (204);
//! - `POST /v1/infer/{key_id}`: a message of ciphertexts in, one out;
//! - `GET /metrics` (on [`metrics_router`], served on its own address):
//!   the Prometheus exposition of [`Metrics`].
//!
//! Any other path is a JSON 404 naming the routes; a route asked with
//! another method a JSON 405.
//!
//! Invariants, in the order a request meets them:
//! 1. the tenant is authenticated from the `Authorization` header (401
//!    without a known token when the server has a tokens file) and holds
//!    one of its [`HttpConfig::tenant_requests`] in-flight slots, or the
//!    request is shed (503): one tenant cannot starve the others;
//! 2. a declared `Content-Length` over the route's limit (the plan's
//!    [`super::WireLimits`]: a bundle's or a request's exact size) is a
//!    413 at once, before a byte of the body is read;
//! 3. admission: at most `workers + queue` requests per route are
//!    admitted, every other is shed at once with 503 and `Retry-After`
//!    (tower's `ConcurrencyLimit` under `LoadShed`), so buffered bodies
//!    never exceed `(workers + queue) × limit` per route;
//! 4. the body takes its declared length from the byte budget
//!    [`HttpConfig::body_bytes`] at once or is shed (503): bodies in memory
//!    never exceed the budget, whatever the sizes; it is then read within
//!    [`HttpConfig::body_timeout`] (408 past it), never past the limit
//!    (413), into one allocation;
//! 5. CKKS work runs on tokio's blocking pool behind a semaphore of
//!    [`HttpConfig::workers`] permits; waiting and the work are each
//!    bounded by [`HttpConfig::timeout`] (503 past it; the work is not
//!    interrupted, its result is dropped).
//!
//! Every error is a JSON body `{"error": KIND, "detail": ...}` with a 4xx
//! status for anything the client did wrong, and the server keeps serving.

use super::ServiceError;
use super::metrics::Metrics;
use super::server::Server;
use super::tenants::{Tenant, Tenants};
use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Extension, MatchedPath, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;

/// Limits of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Requests evaluated at once (each already uses every core through rayon).
    pub workers: usize,
    /// Requests per route admitted beyond the workers, waiting for one;
    /// any more are shed with 503.
    pub queue: usize,
    /// Bound on waiting for a worker, and on the work itself.
    pub timeout: Duration,
    /// Bound on reading a request body.
    pub body_timeout: Duration,
    /// Bound on reading a request's headers, and on an idle keep-alive
    /// connection waiting for its next request.
    pub header_timeout: Duration,
    /// Connections open at once; more are closed at once (plain HTTP: a 503).
    pub max_connections: usize,
    /// Bytes of request bodies held in memory at once, all routes
    /// together (raised to the largest route limit): a body that does not
    /// fit is shed with 503 before it is read.
    pub body_bytes: usize,
    /// Requests one tenant may have in flight at once (an open server has
    /// one tenant: this is then a global cap); more are shed with 503.
    pub tenant_requests: usize,
    /// The tenants and their tokens (None: open, one tenant with the
    /// server's default quota).
    pub tenants: Option<Arc<Tenants>>,
    /// TLS (None: plain HTTP).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            queue: 2,
            timeout: Duration::from_secs(600),
            body_timeout: Duration::from_secs(120),
            header_timeout: Duration::from_secs(10),
            max_connections: 256,
            body_bytes: 1536 << 20,
            tenant_requests: 4,
            tenants: None,
            tls: None,
        }
    }
}

#[derive(Clone)]
struct App {
    server: Arc<Server>,
    tenants: Arc<Tenants>,
    permits: Arc<Semaphore>,
    timeout: Duration,
    body_timeout: Duration,
    metrics: Arc<Metrics>,
    /// Request bodies in memory, in [`BUDGET_UNIT`]s.
    body_budget: Arc<Semaphore>,
    body_units: usize,
    /// Requests in flight per tenant.
    inflight: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>>,
    tenant_requests: usize,
}

fn error_response(e: &ServiceError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({"error": e.kind(), "detail": e.to_string()});
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// Bytes of the body budget one permit stands for.
const BUDGET_UNIT: usize = 1 << 20;

/// A request body read into memory, holding its share of the body budget
/// until dropped.
struct Buffered {
    bytes: Vec<u8>,
    _budget: tokio::sync::OwnedSemaphorePermit,
}

/// Take the body's share of the byte budget (its declared length, else the
/// route's limit) at once or shed; then read it, within the body timeout
/// and the limit, into one allocation of the declared size.
async fn read_body(
    app: &App,
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Buffered, ServiceError> {
    use http_body_util::BodyExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let need = declared.unwrap_or(limit).min(limit);
    let units = u32::try_from(need.div_ceil(BUDGET_UNIT).max(1)).unwrap_or(u32::MAX);
    let budget = Arc::clone(&app.body_budget)
        .try_acquire_many_owned(units)
        .map_err(|_| ServiceError::Busy {
            detail: format!(
                "the memory for request bodies is in use ({} of {} MiB free, this body needs {units}); retry shortly",
                app.body_budget.available_permits(),
                app.body_units
            ),
        })?;
    let secs = app.body_timeout.as_secs_f64();
    let read = async {
        let mut body = body;
        let mut out = Vec::with_capacity(need);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ServiceError::bad(format!("request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > limit {
                    return Err(ServiceError::TooLarge {
                        detail: format!("this route's bodies are at most {limit} bytes"),
                    });
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    };
    match tokio::time::timeout(app.body_timeout, read).await {
        Err(_) => Err(ServiceError::SlowBody {
            detail: format!("the body did not arrive within {secs} s"),
        }),
        Ok(r) => r.map(|bytes| Buffered {
            bytes,
            _budget: budget,
        }),
    }
}

/// Run `f` on the blocking pool behind the worker semaphore.
async fn blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let secs = app.timeout.as_secs_f64();
    app.metrics.queued(1);
    let permit = tokio::time::timeout(app.timeout, Arc::clone(&app.permits).acquire_owned()).await;
    app.metrics.queued(-1);
    let permit = permit
        .map_err(|_| ServiceError::Busy {
            detail: format!("no worker became free within the {secs} s timeout"),
        })?
        .map_err(|_| ServiceError::Busy {
            detail: "the worker pool is closed".into(),
        })?;
    let metrics = Arc::clone(&app.metrics);
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        metrics.running(1);
        let r = f();
        metrics.running(-1);
        r
    });
    match tokio::time::timeout(app.timeout, job).await {
        Err(_) => Err(ServiceError::Busy {
            detail: format!("the evaluation ran past the {secs} s request timeout"),
        }),
        Ok(Err(e)) => Err(ServiceError::Busy {
            detail: format!("the worker failed: {e}"),
        }),
        Ok(Ok(r)) => r,
    }
}

/// Run store lookups (file or network I/O, no CKKS) off the async threads.
async fn io<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ServiceError::Busy {
            detail: format!("the store lookup failed: {e}"),
        })
    })
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn model(State(app): State<App>) -> Response {
    axum::Json(app.server.plan().clone()).into_response()
}

async fn register(
    State(app): State<App>,
    Extension(tenant): Extension<Arc<Tenant>>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    let limit = app.server.plan().limits.bundle_bytes;
    let body = match read_body(&app, &headers, body, limit).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let server = Arc::clone(&app.server);
    match blocking(&app, move || server.register(&tenant, &body.bytes)).await {
        Ok((id, new)) => axum::Json(serde_json::json!({"key_id": id, "new": new})).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn known(
    State(app): State<App>,
    Extension(tenant): Extension<Arc<Tenant>>,
    Path(id): Path<String>,
) -> Response {
    let server = Arc::clone(&app.server);
    let lookup = id.clone();
    match io(move || server.knows(&tenant, &lookup)).await {
        Ok(true) => axum::Json(serde_json::json!({"key_id": id})).into_response(),
        Ok(false) => error_response(&ServiceError::UnknownKey {
            key_id: id.chars().take(80).collect(),
        }),
        Err(e) => error_response(&e),
    }
}

async fn remove(
    State(app): State<App>,
    Extension(tenant): Extension<Arc<Tenant>>,
    Path(id): Path<String>,
) -> Response {
    let server = Arc::clone(&app.server);
    match io(move || server.delete(&tenant, &id)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

async fn infer(
    State(app): State<App>,
    Extension(tenant): Extension<Arc<Tenant>>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    let limit = app.server.plan().limits.request_bytes;
    let body = match read_body(&app, &headers, body, limit).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let server = Arc::clone(&app.server);
    match blocking(&app, move || server.infer(&tenant, &id, &body.bytes)).await {
        Ok((bytes, stats)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::HeaderName::from_static("x-slaf-eval-ms"),
                    format!("{:.1}", stats.eval_ms),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => error_response(&e),
    }
}

/// The request's path, at most 200 characters (it is echoed in the error).
fn short_path(uri: &Uri) -> String {
    uri.path().chars().take(200).collect()
}

/// Any path that is no route: a JSON 404 naming the routes.
async fn not_found(method: Method, uri: Uri) -> Response {
    error_response(&ServiceError::NotFound {
        method: method.to_string(),
        path: short_path(&uri),
    })
}

/// A route asked with another method: a JSON 405.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error_response(&ServiceError::MethodNotAllowed {
        method: method.to_string(),
        path: short_path(&uri),
    })
}

/// Authenticate the tenant (before admission and before any body byte)
/// and hold one of its in-flight slots ([`HttpConfig::tenant_requests`])
/// for the request's life, or shed it: one tenant cannot take every slot.
async fn authenticate(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let tenant = match app.tenants.authenticate(auth) {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    let slots = {
        let Ok(mut map) = app.inflight.lock() else {
            return error_response(&ServiceError::Busy {
                detail: "the tenant table lock is poisoned".into(),
            });
        };
        let n = app.tenant_requests;
        Arc::clone(
            map.entry(tenant.name.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(n))),
        )
    };
    let Ok(slot) = slots.try_acquire_owned() else {
        app.metrics.shed("tenant");
        return error_response(&ServiceError::Busy {
            detail: format!(
                "tenant {} has {} requests in flight, its most; retry when one is answered",
                tenant.name, app.tenant_requests
            ),
        });
    };
    req.extensions_mut().insert(tenant);
    let r = next.run(req).await;
    drop(slot);
    r
}

/// Count and time every answer; turn the body-limit layer's plain 413 into
/// the JSON error, and give every 503 a `Retry-After`.
async fn observe(State(app): State<App>, req: Request, next: Next) -> Response {
    let t = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let mut r = next.run(req).await;
    let status = r.status();
    let json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if status == StatusCode::PAYLOAD_TOO_LARGE && !json {
        r = error_response(&ServiceError::TooLarge {
            detail: format!(
                "the declared body is longer than {route} accepts (GET /v1/model lists the limits)"
            ),
        });
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    app.metrics
        .request(&route, status.as_u16(), t.elapsed().as_secs_f64());
    r
}

/// A route's admission: `limit` requests in, the rest shed with 503.
fn admitted(
    route: MethodRouter<App>,
    limit: usize,
    body_limit: usize,
    name: &'static str,
    app: &App,
) -> MethodRouter<App> {
    let metrics = Arc::clone(&app.metrics);
    let shed = move |_: tower::BoxError| {
        let metrics = Arc::clone(&metrics);
        async move {
            metrics.shed(name);
            error_response(&ServiceError::Busy {
                detail: format!("{name}: every admission slot is taken; retry shortly"),
            })
        }
    };
    route
        .layer::<_, Infallible>(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(shed))
                .load_shed()
                .concurrency_limit(limit.max(1)),
        )
        .layer::<_, Infallible>(RequestBodyLimitLayer::new(body_limit))
        .layer::<_, Infallible>(middleware::from_fn_with_state(app.clone(), authenticate))
}

/// The routes, with the plan's per-route body limits and `metrics`.
pub fn router(server: Arc<Server>, cfg: &HttpConfig, metrics: Arc<Metrics>) -> Router {
    let limits = server.plan().limits;
    let tenants = cfg
        .tenants
        .clone()
        .unwrap_or_else(|| Arc::new(Tenants::open(server.config().quota())));
    let largest = limits.bundle_bytes.max(limits.request_bytes);
    if cfg.body_bytes < largest {
        tracing::warn!(
            body_mib = cfg.body_bytes >> 20,
            largest_mib = largest >> 20,
            "the body budget is below one maximum-size body: raised to it"
        );
    }
    let body_units = cfg.body_bytes.max(largest).div_ceil(BUDGET_UNIT);
    let app = App {
        body_budget: Arc::new(Semaphore::new(body_units)),
        body_units,
        inflight: Arc::default(),
        tenant_requests: cfg.tenant_requests.max(1),
        server,
        tenants,
        permits: Arc::new(Semaphore::new(cfg.workers.max(1))),
        timeout: cfg.timeout,
        body_timeout: cfg.body_timeout,
        metrics,
    };
    let admit = cfg.workers.max(1) + cfg.queue;
    let keys = admitted(post(register), admit, limits.bundle_bytes, "/v1/keys", &app);
    let infer = admitted(
        post(infer),
        admit,
        limits.request_bytes,
        "/v1/infer/{key_id}",
        &app,
    );
    let key = get(known)
        .delete(remove)
        .layer(middleware::from_fn_with_state(app.clone(), authenticate));
    let trace = tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO))
        .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO))
        // Refusals (shed, timeouts) are expected under load: counted in
        // the metrics, logged at debug.
        .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/model", get(model))
        .route("/v1/keys", keys)
        .route("/v1/keys/{key_id}", key)
        .route("/v1/infer/{key_id}", infer)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .layer(trace)
        .with_state(app)
}

/// `GET /metrics`: the Prometheus exposition (bundle gauges refreshed first).
pub fn metrics_router(server: Arc<Server>, metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let (server, metrics) = (Arc::clone(&server), Arc::clone(&metrics));
            async move {
                server.report(&metrics);
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    )
}

/// A server running on its own thread and tokio runtime (tests, benchmarks,
/// notebooks); stopped when dropped.
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    metrics_addr: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://ADDR` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
    /// `http://ADDR/metrics` of the metrics listener, if any.
    pub fn metrics_url(&self) -> Option<String> {
        self.metrics_addr.map(|a| format!("http://{a}/metrics"))
    }
    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Where a server listens.
#[derive(Clone, Copy, Debug)]
pub struct Addresses {
    /// The API (port 0: any free port).
    pub api: SocketAddr,
    /// `GET /metrics` (None: not served).
    pub metrics: Option<SocketAddr>,
}

/// Warn when the API is reachable from other hosts in plain HTTP.
fn warn_if_exposed(addr: SocketAddr, cfg: &HttpConfig) {
    if !addr.ip().is_loopback() && cfg.tls.is_none() {
        tracing::warn!(
            %addr,
            "serving plain HTTP on a non-loopback address: tokens and ciphertexts travel in clear; give --tls-cert and --tls-key, or put a TLS proxy in front"
        );
    }
    if !addr.ip().is_loopback() && cfg.tenants.is_none() {
        tracing::warn!(
            %addr,
            "no --tokens file: anyone who reaches this address can register bundles (one shared quota)"
        );
    }
}

/// The bound listeners and the future that serves them.
async fn bind(
    server: Arc<Server>,
    cfg: &HttpConfig,
    at: Addresses,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(
    SocketAddr,
    Option<SocketAddr>,
    impl Future<Output = ()> + Send + 'static,
)> {
    let listener = tokio::net::TcpListener::bind(at.api).await?;
    let bound = listener.local_addr()?;
    warn_if_exposed(bound, cfg);
    let metrics_listener = match at.metrics {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
        None => None,
    };
    let metrics_bound = match &metrics_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let app = router(Arc::clone(&server), cfg, Arc::clone(&metrics));
    let cfg = cfg.clone();
    let run = async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        if let Some(l) = metrics_listener {
            let m = metrics_router(server, Arc::clone(&metrics));
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let _ = axum::serve(l, m)
                    .with_graceful_shutdown(async move {
                        let _ = rx.changed().await;
                    })
                    .await;
            });
        }
        super::listener::serve(listener, app, &cfg, metrics, shutdown).await;
        let _ = tx.send(true);
        drop(rx);
    };
    Ok((bound, metrics_bound, run))
}

/// Bind `addr` (port 0: any free port) and serve on a background thread.
pub fn spawn(
    server: Arc<Server>,
    cfg: &HttpConfig,
    addr: SocketAddr,
) -> std::io::Result<RunningServer> {
    spawn_at(
        server,
        cfg,
        Addresses {
            api: addr,
            metrics: None,
        },
    )
}

/// Bind the API and metrics addresses and serve on a background thread.
pub fn spawn_at(
    server: Arc<Server>,
    cfg: &HttpConfig,
    at: Addresses,
) -> std::io::Result<RunningServer> {
    let rt = runtime()?;
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async {
        let _ = rx.await;
    };
    let (addr, metrics_addr, run) =
        rt.block_on(bind(server, cfg, at, Arc::clone(&metrics), shutdown))?;
    let thread = std::thread::spawn(move || rt.block_on(run));
    Ok(RunningServer {
        addr,
        tls: cfg.tls.is_some(),
        metrics_addr,
        metrics,
        stop: Some(tx),
        thread: Some(thread),
    })
}

/// Bind and serve until Ctrl-C; `ready` is called with the bound addresses.
pub fn serve_forever(
    server: Arc<Server>,
    cfg: &HttpConfig,
    at: Addresses,
    ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
) -> std::io::Result<()> {
    let rt = runtime()?;
    let metrics = Arc::new(Metrics::new());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let (addr, metrics_addr, run) = rt.block_on(bind(server, cfg, at, metrics, shutdown))?;
    ready(addr, metrics_addr);
    rt.block_on(run);
    Ok(())
}
