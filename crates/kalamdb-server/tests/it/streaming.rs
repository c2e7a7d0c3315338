//! Large results are streamed: the server never holds one whole (as Arrow
//! or as JSON), a result that breaks a bound after its first rows were sent
//! is cut off rather than passed off as whole, and a client that goes away
//! mid-result frees what the statement held.

use crate::common::{create_user, poll, rows, TestServer};
use serde_json::{json, Value};
use std::io::Read;
use std::time::Duration;

fn post(server: &TestServer, sql: &str) -> reqwest::blocking::Response {
    server
        .client()
        .post(format!("{}/v1/api/sql", server.base_url))
        .basic_auth("u", Some("u-pw-123"))
        .json(&json!({ "sql": sql }))
        .send()
        .expect("request sent")
}

#[test]
fn a_large_result_arrives_whole_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "u", "u-pw-123", "user");
    server.root("CREATE USER TABLE notes (id INT PRIMARY KEY, body TEXT NOT NULL)");
    let (before, _) = server.memory_kib();
    let n = 600_000;
    // An INSERT first: the batch's earlier results come before the stream.
    let sql = format!(
        "EXECUTE AS USER 'u' (INSERT INTO notes VALUES (1, 'a')); \
         SELECT value, repeat('x', 200) AS pad FROM generate_series(1, {n})"
    );
    let (status, text) = {
        let response = server
            .client()
            .post(format!("{}/v1/api/sql", server.base_url))
            .basic_auth("root", Some(""))
            .json(&json!({ "sql": sql }))
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&text).expect("a whole JSON body");
    assert_eq!(body["status"], "success");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["message"], "Inserted 1 row(s)");
    let got = results[1]["rows"].as_array().unwrap();
    assert_eq!(got.len(), n);
    assert_eq!(results[1]["row_count"], json!(n));
    assert_eq!(got[0], json!(["1", "x".repeat(200)]));
    assert_eq!(got[n - 1][0], json!(n.to_string()));
    assert!(body["took"].as_f64().unwrap() > 0.0);
    // Collected, this result took the Arrow batches plus a JSON tree plus
    // the text; streamed, the server's peak stays well below the text alone
    // (the margin covers RocksDB's caches and other tests' load).
    let (_, peak) = server.memory_kib();
    let body_kib = (text.len() / 1024) as u64;
    assert!(body_kib > 120_000, "{body_kib} KiB");
    assert!(
        peak < before + body_kib * 3 / 4,
        "peak RSS {peak} KiB, {before} KiB before a {body_kib} KiB result"
    );
    // Small results are unchanged: whole, with a length.
    let response = post(&server, "SELECT id, body FROM notes");
    assert!(response.content_length().is_some());
    let body: Value = response.json().unwrap();
    assert_eq!(rows(&body), vec![vec![json!(1), json!("a")]]);
}

#[test]
fn a_result_that_breaks_a_bound_mid_stream_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server =
        TestServer::start_with(dir.path(), &[("KALAMDB_MAX_RESULT_ROWS", "1500000")], None);
    create_user(&server, "u", "u-pw-123", "user");
    // Past the cap after 1.5M rows, long after the first bytes were sent.
    let mut response = post(&server, "SELECT * FROM generate_series(1, 100000000)");
    assert_eq!(response.status().as_u16(), 200);
    let mut text = Vec::new();
    let read = response.read_to_end(&mut text);
    assert!(
        read.is_err(),
        "the body ends with an error, not a clean end"
    );
    assert!(
        text.len() > 1_000_000,
        "rows were streamed: {} bytes",
        text.len()
    );
    assert!(serde_json::from_slice::<Value>(&text).is_err());
    server.wait_for_log("more than 1500000 rows");
    assert!(server.healthy());

    // Within the cap the same query streams to the end.
    let body: Value = post(&server, "SELECT * FROM generate_series(1, 1500000)")
        .json()
        .unwrap();
    assert_eq!(body["results"][0]["row_count"], json!(1_500_000));
}

