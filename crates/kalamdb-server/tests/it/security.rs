//! Attacks through every path added since the isolation test: rows in
//! Parquet files, EXECUTE AS, system tables, storages and path tricks in
//! names, privilege escalation, and tokens of dropped users. Every attempt
//! is refused with the right code and the server stays up.

use crate::common::{create_user, rows, TestServer};
use serde_json::{json, Value};

fn code(body: &Value) -> String {
    body["error"]["code"].as_str().unwrap_or("").to_string()
}

fn refused(server: &TestServer, user: &str, password: &str, sql: &str, want: &str) {
    let (status, body) = server.sql_as(user, password, json!({ "sql": sql }));
    assert!(status >= 400, "{user}: {sql} was accepted: {body}");
    assert_eq!(code(&body), want, "{user}: {sql}: {body}");
}

#[test]
fn attacks_through_newer_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "alice", "alice-pw", "user");
    create_user(&server, "mallory", "mallory-pw", "user");
    server.root(
        "CREATE NAMESPACE app; \
         CREATE USER TABLE app.notes (id INT PRIMARY KEY, secret TEXT); \
         CREATE SHARED TABLE app.private (id INT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL='PRIVATE')",
    );
    server.ok_as(
        "alice",
        "alice-pw",
        "INSERT INTO app.notes VALUES (1, 'alice-secret')",
    );
    server.root("INSERT INTO app.private VALUES (1, 'staff only')");
    // Alice's row is now in a Parquet file; the rules are the same there.
    let job = crate::flush::job_id(&server.root("FLUSH TABLE app.notes"));
    assert_eq!(crate::flush::wait_for_job(&server, &job).0, "completed");
    for sql in [
        "SELECT * FROM app.notes",
        "SELECT * FROM app.notes WHERE id = 1",
        "SELECT secret FROM app.notes WHERE secret LIKE 'alice%'",
    ] {
        let body = server.ok_as("mallory", "mallory-pw", sql);
        assert!(rows(&body).is_empty(), "{sql}: {body}");
    }
    let body = server.ok_as(
        "mallory",
        "mallory-pw",
        "DELETE FROM app.notes WHERE id = 1",
    );
    assert_eq!(body["results"][0]["row_count"], 0);
    // Mallory may insert id 1 in her own scope: it is not alice's row.
    server.ok_as(
        "mallory",
        "mallory-pw",
        "INSERT INTO app.notes VALUES (1, 'mine')",
    );
    let body = server.ok_as("alice", "alice-pw", "SELECT secret FROM app.notes");
    assert_eq!(rows(&body), vec![vec![Value::from("alice-secret")]]);

    for (sql, want) in [
        (
            "EXECUTE AS USER 'alice' (SELECT * FROM app.notes)",
            "PERMISSION_DENIED",
        ),
        (
            "EXECUTE AS USER 'root' (DROP NAMESPACE app CASCADE)",
            "PERMISSION_DENIED",
        ),
        ("SELECT * FROM app.private", "PERMISSION_DENIED"),
        (
            "INSERT INTO app.private VALUES (2, 'x')",
            "PERMISSION_DENIED",
        ),
        ("CREATE NAMESPACE evil", "PERMISSION_DENIED"),
        (
            "CREATE STORAGE evil TYPE 'filesystem' PATH '/tmp/evil'",
            "PERMISSION_DENIED",
        ),
        (
            "ALTER USER 'alice' SET PASSWORD 'owned-pw'",
            "PERMISSION_DENIED",
        ),
        ("ALTER USER 'mallory' SET ROLE dba", "PERMISSION_DENIED"),
        (
            "CREATE USER 'boss' WITH PASSWORD 'boss-pw' ROLE system",
            "PERMISSION_DENIED",
        ),
        ("FLUSH TABLE app.notes", "PERMISSION_DENIED"),
        ("KILL JOB 'FL-1'", "PERMISSION_DENIED"),
        ("SHOW STATS FOR TABLE app.notes", "PERMISSION_DENIED"),
        ("DROP TABLE app.notes", "PERMISSION_DENIED"),
    ] {
        refused(&server, "mallory", "mallory-pw", sql, want);
    }
    // System tables: no hashes anywhere, others' accounts hidden.
    let body = server.ok_as("mallory", "mallory-pw", "SELECT * FROM system.users");
    assert_eq!(rows(&body).len(), 1, "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "{text}"
    );
    let body = server.root("SELECT * FROM system.users");
    assert!(!body.to_string().contains("argon2"));
    // Names that try to leave their directory.
    for sql in [
        "CREATE NAMESPACE \"../etc\"",
        "CREATE TABLE \"a/b\" (id INT PRIMARY KEY)",
        "CREATE USER '../../x' WITH PASSWORD 'pw-pw-pw' ROLE user",
        "CREATE STORAGE up TYPE 'filesystem' PATH '../../outside'",
        "CREATE STORAGE up TYPE 'filesystem' PATH 'x' USER_TABLES_TEMPLATE '{namespace}/../{userId}'",
    ] {
        let (status, body) = server.sql_as("root", "", json!({ "sql": sql }));
        assert_eq!(status, 400, "{sql} was accepted: {body}");
    }
    assert!(!dir.path().join("../outside").exists());
    // A dropped user's token stops working.
    let login = server
        .client()
        .post(format!("{}/v1/api/auth/login", server.base_url))
        .json(&json!({ "user": "mallory", "password": "mallory-pw" }))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_string();
    server.root("DROP USER 'mallory'");
    let response = server
        .client()
        .post(format!("{}/v1/api/sql", server.base_url))
        .bearer_auth(&token)
        .json(&json!({ "sql": "SELECT 1" }))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert!(server.healthy());
}

#[test]
fn storage_templates_that_could_collide_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    for (template, kind) in [
        ("{namespace}/{userId}", "USER_TABLES_TEMPLATE"),
        ("{namespace}_{tableName}/{userId}", "USER_TABLES_TEMPLATE"),
        ("{namespace}/{tableName}{userId}", "USER_TABLES_TEMPLATE"),
        ("shared", "SHARED_TABLES_TEMPLATE"),
        ("{tableName}", "SHARED_TABLES_TEMPLATE"),
    ] {
        refused(
            &server,
            "root",
            "",
            &format!("CREATE STORAGE flat TYPE 'filesystem' PATH 'flat' {kind} '{template}'"),
            "SQL_EXECUTION_ERROR",
        );
    }
    server.root("CREATE STORAGE flat TYPE 'filesystem' PATH 'flat' USER_TABLES_TEMPLATE '{namespace}.{tableName}/{userId}'");
    refused(
        &server,
        "root",
        "",
        "ALTER STORAGE flat SET USER_TABLES_TEMPLATE '{namespace}/{userId}'",
        "SQL_EXECUTION_ERROR",
    );
    assert!(server.healthy());
}
