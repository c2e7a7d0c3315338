//! Requests that would take the server down or hold it: long flat
//! expression chains, functions and joins that build huge values, wide
//! selects, too many statements, slow clients, integer overflow, and errors
//! that are the user's fault. Each gets a clear error (never a 5xx for the
//! user's own input), memory stays bounded, and `/health` keeps answering.

use crate::common::{create_user, rows, stopwatch, TestServer};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn chain(op: &str, n: usize, term: &str) -> String {
    vec![term; n].join(op)
}

#[test]
fn long_flat_chains_are_refused_and_the_server_survives() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "u", "u-pw-123", "user");
    server.root("CREATE SHARED TABLE t (id INT PRIMARY KEY, s TEXT)");
    for sql in [
        format!("SELECT {}", chain("+", 5000, "1")),
        format!(
            "SELECT * FROM t WHERE {}",
            (0..5000)
                .map(|i| format!("id = {i}"))
                .collect::<Vec<_>>()
                .join(" OR ")
        ),
        format!("SELECT {}", chain(" || ", 5000, "'a'")),
        format!("SELECT 1::{}", chain("::", 5000, "INT")),
        format!(
            "UPDATE t SET s = {} WHERE id = 1",
            chain(" || ", 5000, "'a'")
        ),
    ] {
        let (status, body) = server.sql_as("u", "u-pw-123", json!({ "sql": sql }));
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("too complex"),
            "{body}"
        );
        assert!(server.healthy());
    }
    // Chains within the bound still work, as do long IN lists.
    let body = server.ok_as("u", "u-pw-123", &format!("SELECT {}", chain("+", 400, "1")));
    assert_eq!(rows(&body), vec![vec![json!("400")]]);
    let ors = (0..250)
        .map(|i| format!("id = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    server.ok_as("u", "u-pw-123", &format!("SELECT * FROM t WHERE {ors}"));
    let list = (0..10_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    server.ok_as(
        "u",
        "u-pw-123",
        &format!("SELECT * FROM t WHERE id IN ({list})"),
    );
}

#[test]
fn memory_hungry_queries_fail_alone_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "u", "u-pw-123", "user");
    let (before, _) = server.memory_kib();
    for sql in [
        "SELECT repeat('x', 1500000000)",
        "SELECT length(repeat('xy', 100000000))",
        "SELECT range(1, 2000000000)",
        "SELECT array_repeat(1, 1000000000)",
        "SELECT lpad('a', 2000000000)",
        "SELECT * FROM unnest(range(1, 20000)) a CROSS JOIN unnest(range(1, 20000)) b",
    ] {
        refused_or_cut_off(&server, sql);
        assert!(server.healthy());
    }
    let (_, peak) = server.memory_kib();
    assert!(
        peak < before + 1_500_000,
        "peak RSS {peak} KiB, {before} KiB at the start"
    );
    // Within the limits the same functions work.
    let body = server.ok_as("u", "u-pw-123", "SELECT length(repeat('x', 1000))");
    assert_eq!(rows(&body), vec![vec![json!(1000)]]);
}

/// A statement over a bound is refused with `RESOURCE_EXHAUSTED`, or, when
/// it crosses the bound after its first rows were streamed (the cross join
/// is past the row cap only then), its body is cut off before the end.
fn refused_or_cut_off(server: &TestServer, sql: &str) {
    let response = server
        .client()
        .post(format!("{}/v1/api/sql", server.base_url))
        .basic_auth("u", Some("u-pw-123"))
        .json(&json!({ "sql": sql }))
        .send()
        .expect("request sent");
    let status = response.status().as_u16();
    match response.bytes() {
        Ok(bytes) => {
            let body: Value = serde_json::from_slice(&bytes).expect("a whole body is JSON");
            assert_eq!(status, 400, "{sql}: {body}");
            assert_eq!(code(&body), "RESOURCE_EXHAUSTED", "{sql}: {body}");
        }
        Err(e) => assert_eq!(status, 200, "{sql}: only a streamed body is cut off: {e}"),
    }
}

#[test]
fn time_and_id_functions_work_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root(
        "CREATE SHARED TABLE ev (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), at TIMESTAMP DEFAULT NOW(), u TEXT DEFAULT UUID_V7())",
    );
    server.root("INSERT INTO ev (id) VALUES (1), (2)");
    let body = server.root("SELECT NOW() = CURRENT_TIMESTAMP, NOW() > TIMESTAMP '2026-01-01'");
    assert_eq!(rows(&body), vec![vec![json!(true), json!(true)]]);
    let body = server.root("SELECT COUNT(*) FROM ev WHERE at < now() + interval '1 day' AND at > now() - interval '1 day'");
    assert_eq!(rows(&body), vec![vec![json!("2")]]);
    server
        .root("SELECT date_bin(interval '1 hour', now()), date_bin(interval '1 hour', at) FROM ev");
    let body = server.root("SELECT UUID_V7() AS a, SNOWFLAKE_ID() AS b, uuid_v7() AS c FROM ev");
    let got = rows(&body);
    assert_eq!(got.len(), 2);
    assert_ne!(got[0][0], got[1][0], "a new value per row");
    assert_ne!(got[0][0], got[0][2]);
    assert_eq!(got[0][0].as_str().unwrap().len(), 36);
    assert!(got[0][1].as_str().unwrap().parse::<i64>().unwrap() > 0);
    server.root("UPDATE ev SET u = UUID_V7(), at = NOW() WHERE id = 1");
}

