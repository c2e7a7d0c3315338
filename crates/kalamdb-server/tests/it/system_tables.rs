//! The system tables the original KalamDB's clients read, beyond the
//! catalog's own: `system.audit_log`, `system.server_logs`,
//! `system.job_nodes`, `system.manifest`, `system.cluster`.

use crate::common::{create_user, poll, rows, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

fn login(server: &TestServer, user: &str, password: &str) -> u16 {
    server
        .client()
        .post(format!("{}/v1/api/auth/login", server.base_url))
        .json(&json!({ "user": user, "password": password }))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// (action, target, actor, subject, success) of every audit entry.
fn audit(server: &TestServer) -> Vec<(String, String, String, Value, bool)> {
    let body = server.root(
        "SELECT action, target, actor_user_id, subject_user_id, details, ip_address \
         FROM system.audit_log ORDER BY timestamp",
    );
    rows(&body)
        .into_iter()
        .map(|r| {
            let details: Value = serde_json::from_str(r[4].as_str().unwrap()).unwrap();
            let s = |v: &Value| v.as_str().unwrap().to_string();
            (
                s(&r[0]),
                s(&r[1]),
                s(&r[2]),
                r[3].clone(),
                details["success"] == true,
            )
        })
        .collect()
}

#[test]
fn the_audit_log_records_changes_logins_and_impersonation_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path());
    server.root("CREATE NAMESPACE app");
    server.root("CREATE USER TABLE app.notes (id INT PRIMARY KEY, body TEXT)");
    create_user(&server, "svc", "svc-secret-pw", "service");
    create_user(&server, "u1", "u1-secret-pw", "user");
    server.root("EXECUTE AS USER 'svc' (FLUSH TABLE app.notes)");
    let (status, _) = server.sql_as("root", "", json!({ "sql": "DROP TABLE app.missing" }));
    assert_eq!(status, 400);
    // Reads and row changes are not audited.
    server.root("INSERT INTO app.notes VALUES (1, 'x')");
    server.root("SELECT * FROM app.notes");
    assert_eq!(login(&server, "u1", "u1-secret-pw"), 200);
    assert_eq!(login(&server, "u1", "wrong-pw"), 401);

    let expected = [
        ("CREATE NAMESPACE", "app", "root", Value::Null, true),
        ("CREATE TABLE", "app.notes", "root", Value::Null, true),
        ("CREATE USER", "svc", "root", Value::Null, true),
        ("CREATE USER", "u1", "root", Value::Null, true),
        ("FLUSH TABLE", "app.notes", "root", json!("svc"), true),
        ("DROP TABLE", "app.missing", "root", Value::Null, false),
        ("LOGIN", "u1", "u1", Value::Null, true),
        ("LOGIN FAILED", "u1", "u1", Value::Null, false),
    ];
    let check = |server: &TestServer| {
        let got = audit(server);
        let want: Vec<_> = expected
            .iter()
            .map(|(a, t, actor, subject, ok)| {
                (
                    a.to_string(),
                    t.to_string(),
                    actor.to_string(),
                    subject.clone(),
                    *ok,
                )
            })
            .collect();
        assert_eq!(got, want);
    };
    check(&server);
    let body = server.root("SELECT * FROM system.audit_log");
    let text = body.to_string();
    assert!(!text.contains("secret-pw"), "a password in the log: {text}");
    assert!(text.contains("127.0.0.1"), "the login's address: {text}");

    let (status, body) = server.sql_as(
        "u1",
        "u1-secret-pw",
        json!({ "sql": "SELECT * FROM system.audit_log" }),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("dba and above"));

    server.terminate();
    let server = TestServer::start(dir.path());
    check(&server);
}

#[test]
fn server_logs_job_nodes_manifest_and_the_one_node_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root("CREATE NAMESPACE app");
    server.root("CREATE USER TABLE app.notes (id INT PRIMARY KEY, body TEXT)");
    create_user(&server, "u1", "u1-pw", "user");
    create_user(&server, "u2", "u2-pw", "user");
    for (user, password) in [("u1", "u1-pw"), ("u2", "u2-pw")] {
        server.ok_as(
            user,
            password,
            "INSERT INTO app.notes VALUES (1, 'a'), (2, 'b')",
        );
    }
    let flush = server.root("FLUSH TABLE app.notes");
    let message = flush["results"][0]["message"].as_str().unwrap();
    let job = message.split("Job ID: ").nth(1).unwrap().trim().to_string();
    poll("the flush", Duration::from_secs(30), || {
        let body = server.root(&format!(
            "SELECT status FROM system.job_nodes WHERE job_id = '{job}'"
        ));
        (rows(&body).first()?[0] == "completed").then_some(())
    });
    let body = server.root(&format!(
        "SELECT node_id, finished_at >= started_at FROM system.job_nodes WHERE job_id = '{job}'"
    ));
    assert_eq!(rows(&body), vec![vec![json!("1"), json!(true)]]);

    // Root sees both users' scopes, a user only its own.
    let body = server.root(
        "SELECT scope, file_count, row_count FROM system.manifest \
         WHERE table_name = 'notes' ORDER BY scope",
    );
    assert_eq!(
        rows(&body),
        vec![
            vec![json!("u1"), json!("1"), json!("2")],
            vec![json!("u2"), json!("1"), json!("2")],
        ]
    );
    let body = server.ok_as(
        "u1",
        "u1-pw",
        "SELECT scope, manifest_json FROM system.manifest",
    );
    let got = rows(&body);
    assert_eq!(got.len(), 1, "{body}");
    assert_eq!(got[0][0], "u1");
    let manifest: Value = serde_json::from_str(got[0][1].as_str().unwrap()).unwrap();
    assert_eq!(manifest["files"][0]["rows"], 2, "{manifest}");

    // The server's own log lines, as it printed them.
    let body = server.root(
        "SELECT level, target, message FROM system.server_logs WHERE message LIKE 'engine opened%'",
    );
    let got = rows(&body);
    assert_eq!(got.len(), 1, "{body}");
    assert_eq!(got[0][0], "INFO");
    assert!(got[0][1].as_str().unwrap().starts_with("kalamdb_core"));
    assert!(
        got[0][2].as_str().unwrap().contains("namespaces="),
        "{body}"
    );
    let (status, _) = server.sql_as(
        "u1",
        "u1-pw",
        json!({ "sql": "SELECT * FROM system.server_logs" }),
    );
    assert_eq!(status, 400);

    let body = server.root(
        "SELECT node_id, is_leader, api_addr, version, uptime_seconds >= 0 FROM system.cluster",
    );
    let got = rows(&body);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0], "1");
    assert_eq!(got[0][1], true);
    assert_eq!(
        format!("http://{}", got[0][2].as_str().unwrap()),
        server.base_url
    );
    assert_eq!(got[0][3], env!("CARGO_PKG_VERSION"));
    assert_eq!(got[0][4], true);
}
