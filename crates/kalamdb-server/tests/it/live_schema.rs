//! Live queries across transactions and schema changes, over the real
//! WebSocket: a committed transaction arrives as its changes once, a
//! rolled-back one never; ADD COLUMN and RENAME leave a subscription
//! going with the columns it started with; DROP COLUMN ends it with
//! `table_altered` and a resume point, from which a new subscription
//! misses nothing.

use crate::common::{create_user, TestServer};
use crate::ws_client::WsClient;
use serde_json::json;

fn ids(message: &serde_json::Value, key: &str) -> Vec<String> {
    message[key]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r["id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn subscriptions_follow_transactions_and_schema_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root(
        "CREATE NAMESPACE ls; CREATE USER TABLE ls.t (id BIGINT PRIMARY KEY, v TEXT, w TEXT)",
    );
    create_user(&server, "lia", "lia-pw-12", "user");
    let sql = |text: &str| server.ok_as("lia", "lia-pw-12", text);
    sql("INSERT INTO ls.t VALUES (1, 'one', 'x')");

    let mut ws = WsClient::connect(&server, "lia", "lia-pw-12");
    let (_, rows) = ws.subscribe("s", "SELECT * FROM ls.t", json!({}));
    assert_eq!(rows.len(), 1);

    // A rolled-back transaction sends nothing; a committed one its rows.
    sql("BEGIN; INSERT INTO ls.t VALUES (2, 'two', 'x'); ROLLBACK");
    sql("BEGIN; INSERT INTO ls.t VALUES (3, 'three', 'x'); UPDATE ls.t SET v = 'uno' WHERE id = 1; COMMIT");
    // One commit: its changes in key order, with consecutive `_seq`s.
    let update = ws.expect("change");
    assert_eq!(update["change_type"], "update", "{update}");
    assert_eq!(update["rows"][0]["v"], "uno", "{update}");
    let insert = ws.expect("change");
    assert_eq!(insert["change_type"], "insert", "{insert}");
    assert_eq!(ids(&insert, "rows"), vec!["3"], "{insert}");
    assert_eq!(
        insert["seq_id"].as_i64(),
        update["seq_id"].as_i64().map(|s| s + 1),
        "{update} {insert}"
    );

    // Added and renamed columns: the subscription keeps its columns.
    server.root("ALTER TABLE ls.t ADD COLUMN extra INT DEFAULT 7, RENAME COLUMN w TO w2");
    sql("INSERT INTO ls.t (id, v, w2, extra) VALUES (4, 'four', 'y', 8)");
    let added = ws.expect("change");
    assert_eq!(ids(&added, "rows"), vec!["4"], "{added}");
    assert_eq!(
        added["rows"][0]["w"], "y",
        "values under the name it subscribed with: {added}"
    );
    assert!(added["rows"][0].get("extra").is_none(), "{added}");

    // A dropped column ends it, resumable.
    server.root("ALTER TABLE ls.t DROP COLUMN v");
    let ended = ws.expect("error");
    assert_eq!(ended["code"], "SUBSCRIPTION_FAILED", "{ended}");
    assert!(
        ended.to_string().contains("table_altered"),
        "the reason: {ended}"
    );
    sql("INSERT INTO ls.t (id, w2) VALUES (5, 'z')");
    let (_, rows) = ws.subscribe("s2", "SELECT id, w2, extra FROM ls.t", json!({}));
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["extra"]
                    .as_str()
                    .map_or(r["extra"].to_string(), String::from),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("1".into(), "7".into()),
            ("3".into(), "7".into()),
            ("4".into(), "8".into()),
            ("5".into(), "7".into())
        ],
        "every row, old ones with the added column's default"
    );
    ws.close();
}
