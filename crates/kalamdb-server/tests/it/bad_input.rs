//! Hostile and malformed input gets a clear error; the server stays up.

use crate::common::{rows, TestServer};
use serde_json::json;

fn post_raw(server: &TestServer, body: Vec<u8>) -> (u16, serde_json::Value) {
    // A fresh connection per request: the server closes a connection after
    // refusing an oversized body.
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/api/sql", server.base_url))
        .basic_auth("root", Some(""))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(serde_json::Value::Null))
}

#[test]
fn nasty_requests_are_refused_and_the_server_survives() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[server]\nmax_request_body_bytes = 65536\n").unwrap();
    let server = TestServer::start_with(&dir.path().join("data"), &[], Some(&config));
    server.root("CREATE SHARED TABLE t (id BIGINT PRIMARY KEY, s TEXT, n INT NOT NULL DEFAULT 0)");

    let raw_cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (vec![b'x'; 70_000], 413, "PAYLOAD_TOO_LARGE"),
        (b"{".to_vec(), 400, "INVALID_REQUEST"),
        (b"{\"sql\": 5}".to_vec(), 400, "INVALID_REQUEST"),
        (
            b"{\"sql\": \"SELECT \xff\xfe\"}".to_vec(),
            400,
            "INVALID_REQUEST",
        ),
        (
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            400,
            "INVALID_REQUEST",
        ),
        (b"".to_vec(), 400, "INVALID_REQUEST"),
    ];
    for (body, status, code) in raw_cases {
        let (got, response) = post_raw(&server, body);
        assert_eq!(got, status, "{response}");
        assert_eq!(response["error"]["code"], code, "{response}");
        assert!(server.healthy());
    }

    let deep = format!("SELECT {}1{}", "(".repeat(3000), ")".repeat(3000));
    let deep_case = format!(
        "SELECT {} 1 {}",
        "CASE WHEN true THEN ".repeat(500),
        " END".repeat(500)
    );
    let long_ident = format!("SELECT * FROM {}", "a".repeat(10_000));
    let statements = "SELECT 1;".repeat(500);
    let sql_cases = [
        deep.as_str(),
        deep_case.as_str(),
        long_ident.as_str(),
        "SELECT 'unterminated",
        "SELECT \"unterminated",
        "SELECT /* unterminated",
        "SELECT \u{0} FROM t",
        "INSERT INTO t (id, s) VALUES (99999999999999999999999, 'x')",
        "INSERT INTO t (id, n) VALUES (1, NULL)",
        "INSERT INTO t (id, s) VALUES ('not a number', 'x')",
        "SELECT CAST('x' AS INT)",
        "SELECT 1/0",
        "SELECT * FROM t WHERE nope = 1",
        "INSERT INTO t VALUES (1, 'a', 1, 'extra')",
        "DROP TABLE system.users",
        "CREATE TABLE ../../etc (id INT PRIMARY KEY)",
        "CREATE TABLE \"a/b\" (id INT PRIMARY KEY)",
        "CREATE NAMESPACE \"..\"",
        "UPDATE t SET nope = 1",
        "SELECT ☃ FROM t",
    ];
    for sql in sql_cases {
        let (status, body) = server.sql_as("root", "", json!({ "sql": sql }));
        let shown: String = sql.chars().take(60).collect();
        assert_eq!(status, 400, "{shown}: {body}");
        assert_eq!(body["status"], "error", "{shown}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        assert!(server.healthy(), "server died on {shown}");
    }

    // Large but allowed input works.
    let big = "x".repeat(60_000);
    server.root(&format!("INSERT INTO t (id, s) VALUES (1, '{big}')"));
    assert_eq!(
        rows(&server.root("SELECT length(s) FROM t WHERE id = 1"))[0][0],
        json!(60_000)
    );
    let body = server.root(&statements);
    assert_eq!(body["results"].as_array().unwrap().len(), 500);

    for header in [
        "Basic !!!",
        "Basic",
        "Bearer abc",
        "Digest x",
        "Basic cm9vdA==",
    ] {
        let response = server
            .client()
            .post(format!("{}/v1/api/sql", server.base_url))
            .header("authorization", header)
            .json(&json!({"sql": "SELECT 1"}))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{header}");
    }
    assert!(server.healthy());
}
