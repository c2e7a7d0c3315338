//! The connection loop: accepts TCP connections and serves HTTP/1 on them
//! with bounds a client cannot get around.
//!
//! - A connection must send complete request headers within
//!   `limits.header_timeout_secs`, whether it is new or idle between
//!   requests; otherwise it is closed (slow or silent clients cannot hold
//!   connections open for ever).
//! - At most `limits.max_connections` are open at once; beyond that a new
//!   connection is closed at once.
//! - On shutdown the listener closes, and open connections finish their
//!   current request (bounded by `limits.request_timeout_secs`).

use crate::config::LimitsSection;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &LimitsSection,
    shutdown: impl Future<Output = ()>,
) {
    let header_timeout = Duration::from_secs(limits.header_timeout_secs.max(1));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    warn!(error = %e, "accept failed");
                    #[expect(clippy::disallowed_methods, reason = "no event says descriptors are free again")]
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "connection refused: too many open connections");
            drop(tcp);
            continue;
        };
        // Small responses must not wait for delayed ACKs.
        if let Err(e) = tcp.set_nodelay(true) {
            warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let service =
            TowerToHyperService::new(app.clone().layer(axum::Extension(ConnectInfo(peer))));
        // Upgrades (WebSocket) come with live queries; a plain connection
        // can be shut down gracefully.
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(limits.request_timeout_secs.max(1));
    info!("no longer accepting connections; waiting for open requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            grace_secs = grace.as_secs(),
            "requests still open at the end of the grace time; closing them"
        );
    }
}
