//! Flushing through the real server: FLUSH returns a job id at once, the job
//! completes, files appear, results do not change; and `kill -9` during a
//! flush of many users loses nothing, with the interrupted job re-run at
//! the next start.

use crate::common::{create_user, poll, rows, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub fn job_id(body: &Value) -> String {
    let message = body["results"][0]["message"].as_str().expect("a message");
    message
        .split("Job ID: ")
        .nth(1)
        .expect("message names the job")
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .unwrap()
        .to_string()
}

/// Polls system.jobs the way clients do, until the job has finished.
pub fn wait_for_job(server: &TestServer, id: &str) -> (String, Value) {
    poll(
        &format!("job {id} to finish"),
        Duration::from_secs(60),
        || {
            let body = server.root(&format!(
                "SELECT status, message, result, error FROM system.jobs WHERE job_id = '{id}'"
            ));
            let row = rows(&body).pop().unwrap_or_default();
            let status = row
                .first()
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            matches!(
                status.as_str(),
                "completed" | "failed" | "cancelled" | "skipped"
            )
            .then(|| (status, Value::Array(row)))
        },
    )
}

fn parquet_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                found.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

fn user_rows(server: &TestServer, user: &str) -> BTreeMap<String, Value> {
    let body = server.ok_as(
        user,
        &format!("{user}-pw"),
        "SELECT id, body FROM app.msgs ORDER BY id",
    );
    rows(&body)
        .into_iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].clone()))
        .collect()
}

#[test]
fn flush_table_runs_as_a_job_and_changes_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root(
        "CREATE NAMESPACE app; CREATE USER TABLE app.msgs (id BIGINT PRIMARY KEY, body TEXT)",
    );
    for user in ["alice", "bob"] {
        create_user(&server, user, &format!("{user}-pw"), "user");
        server.ok_as(
            user,
            &format!("{user}-pw"),
            &format!("INSERT INTO app.msgs VALUES (1, '{user} one'), (2, '{user} two')"),
        );
    }
    let before: Vec<_> = ["alice", "bob"]
        .iter()
        .map(|u| user_rows(&server, u))
        .collect();

    let body = server.root("FLUSH TABLE app.msgs");
    let id = job_id(&body);
    assert!(id.starts_with("FL-"), "{body}");
    let (status, row) = wait_for_job(&server, &id);
    assert_eq!(status, "completed", "{row}");
    assert_eq!(row[1], json!("Flushed app.msgs (4 rows, 2 files)"));
    let result: Value = serde_json::from_str(row[2].as_str().unwrap()).unwrap();
    assert_eq!(result["rows_flushed"], 4);
    assert_eq!(result["users_count"], 2);
    assert!(result["bytes_written"].as_u64().unwrap() > 0);

    let files = parquet_files(&dir.path().join("storage"));
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files.iter().any(|f| f.starts_with("app/msgs/alice/batch-")),
        "{files:?}"
    );
    assert!(dir
        .path()
        .join("storage/app/msgs/bob/manifest.json")
        .exists());

    let after: Vec<_> = ["alice", "bob"]
        .iter()
        .map(|u| user_rows(&server, u))
        .collect();
    assert_eq!(before, after);
    let (status, body) = server.sql_as(
        "alice",
        "alice-pw",
        json!({"sql": "INSERT INTO app.msgs VALUES (1, 'dup')"}),
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn kill_9_during_a_flush_of_many_users_loses_nothing() {
    const USERS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path());
    server.root(
        "CREATE NAMESPACE app; CREATE USER TABLE app.msgs (id BIGINT PRIMARY KEY, body TEXT)",
    );
    let users: Vec<String> = (0..USERS).map(|i| format!("user{i:03}")).collect();
    let mut expected = BTreeMap::new();
    for user in &users {
        create_user(&server, user, &format!("{user}-pw"), "user");
        let values: Vec<String> = (0..25)
            .map(|i| format!("({i}, '{user} row {i}')"))
            .collect();
        server.ok_as(
            user,
            &format!("{user}-pw"),
            &format!("INSERT INTO app.msgs VALUES {}", values.join(", ")),
        );
        expected.insert(user.clone(), user_rows(&server, user));
    }

    let id = job_id(&server.root("FLUSH TABLE app.msgs"));
    server.kill9();

    let server = TestServer::start(dir.path());
    for user in &users {
        assert_eq!(
            user_rows(&server, user),
            expected[user],
            "{user} right after restart"
        );
    }
    // The interrupted job is re-run at start-up and completes.
    let (status, row) = wait_for_job(&server, &id);
    assert_eq!(status, "completed", "{row}");
    for user in &users {
        assert_eq!(
            user_rows(&server, user),
            expected[user],
            "{user} after the resumed flush"
        );
    }
    assert_eq!(parquet_files(&dir.path().join("storage")).len(), USERS);
    let body = server.root("FLUSH TABLE app.msgs");
    let (status, row) = wait_for_job(&server, &job_id(&body));
    assert_eq!(status, "completed");
    assert_eq!(row[1], json!("Flushed app.msgs (0 rows, 0 files)"));
}
