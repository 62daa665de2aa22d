//! HTTP routes over a [`Server`] (axum on tokio).
//!
//! - `GET /healthz`: `{"status": "ok", ...}`;
//! - `GET /v1/model`: the [`super::ServicePlan`] (JSON);
//! - `POST /v1/keys`: a bundle in, `{"key_id": ..., "new": ...}` out;
//! - `GET /v1/keys/{key_id}`: 200 when the bundle is registered, else 404;
//! - `POST /v1/infer/{key_id}`: a message of ciphertexts in, one out.
//!
//! Any other path is a JSON 404 naming the routes; a route asked with
//! another method a JSON 405.
//!
//! Invariants: every error is a JSON body `{"error": KIND, "detail": ...}`
//! with a 4xx status for anything the client did wrong (bad bytes, wrong
//! parameters or level, unknown key id, body over the limit) and the
//! server keeps serving. CKKS work never runs on the async runtime's
//! threads: it runs on tokio's blocking pool behind a semaphore of
//! [`HttpConfig::workers`] permits; waiting for a permit and the work
//! itself are each bounded by [`HttpConfig::timeout`] (503 past it; the
//! work is not interrupted, its result is dropped).

use super::ServiceError;
use super::server::Server;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Limits of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Requests evaluated at once (each already uses every core through rayon).
    pub workers: usize,
    /// Bound on waiting for a worker, and on the work itself.
    pub timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            timeout: Duration::from_secs(600),
        }
    }
}

#[derive(Clone)]
struct App {
    server: Arc<Server>,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

fn error_response(e: &ServiceError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({"error": e.kind(), "detail": e.to_string()});
    (status, axum::Json(body)).into_response()
}

fn rejection(r: &BytesRejection) -> ServiceError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ServiceError::TooLarge {
            detail: r.body_text(),
        }
    } else {
        ServiceError::bad(format!("request body: {}", r.body_text()))
    }
}

/// Run `f` on the blocking pool behind the worker semaphore.
async fn blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let secs = app.timeout.as_secs_f64();
    let permit = tokio::time::timeout(app.timeout, Arc::clone(&app.permits).acquire_owned())
        .await
        .map_err(|_| ServiceError::Busy {
            detail: format!("no worker became free within the {secs} s timeout"),
        })?
        .map_err(|_| ServiceError::Busy {
            detail: "the worker pool is closed".into(),
        })?;
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
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

async fn healthz(State(app): State<App>) -> Response {
    let (bundles, evicted) = app.server.bundle_counts();
    let plan = app.server.plan();
    axum::Json(serde_json::json!({
        "status": "ok",
        "model": plan.model,
        "mode": plan.mode().name(),
        "bundles": bundles,
        "evicted": evicted,
        "workers_free": app.permits.available_permits(),
    }))
    .into_response()
}

async fn model(State(app): State<App>) -> Response {
    axum::Json(app.server.plan().clone()).into_response()
}

async fn register(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return error_response(&rejection(&r)),
    };
    let server = Arc::clone(&app.server);
    match blocking(&app, move || server.register(&body)).await {
        Ok((id, new)) => axum::Json(serde_json::json!({"key_id": id, "new": new})).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn known(State(app): State<App>, Path(id): Path<String>) -> Response {
    if app.server.knows(&id) {
        axum::Json(serde_json::json!({"key_id": id})).into_response()
    } else {
        error_response(&ServiceError::UnknownKey { key_id: id })
    }
}

async fn infer(
    State(app): State<App>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return error_response(&rejection(&r)),
    };
    let server = Arc::clone(&app.server);
    match blocking(&app, move || server.infer(&id, &body)).await {
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

/// The routes, with the plan's body limit.
pub fn router(server: Arc<Server>, cfg: &HttpConfig) -> Router {
    let limit = server.plan().max_body_bytes;
    let app = App {
        server,
        permits: Arc::new(Semaphore::new(cfg.workers.max(1))),
        timeout: cfg.timeout,
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/model", get(model))
        .route("/v1/keys", post(register))
        .route("/v1/keys/{key_id}", get(known))
        .route("/v1/infer/{key_id}", post(infer))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

/// A server running on its own thread and tokio runtime (tests, benchmarks,
/// notebooks); stopped when dropped.
pub struct RunningServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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

/// Bind `addr` (port 0: any free port) and serve on a background thread.
pub fn spawn(
    server: Arc<Server>,
    cfg: &HttpConfig,
    addr: SocketAddr,
) -> std::io::Result<RunningServer> {
    let rt = runtime()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(addr))?;
    let bound = listener.local_addr()?;
    let app = router(server, cfg);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        rt.block_on(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
    });
    Ok(RunningServer {
        addr: bound,
        stop: Some(tx),
        thread: Some(thread),
    })
}

/// Bind `addr` and serve until Ctrl-C; `ready` is called with the bound address.
pub fn serve_forever(
    server: Arc<Server>,
    cfg: &HttpConfig,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let rt = runtime()?;
    let listener = rt.block_on(tokio::net::TcpListener::bind(addr))?;
    ready(listener.local_addr()?);
    let app = router(server, cfg);
    rt.block_on(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