#[test]
fn integer_overflow_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root("CREATE SHARED TABLE c (id INT PRIMARY KEY, n BIGINT, i INT)");
    server.root("INSERT INTO c VALUES (1, 9223372036854775807, 2147483647), (2, 1, 1)");
    for sql in [
        "UPDATE c SET n = n + 1 WHERE id = 1",
        "UPDATE c SET i = i + 1 WHERE id = 1",
        "SELECT n * 2 FROM c",
        "SELECT -n - 2 FROM c",
        "SELECT sum(n) FROM c",
        "SELECT 9223372036854775807 + 1",
        "SELECT * FROM c WHERE n + 1 > 0",
        "SELECT 2147483647::INT + 1::INT",
        "SELECT CAST(-32768 AS SMALLINT) - CAST(1 AS SMALLINT)",
        "SELECT 3000000000::INT * 1",
        "UPDATE c SET i = 2147483647::INT + 1::INT WHERE id = 2",
    ] {
        let (status, body) = server.sql_as("root", "", json!({ "sql": sql }));
        assert_eq!(status, 400, "{sql}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("out of range"),
            "{sql}: {body}"
        );
    }
    let body = server.root("SELECT n, i FROM c WHERE id = 1");
    assert_eq!(
        rows(&body),
        vec![vec![json!("9223372036854775807"), json!(2147483647)]],
        "nothing wrapped around"
    );
    let body = server.root("SELECT sum(i), sum(n) FROM c WHERE id = 2");
    assert_eq!(rows(&body), vec![vec![json!("1"), json!("1")]]);
    // Constants within range still fold.
    let body = server
        .root("SELECT 2147483646::INT + 1::INT, CAST(-32767 AS SMALLINT) - CAST(1 AS SMALLINT)");
    assert_eq!(rows(&body), vec![vec![json!(2147483647), json!(-32768)]]);
}

#[test]
fn user_errors_are_not_internal_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "u", "u-pw-123", "user");
    for (sql, want) in [
        (
            "SELECT regexp_replace('aaa', '(', 'b')",
            "SQL_EXECUTION_ERROR",
        ),
        ("SELECT regexp_like('a', '[')", "SQL_EXECUTION_ERROR"),
        ("SELECT CAST('x' AS INT)", "SQL_EXECUTION_ERROR"),
        ("SELECT 1 / 0", "SQL_EXECUTION_ERROR"),
        ("SELECT nope(1)", "SQL_EXECUTION_ERROR"),
        ("SELECT * FROM nowhere.t", "NAMESPACE_NOT_FOUND"),
        ("SELEC 1", "INVALID_SQL"),
    ] {
        let (status, body) = server.sql_as("u", "u-pw-123", json!({ "sql": sql }));
        assert_eq!(status, 400, "{sql}: {body}");
        assert_eq!(code(&body), want, "{sql}: {body}");
    }
    // Parameters are scalars.
    for params in [json!([{"a": 1}]), json!([[1, 2]])] {
        let (status, body) = server.sql_as(
            "u",
            "u-pw-123",
            json!({"sql": "SELECT $1", "params": params}),
        );
        assert_eq!(status, 400, "{body}");
        assert_eq!(code(&body), "INVALID_PARAMETER", "{body}");
    }
}

#[test]
fn requests_have_bounds_in_size_time_and_width() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        &[
            ("KALAMDB_MAX_STATEMENTS_PER_REQUEST", "100"),
            ("KALAMDB_STATEMENT_TIMEOUT_MS", "300"),
            ("KALAMDB_HEADER_TIMEOUT_SECS", "1"),
        ],
        None,
    );
    create_user(&server, "u", "u-pw-123", "user");
    let many = vec!["SELECT 1"; 101].join(";");
    let (status, body) = server.sql_as("u", "u-pw-123", json!({ "sql": many }));
    assert_eq!((status, code(&body)), (400, "RESOURCE_EXHAUSTED"), "{body}");
    server.ok_as("u", "u-pw-123", &vec!["SELECT 1"; 100].join(";"));

    // A statement that runs too long is cancelled; /health answers meanwhile.
    let started = stopwatch();
    let (status, body) = server.sql_as(
        "u",
        "u-pw-123",
        json!({"sql": "SELECT count(*) FROM unnest(range(1, 30000)) a CROSS JOIN unnest(range(1, 30000)) b"}),
    );
    assert_eq!((status, code(&body)), (400, "STATEMENT_TIMEOUT"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(server.healthy());

    // Too wide a select list is refused before it is planned.
    let wide = (0..2000)
        .map(|i| format!("{i} AS c{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (status, body) = server.sql_as("u", "u-pw-123", json!({ "sql": format!("SELECT {wide}") }));
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 1664"));

    // Connections that never finish their headers are closed.
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let mut idle: Vec<std::net::TcpStream> = (0..50)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"POST /v1/api/sql HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    for s in &mut idle {
        let mut buf = [0u8; 256];
        // Closed by the server (end of stream or a reset), perhaps after a
        // short answer; our own read timeout would be the failure.
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => {
                    assert!(
                        !matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ),
                        "the connection stayed open: {e}"
                    );
                    break;
                }
            }
        }
    }
    assert!(server.healthy());
}

#[test]
fn health_answers_while_a_heavy_statement_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(TestServer::start(dir.path()));
    let heavy = server.clone();
    let worker = std::thread::spawn(move || {
        heavy.sql_as(
            "root",
            "",
            json!({"sql": "SELECT count(*) FROM unnest(range(1, 25000)) a CROSS JOIN unnest(range(1, 25000)) b"}),
        )
    });
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while !worker.is_finished() {
        let started = stopwatch();
        assert!(server.healthy());
        slowest = slowest.max(started.elapsed());
        probes += 1;
        #[expect(
            clippy::disallowed_methods,
            reason = "probes spaced over the statement's run"
        )]
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = worker.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        probes >= 3,
        "the statement ended too soon to tell ({probes} probes)"
    );
    assert!(slowest < Duration::from_secs(2), "/health took {slowest:?}");
}
