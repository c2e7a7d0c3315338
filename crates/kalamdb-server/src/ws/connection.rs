//! One WebSocket connection: authentication, its subscriptions, the
//! delivery of their changes, heartbeats and limits.
//!
//! Everything of a connection happens in its one task, so a subscription's
//! messages go out in order: the ack, the initial pages (each after the
//! client's `next_batch`), then its changes. Changes that arrive while a
//! subscription is still loading wait in its `pending` list (bounded like
//! the outbox). A client that reads slowly makes this task wait in `send`;
//! its outbox fills meanwhile and its feeds end with an overflow error, so
//! writers and other connections never wait for it.

use super::protocol::{self, ClientMessage, SubscriptionRequest};
use super::WebSocketSection;
use crate::http::auth::{check_password, credentials, token_error, Credentials};
use crate::http::{ApiError, AppState};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::http::HeaderMap;
use kalamdb_commons::clock::monotonic;
use kalamdb_core::{
    Caller, Delivery, EndReason, Feed, LiveChange, LiveCode, LiveError, Outbox, Published,
    StartMode, SubscribeRequest, Subscription, UserRecord,
};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;

/// Who the connection acts for, the login session behind it (none for
/// Basic credentials) and the user's record as it was then, checked again
/// at every heartbeat.
pub struct Authed {
    caller: Caller,
    session: Option<String>,
    record: Option<Arc<UserRecord>>,
}

impl Authed {
    fn new(state: &AppState, caller: Caller, session: Option<String>) -> Self {
        let record = state.db.users().active(caller.user_id.as_str());
        Self {
            caller,
            session,
            record,
        }
    }

    /// Whether the user is gone, or their password or role changed: what
    /// the connection was allowed may have changed with it.
    fn outdated(&self, state: &AppState) -> bool {
        let now = state.db.users().active(self.caller.user_id.as_str());
        match (now, &self.record) {
            (None, _) => true,
            (Some(now), Some(then)) => {
                now.role != then.role || now.password_hash != then.password_hash
            }
            (Some(now), None) => now.role != self.caller.role,
        }
    }
}

pub async fn authenticate_header(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Authed, ApiError> {
    match credentials(headers)? {
        Credentials::Bearer(token) => bearer(state, &token, peer),
        Credentials::Basic { user, password } => {
            crate::http::auth::refuse_basic_if_off(state)?;
            Ok(Authed::new(
                state,
                check_password(state, &user, &password, peer).await?,
                None,
            ))
        }
    }
}

fn bearer(state: &AppState, token: &str, peer: SocketAddr) -> Result<Authed, ApiError> {
    let (caller, sid) = state
        .auth
        .verify(&state.db, token, "access", peer.ip().is_loopback())
        .map_err(token_error)?;
    Ok(Authed::new(state, caller, Some(sid)))
}

/// A subscription of this connection.
struct Sub {
    live: Subscription,
    /// Its initial data is all sent: changes go out as they come.
    ready: bool,
    /// Committed changes that came while it was loading.
    pending: VecDeque<Arc<Published>>,
}

/// Messages per second, with a burst of as many.
struct RateBucket {
    tokens: f64,
    per_sec: f64,
    at: Instant,
    /// When the client was last told it is over the rate (told once a second).
    warned: Option<Instant>,
}

impl RateBucket {
    fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self {
            tokens: per_sec,
            per_sec,
            at: monotonic(),
            warned: None,
        }
    }

    fn allow(&mut self) -> bool {
        let now = monotonic();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.per_sec);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn should_warn(&mut self) -> bool {
        let now = monotonic();
        let due = self
            .warned
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1));
        if due {
            self.warned = Some(now);
        }
        due
    }
}

/// The connection ends.
struct Closed;

struct Conn {
    state: AppState,
    socket: WebSocket,
    config: Arc<WebSocketSection>,
    id: String,
    peer: SocketAddr,
    authed: Option<Authed>,
    outbox: Arc<Outbox>,
    subs: HashMap<String, Sub>,
    rate: RateBucket,
    last_seen: Instant,
}

