//! Seeded random HTTP requests against the real binary: random routes,
//! methods, headers and bodies (junk bytes, broken or hostile JSON, huge
//! and deeply nested values), plus raw malformed requests on a socket. No
//! request may get a 500 or take the server down.

use crate::common::{seed, Rng, TestServer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const PATHS: &[&str] = &[
    "/v1/api/sql",
    "/v1/api/auth/login",
    "/v1/api/auth/refresh",
    "/v1/api/auth/logout",
    "/v1/api/auth/me",
    "/v1/api/auth/setup",
    "/v1/api/auth/status",
    "/health",
    "/nope",
    "/v1/api/sql/../sql",
    "/%00",
    "/v1/api/sql?x=1",
];

fn body(rng: &mut Rng) -> Vec<u8> {
    match rng.below(9) {
        0 => (0..rng.below(200)).map(|_| rng.below(256) as u8).collect(),
        1 => br#"{"sql": "SELECT 1""#.to_vec(),
        2 => format!(r#"{{"sql": {}}}"#, rng.below(1000)).into_bytes(),
        3 => format!(
            r#"{{"sql": "SELECT 1", "params": [{}]}}"#,
            "[".repeat(rng.below(300) as usize)
        )
        .into_bytes(),
        4 => format!(
            r#"{{"sql": "SELECT '{}'"}}"#,
            "x".repeat(rng.below(50_000) as usize)
        )
        .into_bytes(),
        5 => br#"{"sql": "SELECT $1", "params": [{"a": [1, {"b": null}]}]}"#.to_vec(),
        6 => br#"{"user": "root", "password": ["x"]}"#.to_vec(),
        7 => b"\xff\xfe{\"sql\": \"\xc3\x28\"}".to_vec(),
        _ => br#"{"sql": "SELECT 1", "namespace_id": "../../etc"}"#.to_vec(),
    }
}

fn authorization(rng: &mut Rng) -> Option<String> {
    match rng.below(6) {
        0 => None,
        1 => Some("Basic cm9vdDo=".into()),
        2 => Some(format!("Bearer {}", "a.b.c".repeat(rng.below(4) as usize))),
        3 => Some("Basic !!!notbase64".into()),
        4 => Some(format!("Digest {}", rng.next())),
        _ => Some("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.".into()),
    }
}

#[test]
fn random_requests_never_get_a_500_or_stop_the_server() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    // A new connection per request: the server may close a keep-alive
    // connection after refusing a request whose body it did not read, and a
    // reused one would then fail on the client's side, not the server's.
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for i in 0..300 {
        let path = PATHS[rng.below(PATHS.len() as u64) as usize];
        let url = format!("{}{path}", server.base_url);
        let mut request = match rng.below(4) {
            0 => client.get(&url),
            1 => client.put(&url),
            2 => client.delete(&url),
            _ => client.post(&url),
        };
        if let Some(auth) = authorization(&mut rng) {
            request = request.header("Authorization", auth);
        }
        if rng.below(2) == 0 {
            request = request.header("Content-Type", "application/json");
        }
        let response = request.body(body(&mut rng)).send();
        let status = response
            .unwrap_or_else(|e| panic!("seed {seed}, request {i} to {path}: no answer: {e}"))
            .status()
            .as_u16();
        assert!(
            status < 500,
            "seed {seed}, request {i}: {path} answered {status}"
        );
    }
    // Raw, malformed HTTP on a socket.
    let addr = server.base_url.trim_start_matches("http://").to_string();
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"POST /v1/api/sql HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST /v1/api/sql HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\x03",
    ] {
        let mut socket = TcpStream::connect(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let _ = socket.write_all(raw);
        let _ = socket.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains(" 500 "), "seed {seed}: {raw:?} -> {text}");
    }
    assert!(server.healthy(), "seed {seed}: the server went down");
}
