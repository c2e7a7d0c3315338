//! `EXPORT USER DATA` and `SHOW EXPORT`: one user's rows from both tiers,
//! as files a person can read, and who may ask for whose.

use crate::common::{create_user, flush, rows, TestServer};
use serde_json::{json, Value};
use std::path::PathBuf;

fn lines(path: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_user_exports_its_rows_from_both_tiers_and_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root("CREATE NAMESPACE app");
    server.root(
        "CREATE USER TABLE app.notes (id INT PRIMARY KEY, body TEXT NOT NULL, \
         at TIMESTAMP, price DECIMAL(10,2), meta JSON, raw BYTES)",
    );
    server.root("CREATE USER TABLE app.empty (id INT PRIMARY KEY)");
    server.root("CREATE SHARED TABLE app.tags (id INT PRIMARY KEY, name TEXT)");
    server.root("INSERT INTO app.tags VALUES (1, 'shared, not exported')");
    create_user(&server, "u1", "u1-pw", "user");
    create_user(&server, "u2", "u2-pw", "user");
    server.ok_as(
        "u1",
        "u1-pw",
        "INSERT INTO app.notes VALUES \
         (1, 'one', '2024-01-02T03:04:05Z', 12.5, '{\"k\": [1, 2]}', '\\x00ff'), \
         (2, 'two', NULL, -0.05, NULL, NULL), (3, 'three', NULL, NULL, NULL, NULL)",
    );
    server.ok_as(
        "u2",
        "u2-pw",
        "INSERT INTO app.notes VALUES (9, 'not yours', NULL, NULL, NULL, NULL)",
    );
    flush(&server, "app.notes");
    // After the flush: a cold row updated, one deleted, one new hot row.
    server.ok_as(
        "u1",
        "u1-pw",
        "UPDATE app.notes SET body = 'TWO' WHERE id = 2",
    );
    server.ok_as("u1", "u1-pw", "DELETE FROM app.notes WHERE id = 3");
    server.ok_as(
        "u1",
        "u1-pw",
        "INSERT INTO app.notes (id, body) VALUES (4, 'four')",
    );

    let body = server.ok_as("u1", "u1-pw", "EXPORT USER DATA 'u1'");
    let message = body["results"][0]["message"].as_str().unwrap().to_string();
    assert!(
        message.starts_with("Exported 3 row(s) of 'u1' from 1 table(s) to "),
        "{message}"
    );
    let export_id = message.split("Export ID: ").nth(1).unwrap().to_string();
    let path = PathBuf::from(
        message
            .split(" to ")
            .nth(1)
            .unwrap()
            .split(". Export ID")
            .next()
            .unwrap(),
    );
    assert!(path.starts_with(dir.path().join("exports")), "{path:?}");

    let notes = lines(&path.join("app/notes.jsonl"));
    assert_eq!(
        notes,
        vec![
            json!({"id": 1, "body": "one", "at": "2024-01-02T03:04:05Z", "price": "12.50",
                   "meta": {"k": [1, 2]}, "raw": "\\x00ff"}),
            json!({"id": 2, "body": "TWO", "at": null, "price": "-0.05", "meta": null, "raw": null}),
            json!({"id": 4, "body": "four", "at": null, "price": null, "meta": null, "raw": null}),
        ]
    );
    assert!(!path.join("app/empty.jsonl").exists());
    assert!(!path.join("app/tags.jsonl").exists());
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(path.join("export.json")).unwrap()).unwrap();
    assert_eq!(summary["user"], "u1");
    assert_eq!(summary["rows"], 3);
    let tables: Vec<&str> = summary["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(tables, ["app.empty", "app.notes"]);

    // Someone else's data, or a path of one's choosing, is for dba and above.
    for sql in ["EXPORT USER DATA 'u2'", "EXPORT USER DATA 'u1' TO 'mine'"] {
        let (status, body) = server.sql_as("u1", "u1-pw", json!({ "sql": sql }));
        assert_eq!(status, 403, "{sql}: {body}");
    }
    server.root("EXPORT USER DATA 'u2' TO 'for-u2'");
    let u2 = lines(&dir.path().join("exports/for-u2/app/notes.jsonl"));
    assert_eq!(u2.len(), 1);
    assert_eq!(u2[0]["body"], "not yours");
    let (status, body) = server.sql_as(
        "root",
        "",
        json!({ "sql": "EXPORT USER DATA 'u2' TO 'for-u2'" }),
    );
    assert_eq!(status, 400, "an export never overwrites: {body}");
    let (status, _) = server.sql_as("root", "", json!({ "sql": "EXPORT USER DATA 'nobody'" }));
    assert_eq!(status, 400);

    let body = server.ok_as("u1", "u1-pw", "SHOW EXPORT");
    let mine = rows(&body);
    assert_eq!(mine.len(), 1, "{body}");
    assert_eq!(mine[0][0], export_id.as_str());
    assert_eq!(mine[0][2], "completed");
    let body = server.root("SHOW EXPORT");
    let all = rows(&body);
    let users: Vec<&str> = all.iter().map(|r| r[1].as_str().unwrap()).collect();
    assert_eq!(
        users,
        ["u1", "u2"],
        "a refused export is not listed: {body}"
    );
}