pub async fn run(
    state: AppState,
    socket: WebSocket,
    peer: SocketAddr,
    authed: Option<Authed>,
    id: String,
) {
    let connections = state.websockets.clone();
    let _task = connections.enter();
    let config = state.websocket.clone();
    let (outbox, mut rx) = Outbox::new(config.outbox_capacity);
    let mut closing = state.websockets.closing();
    let mut conn = Conn {
        rate: RateBucket::new(config.max_messages_per_sec),
        state,
        socket,
        config,
        id,
        peer,
        authed,
        outbox,
        subs: HashMap::new(),
        last_seen: monotonic(),
    };
    debug!(connection = %conn.id, peer = %conn.peer, "websocket opened");
    if let Some(authed) = &conn.authed {
        let hello = protocol::auth_success(
            authed.caller.user_id.as_str(),
            &authed.caller.role.to_string(),
        );
        if conn.send(&hello).await.is_err() {
            return conn.finish().await;
        }
    }
    let auth_deadline = tokio::time::sleep_until(
        tokio::time::Instant::from_std(monotonic()) + conn.config.auth_timeout(),
    );
    tokio::pin!(auth_deadline);
    let mut heartbeat = tokio::time::interval(conn.config.heartbeat());
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut system_poll = tokio::time::interval(conn.state.db.live_config().system_poll);
    system_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let authenticated = conn.authed.is_some();
        let watching = conn.subs.values().any(|sub| sub.live.watch.is_some());
        let step = tokio::select! {
            incoming = conn.socket.recv() => match incoming {
                Some(Ok(message)) => conn.on_frame(message).await,
                Some(Err(e)) => {
                    debug!(connection = %conn.id, error = %e, "websocket read failed");
                    Err(Closed)
                }
                None => Err(Closed),
            },
            Some(delivery) = rx.recv(), if authenticated => conn.on_delivery(delivery).await,
            () = conn.outbox.wake.notified() => conn.report_ended().await,
            _ = heartbeat.tick() => conn.on_heartbeat().await,
            _ = system_poll.tick(), if watching => conn.poll_system_tables().await,
            () = &mut auth_deadline, if !authenticated => {
                let _ = conn.send(&protocol::auth_error("authentication timed out")).await;
                Err(Closed)
            }
            _ = closing.changed() => {
                let _ = conn.socket.send(Message::Close(Some(CloseFrame {
                    code: 1001,
                    reason: "server shutting down".into(),
                }))).await;
                Err(Closed)
            }
        };
        if step.is_err() {
            break;
        }
    }
    conn.finish().await;
}

impl Conn {
    async fn finish(mut self) {
        for (_, sub) in self.subs.drain() {
            sub.live.feed.end(EndReason::Closed);
            self.state.db.unsubscribe(&sub.live.feed);
        }
        let _ = self.socket.send(Message::Close(None)).await;
        debug!(connection = %self.id, "websocket closed");
    }

    async fn send(&mut self, message: &Value) -> Result<(), Closed> {
        self.send_text(message.to_string()).await
    }