#[test]
fn a_streamed_result_is_still_bound_by_the_statement_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // No result cap to hit first: only the timeout ends this one.
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[limits]\nmax_result_mb = 1000000\n").unwrap();
    let server = TestServer::start_with(
        &dir.path().join("data"),
        &[
            ("KALAMDB_MAX_RESULT_ROWS", "1000000000"),
            ("KALAMDB_STATEMENT_TIMEOUT_MS", "1500"),
        ],
        Some(&config),
    );
    create_user(&server, "u", "u-pw-123", "user");
    // Rows start at once and would go on for far longer than 1.5 s.
    let started = crate::common::stopwatch();
    let mut response = post(&server, "SELECT * FROM generate_series(1, 1000000000)");
    assert_eq!(response.status().as_u16(), 200);
    let mut text = Vec::new();
    assert!(
        response.read_to_end(&mut text).is_err(),
        "cut off, not ended"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    server.wait_for_log("canceling statement due to statement timeout");
    assert!(server.healthy());
}

#[test]
fn a_client_that_stops_reading_is_cut_off_at_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        &[
            ("KALAMDB_MAX_RESULT_ROWS", "100000000"),
            ("KALAMDB_STATEMENT_TIMEOUT_MS", "0"),
            ("KALAMDB_REQUEST_TIMEOUT_SECS", "2"),
        ],
        None,
    );
    create_user(&server, "u", "u-pw-123", "user");
    // The first bytes come, then the client reads nothing: the server's
    // buffers fill and the result waits on the client, but not for ever.
    let mut response = post(&server, "SELECT * FROM generate_series(1, 50000000)");
    assert_eq!(response.status().as_u16(), 200);
    poll("the request timeout", Duration::from_secs(30), || {
        server
            .log()
            .iter()
            .any(|l| l.contains("longer than its time limit"))
            .then_some(())
    });
    let mut text = Vec::new();
    assert!(
        response.read_to_end(&mut text).is_err(),
        "cut off, not ended"
    );
    assert!(server.healthy());
}

#[test]
fn a_client_that_leaves_mid_result_frees_the_statement() {
    let dir = tempfile::tempdir().unwrap();
    // Room for one such sort at a time: one that was never given back would
    // leave the next without memory.
    let server = TestServer::start_with(
        dir.path(),
        &[
            ("KALAMDB_MAX_RESULT_ROWS", "100000000"),
            ("KALAMDB_TOTAL_QUERY_MEMORY_MB", SORT_MEMORY_MB),
            ("KALAMDB_QUERY_MEMORY_MB", SORT_MEMORY_MB),
        ],
        None,
    );
    create_user(&server, "u", "u-pw-123", "user");
    let sort = "SELECT value FROM generate_series(1, 3000000) ORDER BY value DESC";
    for round in 0..5 {
        // The server learns that a client left when its next write fails;
        // until then the last statement may still hold its memory.
        let mut response = poll(
            &format!("round {round}: the sort to start"),
            Duration::from_secs(30),
            || {
                let response = post(&server, sort);
                (response.status().as_u16() == 200).then_some(response)
            },
        );
        let mut some = vec![0u8; 64 << 10];
        response.read_exact(&mut some).unwrap();
        assert!(String::from_utf8_lossy(&some).starts_with(r#"{"status":"success""#));
        drop(response);
    }
    assert!(server.healthy());
    let sorted = poll("a whole sort", Duration::from_secs(30), || {
        let body: Value = post(&server, sort).json().unwrap();
        (body["status"] == "success").then_some(body)
    });
    assert_eq!(sorted["results"][0]["row_count"], json!(3_000_000));
    assert_eq!(sorted["results"][0]["rows"][0], json!(["3000000"]));
}

/// Query memory that holds one sort of 3M integers but not two (one needs
/// between 40 and 50 MiB).
const SORT_MEMORY_MB: &str = "64";
