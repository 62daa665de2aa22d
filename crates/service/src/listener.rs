//! The connections under the routes: an accept loop that serves each
//! connection with hyper's HTTP/1 (optionally inside rustls TLS).
//!
//! Invariants: at most [`HttpConfig::max_connections`] connections are
//! open; one more is closed at once (plain HTTP: after a one-line 503), so
//! idle sockets cannot starve `/healthz`. A connection must deliver each
//! request's headers within [`HttpConfig::header_timeout`], and an idle
//! keep-alive connection is closed after it too (hyper's header-read
//! timer, which runs from the moment the connection waits for a request);
//! a TLS handshake gets the same time. Headers are capped at 64 KiB and
//! 100 fields. Bodies are the routes' business ([`super::http`]).

use super::http::HttpConfig;
use super::metrics::Metrics;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The answer of a connection over the cap (plain HTTP).
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 61\r\n\r\n{\"error\":\"busy\",\"detail\":\"server busy: too many connections\"}";

/// Load a TLS certificate chain and private key (PEM files).
pub fn tls_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, super::ServiceError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let io = |p: &Path, e: &dyn std::fmt::Display| super::ServiceError::Io {
        path: p.display().to_string(),
        detail: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| io(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io(cert, &e))?;
    if certs.is_empty() {
        return Err(io(cert, &"no CERTIFICATE in the PEM file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| io(key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| io(cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| io(key, &format!("does not fit the certificate: {e}")))?;
    Ok(Arc::new(config))
}

fn http1(cfg: &HttpConfig) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        .keep_alive(true)
        .max_headers(100)
        .max_buf_size(64 * 1024);
    b
}

/// Serve one accepted connection to its end.
async fn connection(
    stream: TcpStream,
    app: Router,
    cfg: Arc<HttpConfig>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let service = TowerToHyperService::new(app);
    let builder = http1(&cfg);
    let result = match tls {
        None => builder
            .serve_connection(TokioIo::new(stream), service)
            .await
            .map_err(|e| e.to_string()),
        Some(acceptor) => {
            match tokio::time::timeout(cfg.header_timeout, acceptor.accept(stream)).await {
                Err(_) => Err("TLS handshake timed out".into()),
                Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
                Ok(Ok(s)) => builder
                    .serve_connection(TokioIo::new(s), service)
                    .await
                    .map_err(|e| e.to_string()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// Accept connections on `listener` and serve `app` on them until
/// `shutdown` completes (open connections then end with the runtime).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cfg: &HttpConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let cap = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let tls = cfg.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let cfg = Arc::new(cfg.clone());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let mut stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = Arc::clone(&cap).try_acquire_owned() else {
            metrics.refused_connection();
            let plain = tls.is_none();
            tokio::spawn(async move {
                if plain {
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_secs(1),
                        stream.write_all(REFUSED),
                    )
                    .await;
                }
                let _ = stream.shutdown().await;
            });
            continue;
        };
        let (app, cfg, tls, metrics) = (
            app.clone(),
            Arc::clone(&cfg),
            tls.clone(),
            Arc::clone(&metrics),
        );
        tokio::spawn(async move {
            metrics.connection(1);
            connection(stream, app, cfg, tls).await;
            metrics.connection(-1);
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_refusal_is_one_well_formed_response() {
        let text = std::str::from_utf8(REFUSED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "busy");
    }
}