    /// Sends one message, gzip'd as a binary frame when it is large.
    async fn send_text(&mut self, text: String) -> Result<(), Closed> {
        let min = self.config.compress_min_bytes;
        let frame = if min > 0 && text.len() >= min {
            Message::Binary(gzip(text.as_bytes()).into())
        } else {
            Message::Text(text.into())
        };
        match tokio::time::timeout(self.config.client_timeout(), self.socket.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Closed),
            Err(_) => {
                debug!(connection = %self.id, "client stopped reading; closing");
                Err(Closed)
            }
        }
    }

    async fn send_error(
        &mut self,
        subscription_id: &str,
        code: &str,
        message: &str,
    ) -> Result<(), Closed> {
        self.send(&protocol::error(subscription_id, code, message))
            .await
    }

    async fn on_frame(&mut self, message: Message) -> Result<(), Closed> {
        self.last_seen = monotonic();
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return self
                    .send_error(
                        "",
                        "UNSUPPORTED_DATA",
                        "binary frames are not supported; send JSON text",
                    )
                    .await
            }
            // The library answers pings; a pong only shows the client is there.
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Close(_) => return Err(Closed),
        };
        if !self.rate.allow() {
            if self.rate.should_warn() {
                let limit = self.config.max_messages_per_sec;
                return self
                    .send_error(
                        "rate_limit",
                        "RATE_LIMIT_EXCEEDED",
                        &format!("more than {limit} messages per second; messages are dropped"),
                    )
                    .await;
            }
            return Ok(());
        }
        if text.len() > self.config.max_message_bytes {
            let limit = self.config.max_message_bytes;
            return self
                .send_error(
                    "",
                    "MESSAGE_TOO_LARGE",
                    &format!(
                        "a message of {} bytes is over the limit of {limit}",
                        text.len()
                    ),
                )
                .await;
        }
        let message = match protocol::parse(text.as_str()) {
            Ok(message) => message,
            Err(why) => return self.send_error("", "PROTOCOL", &why).await,
        };
        match message {
            ClientMessage::Authenticate {
                method,
                token,
                username,
                password,
            } => {
                self.on_authenticate(method, token, username, password)
                    .await
            }
            _ if self.authed.is_none() => {
                self.send_error("", "AUTH_REQUIRED", "authenticate first")
                    .await
            }
            ClientMessage::Ping => self.send(&json!({"type": "pong"})).await,
            ClientMessage::Subscribe { subscription } => self.on_subscribe(subscription).await,
            ClientMessage::NextBatch { subscription_id } => {
                self.on_next_batch(&subscription_id).await
            }
            ClientMessage::Unsubscribe { subscription_id } => {
                self.drop_sub(&subscription_id);
                Ok(())
            }
        }
    }

    async fn on_authenticate(
        &mut self,
        method: Option<String>,
        token: Option<String>,
        username: Option<String>,
        password: Option<String>,
    ) -> Result<(), Closed> {
        if let Some(authed) = &self.authed {
            let again = protocol::auth_success(
                authed.caller.user_id.as_str(),
                &authed.caller.role.to_string(),
            );
            return self.send(&again).await;
        }
        let outcome = match (method.as_deref(), token, username, password) {
            (None | Some("jwt" | "bearer"), Some(token), _, _) => {
                bearer(&self.state, &token, self.peer)
            }
            (None | Some("basic" | "password"), None, Some(user), Some(password)) => {
                check_password(&self.state, &user, &password, self.peer)
                    .await
                    .map(|caller| Authed::new(&self.state, caller, None))
            }
            _ => {
                let _ = self
                    .send(&protocol::auth_error(
                        "authenticate with {\"method\":\"jwt\",\"token\":...} or \
                         {\"method\":\"basic\",\"username\":...,\"password\":...}",
                    ))
                    .await;
                return Err(Closed);
            }
        };
        match outcome {
            Ok(authed) => {
                let hello = protocol::auth_success(
                    authed.caller.user_id.as_str(),
                    &authed.caller.role.to_string(),
                );
                self.authed = Some(authed);
                self.send(&hello).await
            }
            Err(e) => {
                let _ = self.send(&protocol::auth_error(&e.message)).await;
                Err(Closed)
            }
        }
    }

    async fn on_subscribe(&mut self, request: SubscriptionRequest) -> Result<(), Closed> {
        let id = request.id;
        if id.is_empty() || id.chars().count() > 128 {
            return self
                .send_error(
                    &id,
                    "INVALID_SUBSCRIPTION_ID",
                    "a subscription id is 1 to 128 characters",
                )
                .await;
        }
        if self.subs.contains_key(&id) {
            return self
                .send_error(
                    &id,
                    "INVALID_SUBSCRIPTION_ID",
                    &format!("subscription '{id}' already exists on this connection"),
                )
                .await;
        }
        let max = self.config.max_subscriptions_per_connection;
        if self.subs.len() >= max {
            return self
                .send_error(
                    &id,
                    "SUBSCRIPTION_LIMIT_EXCEEDED",
                    &format!("a connection may hold at most {max} subscriptions"),
                )
                .await;
        }
        let caller = self.authed.as_ref().expect("authenticated").caller.clone();
        let options = request.options;
        let wanted = SubscribeRequest {
            subscription_id: id.clone(),
            connection_id: self.id.clone(),
            sql: request.sql,
            batch_size: options.batch_size.map(saturating_usize),
            last_rows: options.last_rows.map(saturating_usize),
            from_seq_id: options.from_seq_id,
        };
        // Planned where statements are: deep expressions need its stack.
        let db = self.state.db.clone();
        let outbox = self.outbox.clone();
        let opened = self
            .state
            .queries
            .spawn(async move { db.subscribe(&caller, wanted, outbox).await })
            .await;
        let live = match opened {
            Ok(Ok(live)) => live,
            Ok(Err(e)) => return self.send_error(&id, e.code.as_str(), &e.message).await,
            Err(_) => {
                return self
                    .send_error(
                        &id,
                        LiveCode::SubscriptionFailed.as_str(),
                        "the subscription failed",
                    )
                    .await
            }
        };
        let resume = matches!(live.mode, StartMode::Resume(_));
        let (has_more, status) = if resume {
            (false, "ready")
        } else {
            (true, "loading")
        };
        let ack = protocol::ack(
            &id,
            live.total_rows,
            &live.schema,
            has_more,
            status,
            live.start_seq,
        );
        self.subs.insert(
            id.clone(),
            Sub {
                live,
                ready: false,
                pending: VecDeque::new(),
            },
        );
        self.send(&ack).await?;
        if resume {
            self.replay(&id).await
        } else {
            self.on_next_batch(&id).await
        }
    }

    /// Sends a resume's history, then what came meanwhile.
    async fn replay(&mut self, id: &str) -> Result<(), Closed> {
        loop {
            let Some(sub) = self.subs.get_mut(id) else {
                return Ok(());
            };
            // A page may read the scope's files: on a blocking thread.
            let page = match sub.live.replay.take() {
                Some(mut replay) => {
                    let read = tokio::task::spawn_blocking(move || {
                        let page = replay.next_page();
                        (replay, page)
                    })
                    .await;
                    match read {
                        Ok((replay, page)) => {
                            sub.live.replay = Some(replay);
                            page
                        }
                        Err(e) => Err(LiveError::new(
                            LiveCode::SubscriptionFailed,
                            format!("reading the change history failed: {e}"),
                        )),
                    }
                }
                None => Ok(None),
            };
            match page {
                Ok(Some(changes)) => {
                    let feed = sub.live.feed.clone();
                    self.send_own_changes(id, &feed, &changes).await?;
                }
                Ok(None) => break,
                Err(e) => {
                    self.drop_sub(id);
                    return self.send_error(id, e.code.as_str(), &e.message).await;
                }
            }
        }
        self.become_ready(id).await
    }

    async fn on_next_batch(&mut self, id: &str) -> Result<(), Closed> {
        let Some(sub) = self.subs.get_mut(id) else {
            return self
                .send_error(
                    id,
                    "INVALID_SUBSCRIPTION_ID",
                    &format!("no subscription '{id}' on this connection"),
                )
                .await;
        };
        if sub.ready {
            return self
                .send_error(
                    id,
                    "BATCH_FETCH_FAILED",
                    "the initial data has been sent in full",
                )
                .await;
        }
        let Some(page) = sub.live.next_page() else {
            return self.become_ready(id).await;
        };
        let message = protocol::initial_batch(id, &page, sub.live.start_seq);
        self.send(&message).await?;
        if !page.has_more {
            self.become_ready(id).await?;
        }
        Ok(())
    }

    /// The initial data is out: what came meanwhile follows, then live.
    async fn become_ready(&mut self, id: &str) -> Result<(), Closed> {
        loop {
            let Some(sub) = self.subs.get_mut(id) else {
                return Ok(());
            };
            match sub.pending.pop_front() {
                Some(set) => self.send_changes(id, &set).await?,
                None => {
                    sub.ready = true;
                    break;
                }
            }
        }
        self.report_ended().await
    }

    async fn on_delivery(&mut self, delivery: Delivery) -> Result<(), Closed> {
        delivery.feed.taken();
        let id = delivery.feed.info.subscription_id.clone();
        let Some(sub) = self.subs.get_mut(&id) else {
            return Ok(());
        };
        // An earlier subscription under the same id.
        if !Arc::ptr_eq(&sub.live.feed, &delivery.feed) {
            return Ok(());
        }
        if sub.ready {
            self.send_changes(&id, &delivery.changes).await?;
        } else if sub.pending.len() >= self.config.outbox_capacity {
            sub.live.feed.end(EndReason::Overflow);
        } else {
            sub.pending.push_back(delivery.changes);
        }
        if delivery.feed.drained_end().is_some() {
            self.report_ended().await?;
        }
        Ok(())
    }

    async fn send_changes(&mut self, id: &str, published: &Published) -> Result<(), Closed> {
        let Some(sub) = self.subs.get(id) else {
            return Ok(());
        };
        let feed = sub.live.feed.clone();
        match published.encoded(protocol::change_body) {
            Ok(encoded) => {
                for change in encoded {
                    // Counted first: a client that has the message must
                    // find it counted in system.live.
                    feed.sent(change.rows, change.last_seq);
                    self.send_text(protocol::change_message(id, &change.text))
                        .await?;
                }
                if let Some(last) = published.last_seq() {
                    feed.sent(0, last);
                }
                Ok(())
            }
            Err(e) => {
                let last = feed.last_seq();
                self.drop_sub(id);
                self.send(&with_resume_point(
                    protocol::error(
                        id,
                        e.code.as_str(),
                        &format!("{}; resume after _seq {last}", e.message),
                    ),
                    Some(last),
                    "failed",
                ))
                .await
            }
        }
    }

    /// Sends changes computed for this subscription alone (a replay, a
    /// system table's reading), each encoded here.
    async fn send_own_changes(
        &mut self,
        id: &str,
        feed: &Feed,
        changes: &[LiveChange],
    ) -> Result<(), Closed> {
        for change in changes {
            // Counted first: a client that has the message must find it
            // counted in system.live.
            feed.sent(change.row_count() as u64, change.last_seq);
            let body = protocol::change_body(change);
            self.send_text(protocol::change_message(id, &body)).await?;
        }
        Ok(())
    }

    /// Reads the watched system tables again and sends what changed, for
    /// the subscriptions whose initial data is out.
    async fn poll_system_tables(&mut self) -> Result<(), Closed> {
        let max_bytes = self.state.db.live_config().max_initial_bytes;
        let ids: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, sub)| sub.ready && sub.live.watch.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let Some(watch) = self.subs.get_mut(&id).and_then(|s| s.live.watch.as_mut()) else {
                continue;
            };
            match watch.poll(max_bytes) {
                Ok(changes) => {
                    let feed = self.subs[&id].live.feed.clone();
                    self.send_own_changes(&id, &feed, &changes).await?;
                }
                Err(e) => {
                    self.drop_sub(&id);
                    self.send(&with_resume_point(
                        protocol::error(&id, e.code.as_str(), &e.message),
                        None,
                        "failed",
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Tells the client about subscriptions the server ended, once all
    /// they received before is out.
    async fn report_ended(&mut self) -> Result<(), Closed> {
        let ended: Vec<(String, EndReason, bool, u64)> = self
            .subs
            .iter()
            .filter_map(|(id, sub)| {
                // A system table's watch has no `_seq` to resume from.
                let resumable = sub.ready && sub.live.watch.is_none();
                sub.live
                    .feed
                    .drained_end()
                    .map(|reason| (id.clone(), reason, resumable, sub.live.feed.last_seq()))
            })
            .collect();
        for (id, reason, has_resume_point, last) in ended {
            // A ready subscription has nothing pending (it was sent when it
            // became ready); one still loading loses what it held and starts
            // over, so it gets no resume point.
            self.drop_sub(&id);
            let (code, text, tag) = match &reason {
                EndReason::Overflow => (
                    "SUBSCRIPTION_FAILED",
                    format!("the subscriber fell behind and its queue overflowed; resume with from_seq_id = {last}"),
                    "overflow",
                ),
                EndReason::Killed => ("SUBSCRIPTION_FAILED", "the live query was killed".to_string(), "killed"),
                EndReason::TableDropped(name) => (
                    "NOT_FOUND",
                    format!("table '{name}' was dropped"),
                    "table_dropped",
                ),
                EndReason::TableAltered(name) => (
                    "SUBSCRIPTION_FAILED",
                    format!("table '{name}' had a column dropped or changed; subscribe again (resume with from_seq_id = {last})"),
                    "table_altered",
                ),
                EndReason::UserDropped => ("UNAUTHORIZED", "the user was dropped".to_string(), "user_dropped"),
                EndReason::Closed => continue,
            };
            let resumable = matches!(
                reason,
                EndReason::Overflow | EndReason::Killed | EndReason::TableAltered(_)
            );
            let message = with_resume_point(
                protocol::error(&id, code, &text),
                (resumable && has_resume_point).then_some(last),
                tag,
            );
            self.send(&message).await?;
        }
        Ok(())
    }

    fn drop_sub(&mut self, id: &str) {
        if let Some(sub) = self.subs.remove(id) {
            sub.live.feed.end(EndReason::Closed);
            self.state.db.unsubscribe(&sub.live.feed);
        }
    }

    async fn on_heartbeat(&mut self) -> Result<(), Closed> {
        if monotonic().duration_since(self.last_seen) > self.config.client_timeout() {
            debug!(connection = %self.id, "client timed out");
            return Err(Closed);
        }
        if let Some(authed) = &self.authed {
            let user_gone = authed.outdated(&self.state);
            let session_gone = authed
                .session
                .as_deref()
                .is_some_and(|sid| !self.state.auth.session_alive(sid));
            if user_gone || session_gone {
                let _ = self
                    .send_error("", "AUTH_REQUIRED", "the login session has ended (logged out, password or role changed, or user dropped)")
                    .await;
                return Err(Closed);
            }
        }
        match tokio::time::timeout(
            self.config.client_timeout(),
            self.socket.send(Message::Ping(Vec::new().into())),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            _ => Err(Closed),
        }
    }
}

/// Adds why a subscription ended and, when it can resume, from where.
fn with_resume_point(mut message: Value, last_seq: Option<u64>, reason: &str) -> Value {
    message["reason"] = Value::from(reason);
    if let Some(seq) = last_seq {
        message["last_seq_id"] = Value::from(seq);
    }
    message
}

fn saturating_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}
