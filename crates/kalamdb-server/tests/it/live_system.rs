//! Live queries over system tables: dba and above only; rows that appear,
//! change (by the table's id) and go away, read again every
//! `live.system_poll_ms`; no resume; listed in `system.live` and killable.

use crate::common::{create_user, TestServer};
use crate::ws_client::WsClient;
use serde_json::{json, Value};

fn cells(rows: &Value) -> Vec<(String, String)> {
    rows.as_array()
        .unwrap_or_else(|| panic!("rows: {rows}"))
        .iter()
        .map(|r| {
            (
                r["user_id"].as_str().unwrap().to_string(),
                r["role"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(user: &str, role: &str) -> (String, String) {
    (user.to_string(), role.to_string())
}

#[test]
fn a_dba_watches_a_system_table_change_by_change() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[live]\nsystem_poll_ms = 50\n").unwrap();
    let server = TestServer::start_with(&dir.path().join("data"), &[], Some(&config));
    create_user(&server, "ops", "ops-pw-123", "dba");
    create_user(&server, "alice", "alice-pw-1", "user");

    let mut alice = WsClient::connect(&server, "alice", "alice-pw-1");
    alice.send(json!({"type": "subscribe", "subscription": {"id": "u",
        "sql": "SELECT user_id, role FROM system.users"}}));
    assert_eq!(alice.expect("error")["code"], "UNAUTHORIZED");

    let mut ops = WsClient::connect(&server, "ops", "ops-pw-123");
    let (ack, rows) = ops.subscribe(
        "users",
        "SELECT user_id, role FROM system.users WHERE role <> 'system' AND deleted_at IS NULL",
        json!({}),
    );
    let names: Vec<&str> = ack["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["user_id", "role"]);
    let mut initial = cells(&Value::Array(rows));
    initial.sort();
    assert_eq!(initial, vec![pair("alice", "user"), pair("ops", "dba")]);

    // A new row is an insert.
    create_user(&server, "carol", "carol-pw-1", "user");
    let insert = ops.expect("change");
    assert_eq!(insert["change_type"], "insert", "{insert}");
    assert_eq!(cells(&insert["rows"]), vec![pair("carol", "user")]);
    assert!(insert.get("seq_id").is_none(), "no _seq: {insert}");

    // A change of a column it does not select is nothing to it; readings
    // that find nothing new send nothing.
    server.root("ALTER USER 'carol' SET PASSWORD 'carol-pw-2'");
    ops.send(json!({"type": "ping"}));
    ops.expect("pong");

    // A changed row (same user_id) is an update with its old values.
    server.root("ALTER USER 'carol' SET ROLE service");
    let update = ops.expect("change");
    assert_eq!(update["change_type"], "update", "{update}");
    assert_eq!(cells(&update["rows"]), vec![pair("carol", "service")]);
    assert_eq!(cells(&update["old_values"]), vec![pair("carol", "user")]);

    // A row that leaves the WHERE is a delete (a dropped user's row stays,
    // with its deleted_at set).
    server.root("ALTER USER 'carol' SET ROLE system");
    let delete = ops.expect("change");
    assert_eq!(delete["change_type"], "delete", "{delete}");
    assert_eq!(cells(&delete["old_values"]), vec![pair("carol", "service")]);
    assert!(delete.get("rows").is_none(), "{delete}");
    server.root("DROP USER 'alice'");
    let delete = ops.expect("change");
    assert_eq!(cells(&delete["old_values"]), vec![pair("alice", "user")]);

    // There is no history to resume from.
    ops.send(json!({"type": "subscribe", "subscription": {"id": "again",
        "sql": "SELECT user_id FROM system.users", "options": {"from_seq_id": 5}}}));
    let refused = ops.expect("error");
    assert_eq!(refused["code"], "UNSUPPORTED", "{refused}");
}

#[test]
fn a_flush_job_is_watched_to_its_end_and_the_watch_is_listed_and_killed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[live]\nsystem_poll_ms = 20\n").unwrap();
    let server = TestServer::start_with(&dir.path().join("data"), &[], Some(&config));
    create_user(&server, "ops", "ops-pw-123", "dba");
    server.root("CREATE NAMESPACE app");
    server.root("CREATE SHARED TABLE app.board (id BIGINT PRIMARY KEY, v TEXT)");
    server.root("INSERT INTO app.board (id, v) VALUES (1, 'a'), (2, 'b')");

    let mut ops = WsClient::connect(&server, "ops", "ops-pw-123");
    let (_, rows) = ops.subscribe(
        "jobs",
        "SELECT job_id, status FROM system.jobs WHERE job_type = 'flush'",
        json!({}),
    );
    assert!(rows.is_empty(), "{rows:?}");
    let answer = server.root("FLUSH TABLE app.board");
    let text = answer.to_string();
    let job = text
        .split("Job ID: ")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .next()
        })
        .unwrap_or_else(|| panic!("no job id in {text}"))
        .to_string();
    // Every status the readings caught, ending with completed; the first
    // sighting is an insert, later ones updates of the same job.
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("completed") {
        let change = ops.expect("change");
        let row = &change["rows"][0];
        assert_eq!(row["job_id"], job.as_str(), "{change}");
        let expected_kind = if statuses.is_empty() {
            "insert"
        } else {
            "update"
        };
        assert_eq!(change["change_type"], expected_kind, "{change}");
        statuses.push(row["status"].as_str().unwrap().to_string());
    }

    let listed = server.root("SELECT live_id, sql FROM system.live");
    let rows = crate::common::rows(&listed);
    assert_eq!(rows.len(), 1, "{listed}");
    assert!(
        rows[0][1].as_str().unwrap().contains("system.jobs"),
        "{listed}"
    );
    let live_id = rows[0][0].as_str().unwrap().to_string();
    server.root(&format!("KILL LIVE QUERY '{live_id}'"));
    let ended = ops.expect("error");
    assert_eq!(
        (ended["subscription_id"].as_str(), ended["reason"].as_str()),
        (Some("jobs"), Some("killed")),
        "{ended}"
    );
}
