//! The HTTPS server: accept, TLS, HTTP/1.1 or HTTP/2, the router, and graceful shutdown.

mod coalesce;
pub mod metrics;
mod oversize;
pub mod reload;
pub mod routes;
pub mod tls;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A client that opens a connection and never completes the handshake must not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may run after shutdown begins; the API server's own timeout is at most 30s.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then stops accepting and
/// waits for in-flight requests to finish. [`drain_signal`] makes a `shutdown` that keeps the
/// listener open for a while after SIGTERM.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Running out of file descriptors is transient; back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Without TCP_NODELAY a small HTTP/2 response waits ~40 ms for the peer's delayed ACK.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %peer, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %peer, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(coalesce::Unvectored(tls)), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    match tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await {
        Ok(()) => tracing::info!("in-flight requests finished"),
        Err(_) => tracing::warn!(
            "in-flight requests did not finish within {DRAIN_TIMEOUT:?}; exiting anyway"
        ),
    }
}

/// Resolves `delay` after the first SIGTERM or SIGINT, having set `draining` at the signal.
///
/// When a pod is deleted, the kubelet's SIGTERM and the removal of the pod from the Service's
/// endpoints happen at the same time, and every kube-proxy takes a few seconds to see the
/// removal: meanwhile the API server's calls still arrive here. Closing the listener at once
/// would refuse them, and with `failurePolicy: Ignore` admit those pods unplaced. So the listener
/// stays open for `delay`, while `draining` fails /readyz so that nothing counts the pod as
/// serving any more. A second signal ends the delay early, for an operator who will not wait.
pub async fn drain_signal(delay: Duration, draining: Arc<AtomicBool>) {
    shutdown_signal().await;
    draining.store(true, Ordering::Release);
    if delay.is_zero() {
        return;
    }
    tracing::info!(
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "draining: /readyz fails, new connections are still served until the shutdown delay is over"
    );
    tokio::select! {
        () = tokio::time::sleep(delay) => tracing::info!("shutdown delay over"),
        () = shutdown_signal() => tracing::info!("second signal: the rest of the shutdown delay is skipped"),
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => tracing::info!("received SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
    }
}
