//! A WebSocket client for the live-query tests (tungstenite, blocking),
//! speaking the protocol as the original clients do.

use crate::common::TestServer;
use serde_json::{json, Value};
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

/// How long a test waits for a message it expects.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct WsClient {
    ws: tungstenite::WebSocket<MaybeTlsStream<TcpStream>>,
    /// Messages that came gzip'd in binary frames.
    pub binary_frames: usize,
}

/// An access token for `user` (POST /v1/api/auth/login).
pub fn login(server: &TestServer, user: &str, password: &str) -> String {
    let response = server
        .client()
        .post(format!("{}/v1/api/auth/login", server.base_url))
        .json(&json!({"user": user, "password": password}))
        .send()
        .expect("login sent");
    let body: Value = response.json().expect("login answer");
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_string()
}

impl WsClient {
    /// Opens `/v1/ws`, with `Authorization: Bearer` when a token is given.
    pub fn open(server: &TestServer, bearer: Option<&str>) -> Result<Self, tungstenite::Error> {
        let url = format!("{}/v1/ws", server.base_url.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        if let Some(token) = bearer {
            request.headers_mut().insert(
                "Authorization",
                format!("Bearer {token}").parse().expect("header value"),
            );
        }
        let (ws, _) = tungstenite::connect(request)?;
        if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            tcp.set_read_timeout(Some(WAIT)).expect("read timeout");
        }
        Ok(Self {
            ws,
            binary_frames: 0,
        })
    }

    /// Connects and authenticates with an `authenticate` message.
    pub fn connect(server: &TestServer, user: &str, password: &str) -> Self {
        let token = login(server, user, password);
        let mut client = Self::open(server, None).expect("websocket opens");
        client.send(json!({"type": "authenticate", "method": "jwt", "token": token}));
        let hello = client.next().expect("an answer to authenticate");
        assert_eq!(hello["type"], "auth_success", "{hello}");
        client
    }

    pub fn send(&mut self, message: Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .expect("message sent");
    }

    pub fn send_frame(&mut self, frame: Message) -> Result<(), tungstenite::Error> {
        self.ws.send(frame)
    }

    /// The next JSON message (gzip'd binary frames decoded); `None` when
    /// the connection closed or nothing came within [`WAIT`].
    pub fn next(&mut self) -> Option<Value> {
        // Pings come every few seconds; they do not extend the wait.
        let started = crate::common::stopwatch();
        loop {
            if started.elapsed() > WAIT {
                return None;
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(text.as_str()).expect("JSON message"))
                }
                Ok(Message::Binary(bytes)) => {
                    self.binary_frames += 1;
                    let mut text = String::new();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_string(&mut text)
                        .expect("a gzip'd JSON message");
                    return Some(serde_json::from_str(&text).expect("JSON message"));
                }
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(Message::Close(_)) | Err(_) => return None,
            }
        }
    }

    /// The next message if one comes within `wait`.
    pub fn next_within(&mut self, wait: Duration) -> Option<Value> {
        if let MaybeTlsStream::Plain(tcp) = self.ws.get_ref() {
            tcp.set_read_timeout(Some(wait)).expect("read timeout");
        }
        let got = self.next();
        if let MaybeTlsStream::Plain(tcp) = self.ws.get_ref() {
            tcp.set_read_timeout(Some(WAIT)).expect("read timeout");
        }
        got
    }

    /// The next message, which must be of `kind`.
    pub fn expect(&mut self, kind: &str) -> Value {
        let message = self
            .next()
            .unwrap_or_else(|| panic!("expected a '{kind}' message, the connection ended"));
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    /// Subscribes and reads the ack and every initial page; returns the
    /// ack and the initial rows.
    pub fn subscribe(&mut self, id: &str, sql: &str, options: Value) -> (Value, Vec<Value>) {
        self.send(json!({"type": "subscribe", "subscription": {"id": id, "sql": sql, "options": options}}));
        let ack = self.expect("subscription_ack");
        let mut rows = Vec::new();
        if ack["batch_control"]["status"] == "ready" {
            return (ack, rows);
        }
        loop {
            let page = self.expect("initial_data_batch");
            rows.extend(page["rows"].as_array().cloned().unwrap_or_default());
            if page["batch_control"]["status"] == "ready" {
                return (ack, rows);
            }
            assert_eq!(page["batch_control"]["has_more"], true, "{page}");
            self.send(json!({"type": "next_batch", "subscription_id": id}));
        }
    }

    /// The next `n` change messages (anything else fails the test).
    pub fn changes(&mut self, n: usize) -> Vec<Value> {
        (0..n).map(|_| self.expect("change")).collect()
    }

    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}
