//! `GET /v1/ws`: live queries over WebSocket (docs/API.md, "Live queries").
//!
//! The upgrade authenticates with a Bearer token when the request has one
//! (a bad one is refused with 401 before the upgrade); otherwise the client
//! has `auth_timeout` to send an `authenticate` message. Each connection is
//! one task ([`connection`]) that reads the client's frames, its outbox of
//! committed changes, and a heartbeat timer.

mod connection;
pub mod protocol;

use crate::http::AppState;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// WebSocket settings (config `[websocket]`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketSection {
    /// Time a client has to authenticate after connecting.
    pub auth_timeout_secs: u64,
    /// The server pings this often.
    pub heartbeat_secs: u64,
    /// A client silent this long (no frame, no pong) is disconnected; a
    /// send that cannot finish this long ends the connection too.
    pub client_timeout_secs: u64,
    /// Largest message a client may send.
    pub max_message_bytes: usize,
    /// Messages a client may send per second (a burst of as many is fine).
    pub max_messages_per_sec: u32,
    pub max_subscriptions_per_connection: usize,
    /// Committed writes queued for one connection before its busiest
    /// subscriptions are ended with an overflow error.
    pub outbox_capacity: usize,
    /// Server messages at least this long go out gzip'd as binary frames;
    /// 0: never.
    pub compress_min_bytes: usize,
    /// Open WebSocket connections (they hold no HTTP connection slot once
    /// upgraded); more are refused with 503.
    pub max_connections: usize,
}

impl Default for WebSocketSection {
    fn default() -> Self {
        Self {
            auth_timeout_secs: 3,
            heartbeat_secs: 5,
            client_timeout_secs: 10,
            max_message_bytes: 1 << 20,
            max_messages_per_sec: 50,
            max_subscriptions_per_connection: 100,
            outbox_capacity: 1024,
            compress_min_bytes: 4096,
            max_connections: 20_000,
        }
    }
}

impl WebSocketSection {
    fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.auth_timeout_secs.max(1))
    }

    fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }

    fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.client_timeout_secs.max(1))
    }
}

/// The open connections: counted, so shutdown can wait for them, and
/// told when the server is closing.
#[derive(Debug)]
pub struct Connections {
    open: tokio::sync::watch::Sender<usize>,
    closing: tokio::sync::watch::Sender<bool>,
}

impl Default for Connections {
    fn default() -> Self {
        Self {
            open: tokio::sync::watch::Sender::new(0),
            closing: tokio::sync::watch::Sender::new(false),
        }
    }
}

/// Held by a connection's task while it runs.
pub struct Open<'a>(&'a Connections);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n -= 1);
    }
}

impl Connections {
    pub fn enter(&self) -> Open<'_> {
        self.open.send_modify(|n| *n += 1);
        Open(self)
    }

    pub fn count(&self) -> usize {
        *self.open.borrow()
    }

    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Asks every connection to close and waits (at most `grace`) until
    /// they have.
    pub async fn close_all(&self, grace: Duration) {
        self.closing.send_replace(true);
        let mut open = self.open.subscribe();
        let _ = tokio::time::timeout(grace, open.wait_for(|n| *n == 0)).await;
    }
}

/// Connection ids, unique while the server runs (part of live ids).
static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let authed = if headers.contains_key(axum::http::header::AUTHORIZATION) {
        match connection::authenticate_header(&state, &headers, peer).await {
            Ok(authed) => Some(authed),
            Err(e) => return e.into_response(),
        }
    } else {
        None
    };
    let config = state.websocket.clone();
    if state.websockets.count() >= config.max_connections {
        return crate::http::ApiError::new(
            kalamdb_commons::ErrorCode::Unavailable,
            "too many WebSocket connections; retry later",
        )
        .into_response();
    }
    let id = format!("c{}", CONNECTIONS.fetch_add(1, Ordering::Relaxed));
    // Frames somewhat larger than the limit still arrive, so the client
    // hears MESSAGE_TOO_LARGE instead of a dropped connection; far larger
    // ones end the connection inside the WebSocket library.
    let hard_limit = config.max_message_bytes.saturating_mul(2).max(64 << 10);
    // The library's default buffers are 128 KiB each way per connection;
    // most connections are idle subscribers whose clients send a few small
    // messages, so the read buffer starts at 1 KiB (it grows for a large
    // message).
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .read_buffer_size(1 << 10)
        .write_buffer_size(0)
        .on_upgrade(move |socket| connection::run(state, socket, peer, authed, id))
}
