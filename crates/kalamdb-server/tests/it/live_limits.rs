//! The bounds of live queries, each from config, each refused with its
//! code: subscriptions per connection and per user (also under
//! concurrency), the page size, the initial data's memory, the changes a
//! loading subscription may hold back, WebSocket connections, and a client
//! that stops answering.

use crate::common::{create_user, TestServer};
use crate::ws_client::{login, WsClient};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;

fn server_with(dir: &std::path::Path, config: &str) -> TestServer {
    let path = dir.join("server.toml");
    std::fs::write(&path, config).unwrap();
    let server = TestServer::start_with(&dir.join("data"), &[], Some(&path));
    server.root("CREATE NAMESPACE app");
    server.root("CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT)");
    create_user(&server, "alice", "alice-pw-1", "user");
    create_user(&server, "bob", "bob-pw-12", "user");
    server
}

fn subscribe_request(id: &str, sql: &str, options: Value) -> Value {
    json!({"type": "subscribe", "subscription": {"id": id, "sql": sql, "options": options}})
}

#[test]
fn pages_subscriptions_pending_changes_initial_memory_and_connections_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(
        dir.path(),
        "[websocket]\nmax_subscriptions_per_connection = 2\noutbox_capacity = 4\n\
         max_connections = 3\ncompress_min_bytes = 0\n\
         [live]\nmax_batch_size = 3\nmax_initial_mb = 1\n",
    );
    for id in 1..=5 {
        server.ok_as(
            "alice",
            "alice-pw-1",
            &format!("INSERT INTO app.notes (id, body) VALUES ({id}, 'n{id}')"),
        );
    }

    // A page never holds more than max_batch_size rows, whatever is asked.
    let mut first = WsClient::connect(&server, "alice", "alice-pw-1");
    first.send(subscribe_request(
        "a",
        "SELECT id FROM app.notes",
        json!({"batch_size": 100}),
    ));
    assert_eq!(first.expect("subscription_ack")["total_rows"], 5);
    let page = first.expect("initial_data_batch");
    assert_eq!(page["rows"].as_array().unwrap().len(), 3, "{page}");
    assert_eq!(page["batch_control"]["has_more"], true);
    first.send(json!({"type": "next_batch", "subscription_id": "a"}));
    let page = first.expect("initial_data_batch");
    assert_eq!(page["rows"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(page["batch_control"]["status"], "ready");

    // Two subscriptions per connection.
    first.subscribe("b", "SELECT id FROM app.notes", json!({}));
    first.send(subscribe_request(
        "c",
        "SELECT id FROM app.notes",
        json!({}),
    ));
    let refused = first.expect("error");
    assert_eq!(refused["code"], "SUBSCRIPTION_LIMIT_EXCEEDED", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("connection"),
        "{refused}"
    );

    // A subscription still loading holds back at most outbox_capacity
    // writes; beyond, it ends with an overflow and no resume point (it
    // never had all its initial rows).
    let mut loading = WsClient::connect(&server, "alice", "alice-pw-1");
    loading.send(subscribe_request(
        "p",
        "SELECT id FROM app.notes",
        json!({"batch_size": 1}),
    ));
    loading.expect("subscription_ack");
    assert_eq!(
        loading.expect("initial_data_batch")["batch_control"]["has_more"],
        true
    );
    // The ready subscriptions of the other connection get every write. It
    // reads each write's two changes before the next write: its outbox
    // (4) is small, and this test is about the loading subscription, not
    // about how fast a reader on a busy machine drains.
    let mut seen: Vec<String> = Vec::new();
    for id in 6..=15 {
        server.ok_as(
            "alice",
            "alice-pw-1",
            &format!("INSERT INTO app.notes (id, body) VALUES ({id}, 'n{id}')"),
        );
        seen.extend(
            first
                .changes(2)
                .iter()
                .map(|c| c["subscription_id"].as_str().unwrap().to_string()),
        );
    }
    let ended = loading.expect("error");
    assert_eq!(ended["reason"], "overflow", "{ended}");
    assert!(ended.get("last_seq_id").is_none(), "{ended}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen, vec!["a", "b"]);

    // The initial data's memory: over max_initial_mb is refused; the same
    // rows without the large column are fine.
    let body = "x".repeat(400_000);
    for id in 1..=3 {
        server.ok_as(
            "bob",
            "bob-pw-12",
            &format!("INSERT INTO app.notes (id, body) VALUES ({id}, '{body}')"),
        );
    }
    let mut big = WsClient::connect(&server, "bob", "bob-pw-12");
    big.send(subscribe_request(
        "all",
        "SELECT id, body FROM app.notes",
        json!({}),
    ));
    let refused = big.expect("error");
    assert_eq!(refused["code"], "SUBSCRIPTION_FAILED", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("over 1 MiB"),
        "{refused}"
    );
    let (ack, rows) = big.subscribe("ids", "SELECT id FROM app.notes", json!({}));
    assert_eq!((ack["total_rows"].as_u64(), rows.len()), (Some(3), 3));

    // Three WebSocket connections are open; a fourth is refused at the
    // upgrade, with 503.
    let token = login(&server, "bob", "bob-pw-12");
    match WsClient::open(&server, Some(&token)) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        Err(other) => panic!("expected 503, got {other}"),
        Ok(_) => panic!("a fourth connection was accepted"),
    }
    big.close();
    // Once one closed, there is room again.
    let mut again = crate::common::poll(
        "a connection slot to free up",
        crate::ws_client::WAIT,
        || WsClient::open(&server, Some(&token)).ok(),
    );
    again.expect("auth_success");
}

/// Subscriptions of one user from many connections at once: exactly the
/// limit succeed.
#[test]
fn the_per_user_limit_holds_under_concurrent_subscribes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(dir.path(), "[live]\nmax_subscriptions_per_user = 10\n");
    let token = login(&server, "alice", "alice-pw-1");
    // A connection that closes frees its subscriptions: each is handed
    // back open, and closed once all have their answers.
    let (accepted, _open): (Vec<usize>, Vec<WsClient>) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|c| {
                let (server, token) = (&server, &token);
                scope.spawn(move || {
                    let mut ws = WsClient::open(server, Some(token)).unwrap();
                    ws.expect("auth_success");
                    for i in 0..5 {
                        ws.send(subscribe_request(
                            &format!("c{c}s{i}"),
                            "SELECT id FROM app.notes",
                            json!({}),
                        ));
                    }
                    let mut accepted = 0;
                    let mut answered = 0;
                    while answered < 5 {
                        let m = ws.next().expect("an answer");
                        match m["type"].as_str() {
                            Some("subscription_ack") => {
                                accepted += 1;
                                answered += 1;
                            }
                            Some("error") => {
                                assert_eq!(m["code"], "SUBSCRIPTION_LIMIT_EXCEEDED", "{m}");
                                answered += 1;
                            }
                            Some("initial_data_batch") => {}
                            _ => panic!("{m}"),
                        }
                    }
                    (accepted, ws)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).unzip()
    });
    assert_eq!(accepted.iter().sum::<usize>(), 10, "{accepted:?}");
}

/// A client that never answers the server's pings (here: one that reads
/// nothing at all after the upgrade) is disconnected after the client
/// timeout.
#[test]
fn a_client_that_stops_answering_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_with(
        dir.path(),
        "[websocket]\nheartbeat_secs = 1\nclient_timeout_secs = 2\n",
    );
    let token = login(&server, "alice", "alice-pw-1");
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let mut raw = TcpStream::connect(&addr).unwrap();
    raw.set_read_timeout(Some(crate::ws_client::WAIT)).unwrap();
    write!(
        raw,
        "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    // Everything the server sends (the 101, auth_success, pings) until it
    // closes; a read timeout would mean it never did.
    let mut received = Vec::new();
    let started = crate::common::stopwatch();
    let mut buf = [0u8; 4096];
    loop {
        match raw.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server kept a silent client for {:?}: {e}",
                started.elapsed()
            ),
        }
    }
    assert!(
        received.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&received)
    );
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("auth_success"), "{text}");
    // A ping frame (opcode 0x9) came before the end.
    assert!(received.contains(&0x89), "no ping was sent");
}
