//! The connection loop: accepts TCP connections and serves HTTP/1.1 or
//! HTTP/2 on them (h2c: a client that opens with the HTTP/2 preface gets
//! HTTP/2, as KalamDB's own clients do when they can), with bounds a
//! client cannot get around.
//!
//! - A connection must send complete request headers within
//!   `limits.header_timeout_secs`, whether it is new or idle between
//!   requests; otherwise it is closed (slow or silent clients cannot hold
//!   connections open for ever).
//! - At most `limits.max_connections` are open at once; beyond that a new
//!   connection is closed at once. An HTTP/2 connection carries at most
//!   `HTTP2_MAX_STREAMS` requests at once, and a peer that stops answering
//!   pings is dropped.
//! - On shutdown the listener closes, and open connections finish their
//!   current request (bounded by `limits.request_timeout_secs`).

use crate::config::LimitsSection;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// Requests one HTTP/2 connection may have in flight at once.
pub const HTTP2_MAX_STREAMS: u32 = 64;

pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &LimitsSection,
    shutdown: impl Future<Output = ()>,
) {
    let header_timeout = Duration::from_secs(limits.header_timeout_secs.max(1));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Shutdown: every connection is asked to finish its current request
    // (`stop`), and the loop waits until `open` is back to zero.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let open = Arc::new(tokio::sync::watch::Sender::new(0usize));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_STREAMS)
        .keep_alive_interval(header_timeout)
        .keep_alive_timeout(header_timeout);
    let builder = Arc::new(builder);
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
        // With upgrades: `/v1/ws` turns the connection into a WebSocket,
        // which then runs in its own task (closed by `ws::Connections`).
        let builder = builder.clone();
        let mut stop = stop.clone();
        let open = open.clone();
        open.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            let mut connection = std::pin::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                () = async {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = outcome {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            open.send_modify(|n| *n -= 1);
            drop(slot);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(limits.request_timeout_secs.max(1));
    info!("no longer accepting connections; waiting for open requests");
    stop_tx.send_replace(true);
    let mut remaining = open.subscribe();
    if tokio::time::timeout(grace, remaining.wait_for(|n| *n == 0))
        .await
        .is_err()
    {
        warn!(
            grace_secs = grace.as_secs(),
            "requests still open at the end of the grace time; closing them"
        );
    }
}
