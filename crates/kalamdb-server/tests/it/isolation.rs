//! Two users trying every way to reach each other's rows over HTTP.

use crate::common::{create_user, rows, TestServer};
use serde_json::json;

#[test]
fn users_never_reach_each_others_rows() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root(
        "CREATE NAMESPACE app; \
         CREATE USER TABLE app.notes (id INT PRIMARY KEY, secret TEXT, owner TEXT DEFAULT CURRENT_USER()); \
         CREATE SHARED TABLE app.tags (id INT PRIMARY KEY, name TEXT); \
         INSERT INTO app.tags VALUES (1, 'red'), (2, 'blue')",
    );
    create_user(&server, "alice", "alice-pw", "user");
    create_user(&server, "bob", "bob-pw", "user");
    server.ok_as(
        "alice",
        "alice-pw",
        "INSERT INTO app.notes (id, secret) VALUES (1, 'alice-secret-1'), (2, 'alice-secret-2')",
    );
    server.ok_as(
        "bob",
        "bob-pw",
        "INSERT INTO app.notes (id, secret) VALUES (1, 'bob-secret')",
    );

    let attempts = [
        "SELECT * FROM app.notes",
        "SELECT * FROM app.notes WHERE owner = 'alice'",
        "SELECT * FROM app.notes WHERE secret LIKE 'alice%'",
        "SELECT n.* FROM app.notes n JOIN app.tags t ON t.id = n.id",
        "SELECT * FROM app.notes WHERE id IN (SELECT id FROM app.notes WHERE owner <> 'bob')",
        "SELECT * FROM (SELECT * FROM app.notes) sub WHERE sub.owner = 'alice'",
        "SELECT a.* FROM app.notes a, app.notes b WHERE a.id <> b.id",
        "SELECT id, secret, _seq FROM app.notes WHERE _seq >= 0",
        "SELECT * FROM kalam.app.notes",
        "WITH x AS (SELECT * FROM app.notes) SELECT * FROM x",
        "SELECT * FROM app.notes UNION ALL SELECT * FROM app.notes",
    ];
    for sql in attempts {
        let body = server.ok_as("bob", "bob-pw", sql);
        let text = body.to_string();
        assert!(!text.contains("alice-secret"), "{sql} leaked: {text}");
    }

    for sql in [
        "UPDATE app.notes SET secret = 'pwned'",
        "UPDATE app.notes SET secret = 'pwned' WHERE owner = 'alice'",
        "DELETE FROM app.notes WHERE id = 2",
        "DELETE FROM app.notes WHERE owner = 'alice'",
    ] {
        server.ok_as("bob", "bob-pw", sql);
    }
    // Inserting alice's key in bob's scope is bob's own row, not a conflict.
    server.ok_as(
        "bob",
        "bob-pw",
        "INSERT INTO app.notes (id, secret) VALUES (2, 'bob-two')",
    );
    let (status, body) = server.sql_as(
        "bob",
        "bob-pw",
        json!({"sql": "SELECT * FROM system.users WHERE user_id = 'alice'"}),
    );
    assert_eq!(status, 200);
    assert!(rows(&body).is_empty(), "{body}");

    let body = server.ok_as(
        "alice",
        "alice-pw",
        "SELECT id, secret FROM app.notes ORDER BY id",
    );
    assert_eq!(
        rows(&body),
        vec![
            vec![json!(1), json!("alice-secret-1")],
            vec![json!(2), json!("alice-secret-2")]
        ]
    );
    let body = server.ok_as(
        "bob",
        "bob-pw",
        "SELECT id, secret FROM app.notes ORDER BY id",
    );
    assert_eq!(
        rows(&body),
        vec![
            vec![json!(1), json!("pwned")],
            vec![json!(2), json!("bob-two")]
        ]
    );
    assert_eq!(
        server.ok_as("alice", "alice-pw", "SELECT * FROM app.notes")["results"][0]["as_user"],
        "alice"
    );
    // Wrong password for an existing user.
    let (status, _) = server.sql_as("alice", "bob-pw", json!({"sql": "SELECT 1"}));
    assert_eq!(status, 401);
}
