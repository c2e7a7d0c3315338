//! Live queries over a real WebSocket against the real binary: snapshots,
//! change streams, paging, resume across restarts and flushes, isolation,
//! bad input.

use crate::common::{create_user, TestServer};
use crate::ws_client::WsClient;
use serde_json::{json, Value};
use tungstenite::Message;

fn setup(server: &TestServer) {
    server.root("CREATE NAMESPACE app");
    server.root(
        "CREATE USER TABLE app.todo (id BIGINT PRIMARY KEY, title TEXT NOT NULL, \
         done BOOLEAN NOT NULL DEFAULT false, prio INT NOT NULL, score DOUBLE NOT NULL, \
         due DATE, at TIMESTAMP NOT NULL, note TEXT)",
    );
    create_user(server, "alice", "alice-pw-1", "user");
    create_user(server, "bob", "bob-pw-12", "user");
}

fn insert(server: &TestServer, user: &str, pw: &str, id: i64, title: &str, prio: i64) {
    server.ok_as(
        user,
        pw,
        &format!(
            "INSERT INTO app.todo (id, title, prio, score, due, at) VALUES \
             ({id}, '{title}', {prio}, {id}.5, '2026-01-0{}', 1700000000000000)",
            1 + id % 9
        ),
    );
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter()
        .map(|r| r["id"].as_str().expect("BIGINT as string").parse().unwrap())
        .collect()
}

/// Row changes one by one (a replay may carry several commits of one
/// kind in one message): (kind, new row's id, old row's id).
fn row_changes(ws: &mut WsClient, n: usize) -> Vec<(String, Option<i64>, Option<i64>, Value)> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = ws.expect("change");
        let kind = m["change_type"].as_str().unwrap().to_string();
        let rows = m["rows"].as_array().cloned().unwrap_or_default();
        let old = m["old_values"].as_array().cloned().unwrap_or_default();
        for i in 0..rows.len().max(old.len()) {
            let id = |list: &[Value]| list.get(i).map(|r| ids(std::slice::from_ref(r))[0]);
            let row = rows.get(i).or(old.get(i)).cloned().unwrap_or_default();
            let title = json!({"new": rows.get(i).map(|r| r["title"].clone()), "old": old.get(i).map(|r| r["title"].clone()), "row": row});
            out.push((kind.clone(), id(&rows), id(&old), title));
        }
    }
    assert_eq!(out.len(), n, "more row changes than expected: {out:?}");
    out
}

fn change_summary(change: &Value) -> (String, Vec<i64>, Vec<i64>) {
    let list = |key: &str| {
        change[key]
            .as_array()
            .map(|rows| ids(rows))
            .unwrap_or_default()
    };
    (
        change["change_type"].as_str().unwrap().to_string(),
        list("rows"),
        list("old_values"),
    )
}

#[test]
fn a_subscriber_gets_a_snapshot_then_every_change_in_commit_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    for (id, prio) in [(1, 5), (2, 1), (3, 7)] {
        insert(&server, "alice", "alice-pw-1", id, &format!("t{id}"), prio);
    }
    let mut ws = WsClient::connect(&server, "alice", "alice-pw-1");
    let (ack, rows) = ws.subscribe(
        "hot",
        "SELECT id, title, prio, _seq FROM app.todo WHERE prio >= 5",
        json!({}),
    );
    assert_eq!(ack["total_rows"], 2, "{ack}");
    let schema: Vec<(&str, &str)> = ack["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["data_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        schema,
        vec![
            ("id", "BigInt"),
            ("title", "Text"),
            ("prio", "Int"),
            ("_seq", "BigInt")
        ]
    );
    assert_eq!(ids(&rows), vec![1, 3]);
    assert_eq!(rows[0]["title"], "t1");
    assert_eq!(rows[0]["prio"], 5, "small ints are numbers");

    // Inserts in and out of the WHERE; an update inside it, one moving a
    // row in, one moving a row out; deletes inside and outside.
    insert(&server, "alice", "alice-pw-1", 4, "t4", 9);
    insert(&server, "alice", "alice-pw-1", 5, "t5", 0);
    let alice = |sql: &str| server.ok_as("alice", "alice-pw-1", sql);
    alice("UPDATE app.todo SET title = 'T1' WHERE id = 1");
    alice("UPDATE app.todo SET prio = 6 WHERE id = 2");
    alice("UPDATE app.todo SET prio = 0 WHERE id = 3");
    alice("DELETE FROM app.todo WHERE id = 5");
    alice("DELETE FROM app.todo WHERE id = 4");
    let got: Vec<_> = ws.changes(5).iter().map(change_summary).collect();
    assert_eq!(
        got,
        vec![
            ("insert".into(), vec![4], vec![]),
            ("update".into(), vec![1], vec![1]),
            ("insert".into(), vec![2], vec![]),
            ("delete".into(), vec![], vec![3]),
            ("delete".into(), vec![], vec![4]),
        ]
    );
    // The update carries both versions; the delete the row it removed.
    alice("UPDATE app.todo SET title = 'T1 again' WHERE id = 1");
    let update = ws.expect("change");
    assert_eq!(update["rows"][0]["title"], "T1 again", "{update}");
    assert_eq!(update["old_values"][0]["title"], "T1", "{update}");
    let new_seq: i64 = update["rows"][0]["_seq"].as_str().unwrap().parse().unwrap();
    let old_seq: i64 = update["old_values"][0]["_seq"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(new_seq > old_seq, "{update}");
    assert_eq!(update["seq_id"].as_u64().unwrap() as i64, new_seq);

    // One multi-row statement: one message with every row.
    alice(
        "INSERT INTO app.todo (id, title, prio, score, at) VALUES \
         (10, 'a', 8, 1, 0), (11, 'b', 1, 1, 0), (12, 'c', 9, 1, 0)",
    );
    let multi = ws.expect("change");
    assert_eq!(
        change_summary(&multi),
        ("insert".into(), vec![10, 12], vec![])
    );
    ws.close();
}

#[test]
fn pages_come_on_next_batch_and_changes_meanwhile_follow_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let values: Vec<String> = (1..=25)
        .map(|i| format!("({i}, 't{i}', {i}, 0, 0)"))
        .collect();
    server.ok_as(
        "alice",
        "alice-pw-1",
        &format!(
            "INSERT INTO app.todo (id, title, prio, score, at) VALUES {}",
            values.join(",")
        ),
    );
    // Half of them cold: the snapshot spans both tiers.
    server.root("FLUSH TABLE app.todo");
    crate::common::poll("the flush", std::time::Duration::from_secs(30), || {
        let body = server.root("SELECT status FROM system.jobs WHERE job_type = 'flush'");
        (crate::common::rows(&body).first()?[0] == "completed").then_some(())
    });
    server.ok_as(
        "alice",
        "alice-pw-1",
        "UPDATE app.todo SET title = 'hot' WHERE id > 20",
    );

    let mut ws = WsClient::connect(&server, "alice", "alice-pw-1");
    ws.send(json!({"type": "subscribe", "subscription": {
        "id": "pages", "sql": "SELECT id, title FROM app.todo", "options": {"batch_size": 10}}}));
    let ack = ws.expect("subscription_ack");
    assert_eq!(ack["total_rows"], 25, "{ack}");
    assert_eq!(ack["batch_control"]["status"], "loading");
    let first = ws.expect("initial_data_batch");
    assert_eq!(first["batch_control"]["batch_num"], 0);
    assert_eq!(first["batch_control"]["status"], "loading");
    assert_eq!(first["batch_control"]["has_more"], true);
    assert_eq!(
        ids(first["rows"].as_array().unwrap()),
        (1..=10).collect::<Vec<_>>()
    );

    // Written while the client pages: not in the snapshot, delivered once
    // after the last page.
    insert(&server, "alice", "alice-pw-1", 26, "late", 1);
    server.ok_as("alice", "alice-pw-1", "DELETE FROM app.todo WHERE id = 1");

    ws.send(json!({"type": "next_batch", "subscription_id": "pages", "last_seq_id": first["batch_control"]["last_seq_id"]}));
    let second = ws.expect("initial_data_batch");
    assert_eq!(second["batch_control"]["status"], "loading_batch");
    assert_eq!(
        ids(second["rows"].as_array().unwrap()),
        (11..=20).collect::<Vec<_>>()
    );
    ws.send(json!({"type": "next_batch", "subscription_id": "pages"}));
    let third = ws.expect("initial_data_batch");
    assert_eq!(third["batch_control"]["status"], "ready");
    assert_eq!(third["batch_control"]["has_more"], false);
    let last: Vec<Value> = third["rows"].as_array().unwrap().clone();
    assert_eq!(ids(&last), (21..=25).collect::<Vec<_>>());
    assert!(last.iter().all(|r| r["title"] == "hot"), "{third}");
    let late: Vec<_> = ws.changes(2).iter().map(change_summary).collect();
    assert_eq!(
        late,
        vec![
            ("insert".into(), vec![26], vec![]),
            ("delete".into(), vec![], vec![1])
        ]
    );
    // Asking for more after the end is an error, not a repeat.
    ws.send(json!({"type": "next_batch", "subscription_id": "pages"}));
    assert_eq!(ws.expect("error")["code"], "BATCH_FETCH_FAILED");
    // Small messages are text; a large page comes gzip'd.
    assert_eq!(ws.binary_frames, 0);
    let (_, rows) = ws.subscribe(
        "wide",
        "SELECT id, repeat(title, 200) AS wide FROM app.todo",
        json!({"batch_size": 100}),
    );
    assert_eq!(rows.len(), 25);
    assert_eq!(ws.binary_frames, 1, "the one page of about 25 kB");
    assert!(rows[0]["wide"].as_str().unwrap().starts_with("t2t2"));
}

#[test]
fn last_rows_gives_the_newest_rows_in_commit_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    for id in [5, 3, 9, 1, 7] {
        insert(&server, "alice", "alice-pw-1", id, "x", 1);
    }
    let mut ws = WsClient::connect(&server, "alice", "alice-pw-1");
    let (ack, rows) = ws.subscribe("last", "SELECT id FROM app.todo", json!({"last_rows": 3}));
    assert_eq!(ack["total_rows"], 3);
    assert_eq!(
        ids(&rows),
        vec![9, 1, 7],
        "the three written last, oldest first"
    );
}

/// A subscriber that saw `_seq = n` and comes back with `from_seq_id = n`
/// gets every change after it once: across a disconnect, a flush of the
/// rows to Parquet, and `kill -9`.
#[test]
fn a_resume_replays_exactly_the_missed_changes_across_flush_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path());
    setup(&server);
    insert(&server, "alice", "alice-pw-1", 1, "a", 1);
    let mut ws = WsClient::connect(&server, "alice", "alice-pw-1");
    let (ack, _) = ws.subscribe(
        "r",
        "SELECT id, title FROM app.todo WHERE prio > 0",
        json!({}),
    );
    insert(&server, "alice", "alice-pw-1", 2, "b", 1);
    let seen = ws.expect("change");
    let resume_from = seen["seq_id"].as_u64().unwrap();
    assert!(resume_from > ack["batch_control"]["snapshot_end_seq"].as_u64().unwrap());
    ws.close();

    // Missed: an insert, two updates of one row, a row moving out of the
    // WHERE, a delete; then everything goes cold, and the server dies.
    let alice = |server: &TestServer, sql: &str| {
        server.ok_as("alice", "alice-pw-1", sql);
    };
    insert(&server, "alice", "alice-pw-1", 3, "c", 1);
    alice(&server, "UPDATE app.todo SET title = 'a1' WHERE id = 1");
    alice(&server, "UPDATE app.todo SET title = 'a2' WHERE id = 1");
    alice(&server, "UPDATE app.todo SET prio = 0 WHERE id = 2");
    alice(&server, "DELETE FROM app.todo WHERE id = 3");
    server.root("FLUSH TABLE app.todo");
    crate::common::poll("the flush", std::time::Duration::from_secs(30), || {
        let body = server.root("SELECT status FROM system.jobs WHERE job_type = 'flush'");
        (crate::common::rows(&body).first()?[0] == "completed").then_some(())
    });
    server.kill9();
    let server = TestServer::start(dir.path());

    let kinds = |v: &[(String, Option<i64>, Option<i64>, Value)]| -> Vec<(String, Option<i64>, Option<i64>)> {
        v.iter().map(|(k, n, o, _)| (k.clone(), *n, *o)).collect()
    };
    let mut expected = vec![
        ("insert".to_string(), Some(3), None),
        ("update".to_string(), Some(1), Some(1)),
        ("update".to_string(), Some(1), Some(1)),
        ("delete".to_string(), None, Some(2)),
        ("delete".to_string(), None, Some(3)),
    ];
    for live_id in [100, 101] {
        // Twice: a resume neither consumes nor changes the history (the
        // second also replays what the first saw live).
        let mut ws = WsClient::connect(&server, "alice", "alice-pw-1");
        let (ack, rows) = ws.subscribe(
            "r",
            "SELECT id, title FROM app.todo WHERE prio > 0",
            json!({"from_seq_id": resume_from.to_string()}),
        );
        assert_eq!(ack["batch_control"]["status"], "ready", "{ack}");
        assert!(rows.is_empty());
        let got = row_changes(&mut ws, expected.len());
        assert_eq!(kinds(&got), expected);
        assert_eq!(got[1].3["old"], "a", "{:?}", got[1]);
        assert_eq!(got[2].3["new"], "a2", "{:?}", got[2]);
        // Then live: the next change, and nothing in between.
        insert(&server, "alice", "alice-pw-1", live_id, "live", 1);
        assert_eq!(change_summary(&ws.expect("change")).1, vec![live_id]);
        server.ok_as(
            "alice",
            "alice-pw-1",
            &format!("DELETE FROM app.todo WHERE id = {live_id}"),
        );
        assert_eq!(change_summary(&ws.expect("change")).2, vec![live_id]);
        ws.close();
        expected.push(("insert".to_string(), Some(live_id), None));
        expected.push(("delete".to_string(), None, Some(live_id)));
    }
}

#[test]
fn a_history_that_is_gone_is_reported_never_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        "[flush]\ncheck_interval_ms = 50\n[live]\nhistory_retention_secs = 0\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = TestServer::start_with(&data, &[], Some(&config));
    setup(&server);
    insert(&server, "alice", "alice-pw-1", 1, "a", 1);
    let mut ws = WsClient::connect(&server, "alice", "alice-pw-1");
    let mut attempt = 0;
    let refused = crate::common::poll(
        "the history to age out",
        std::time::Duration::from_secs(30),
        || {
            attempt += 1;
            let id = format!("old{attempt}");
            ws.send(json!({"type": "subscribe", "subscription": {
            "id": id, "sql": "SELECT * FROM app.todo", "options": {"from_seq_id": 0}}}));
            // The answer to this attempt (earlier ones may still be replaying).
            let answer = loop {
                let m = ws.next().expect("an answer");
                if m["subscription_id"] == id.as_str() && m["type"] != "change" {
                    break m;
                }
            };
            if answer["type"] == "subscription_ack" {
                // Not trimmed yet: let this one go and ask again.
                ws.send(json!({"type": "unsubscribe", "subscription_id": id}));
                None
            } else {
                Some(answer)
            }
        },
    );
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "HISTORY_UNAVAILABLE", "{refused}");
    // A fresh snapshot still works.
    let (_, rows) = ws.subscribe("fresh", "SELECT id FROM app.todo", json!({}));
    assert_eq!(ids(&rows), vec![1]);
}

#[test]
fn a_subscription_sees_only_what_its_caller_may_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    server.root("CREATE SHARED TABLE app.secret (id BIGINT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PRIVATE')");
    server.root("CREATE SHARED TABLE app.news (id BIGINT PRIMARY KEY, v TEXT)");
    let mut bob = WsClient::connect(&server, "bob", "bob-pw-12");
    // Whatever the SQL says, a USER table is the caller's own rows.
    let (_, rows) = bob.subscribe(
        "steal",
        "SELECT * FROM app.todo WHERE id > 0 OR title = 'x'",
        json!({}),
    );
    assert!(rows.is_empty());
    let mut alice = WsClient::connect(&server, "alice", "alice-pw-1");
    alice.subscribe("mine", "SELECT id FROM app.todo", json!({}));
    alice.subscribe("news", "SELECT id, v FROM app.news", json!({}));
    bob.subscribe(
        "news",
        "SELECT id, v FROM app.news WHERE v <> 'hidden'",
        json!({}),
    );
    insert(&server, "alice", "alice-pw-1", 1, "private", 1);
    insert(&server, "bob", "bob-pw-12", 2, "bobs", 1);
    server.root("INSERT INTO app.news (id, v) VALUES (1, 'hello'), (2, 'hidden')");
    // Each sees its own row, then the shared one; bob never sees alice's.
    assert_eq!(change_summary(&alice.expect("change")).1, vec![1]);
    let bobs = bob.expect("change");
    assert_eq!(
        (bobs["subscription_id"].as_str(), change_summary(&bobs).1),
        (Some("steal"), vec![2])
    );
    let news = alice.expect("change");
    assert_eq!(
        (news["subscription_id"].as_str(), change_summary(&news).1),
        (Some("news"), vec![1, 2])
    );
    let news = bob.expect("change");
    assert_eq!(
        change_summary(&news).1,
        vec![1],
        "bob's WHERE applies: {news}"
    );

    for (sql, code) in [
        ("SELECT * FROM app.secret", "UNAUTHORIZED"),
        ("SELECT * FROM system.users", "UNAUTHORIZED"),
        ("SELECT * FROM app.nothing", "NOT_FOUND"),
    ] {
        bob.send(json!({"type": "subscribe", "subscription": {"id": "x", "sql": sql}}));
        let error = bob.expect("error");
        assert_eq!(error["code"], code, "{sql}: {error}");
        assert_eq!(error["subscription_id"], "x");
    }
}

#[test]
fn what_a_live_query_cannot_maintain_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let mut ws = WsClient::connect(&server, "alice", "alice-pw-1");
    for (sql, code) in [
        ("SELECT COUNT(*) FROM app.todo", "UNSUPPORTED"),
        (
            "SELECT prio, COUNT(*) FROM app.todo GROUP BY prio",
            "UNSUPPORTED",
        ),
        ("SELECT * FROM app.todo ORDER BY id", "UNSUPPORTED"),
        ("SELECT * FROM app.todo LIMIT 5", "UNSUPPORTED"),
        ("SELECT DISTINCT title FROM app.todo", "UNSUPPORTED"),
        (
            "SELECT a.id FROM app.todo a JOIN app.todo b ON a.id = b.id",
            "UNSUPPORTED",
        ),
        (
            "SELECT * FROM app.todo WHERE id IN (SELECT id FROM app.todo)",
            "UNSUPPORTED",
        ),
        ("SELECT 1", "UNSUPPORTED"),
        ("INSERT INTO app.todo (id) VALUES (1)", "UNSUPPORTED"),
        ("SELEC * FROM app.todo", "INVALID_SQL"),
        ("SELECT nope FROM app.todo", "INVALID_SQL"),
    ] {
        ws.send(json!({"type": "subscribe", "subscription": {"id": "q", "sql": sql}}));
        let error = ws.expect("error");
        assert_eq!(error["code"], code, "{sql}: {error}");
        assert!(error["message"].as_str().unwrap().len() > 10, "{error}");
    }
    // The connection still works.
    let (ack, _) = ws.subscribe(
        "ok",
        "SELECT id FROM app.todo WHERE title LIKE 'a%'",
        json!({}),
    );
    assert_eq!(ack["type"], "subscription_ack");
}

#[test]
fn bad_frames_get_errors_and_hurt_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let mut other = WsClient::connect(&server, "bob", "bob-pw-12");
    other.subscribe("mine", "SELECT id FROM app.todo", json!({}));

    // Before authenticating: nothing but authenticate works.
    let mut anon = WsClient::open(&server, None).unwrap();
    anon.send(
        json!({"type": "subscribe", "subscription": {"id": "s", "sql": "SELECT * FROM app.todo"}}),
    );
    assert_eq!(anon.expect("error")["code"], "AUTH_REQUIRED");
    // A bad token ends the connection with auth_error.
    anon.send(json!({"type": "authenticate", "method": "jwt", "token": "not-a-token"}));
    anon.expect("auth_error");
    assert!(anon.next().is_none(), "closed after auth_error");
    // Silence past the auth timeout ends it too.
    let mut silent = WsClient::open(&server, None).unwrap();
    let timeout = silent.expect("auth_error");
    assert!(
        timeout["message"].as_str().unwrap().contains("timed out"),
        "{timeout}"
    );
    // A bad Bearer token is refused at the upgrade.
    assert!(WsClient::open(&server, Some("garbage")).is_err());

    let mut ws = WsClient::connect(&server, "alice", "alice-pw-1");
    ws.send_frame(Message::text("{not json")).unwrap();
    assert_eq!(ws.expect("error")["code"], "PROTOCOL");
    ws.send(json!({"type": "teleport"}));
    let unknown = ws.expect("error");
    assert_eq!(unknown["code"], "PROTOCOL");
    assert!(unknown["message"].as_str().unwrap().contains("teleport"));
    ws.send(json!([1, 2, 3]));
    assert_eq!(ws.expect("error")["code"], "PROTOCOL");
    ws.send_frame(Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(ws.expect("error")["code"], "UNSUPPORTED_DATA");
    let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(1_100_000));
    ws.send_frame(Message::text(huge)).unwrap();
    assert_eq!(ws.expect("error")["code"], "MESSAGE_TOO_LARGE");
    ws.send(
        json!({"type": "subscribe", "subscription": {"id": "", "sql": "SELECT * FROM app.todo"}}),
    );
    assert_eq!(ws.expect("error")["code"], "INVALID_SUBSCRIPTION_ID");
    ws.send(json!({"type": "next_batch", "subscription_id": "none"}));
    assert_eq!(ws.expect("error")["code"], "INVALID_SUBSCRIPTION_ID");
    ws.send(json!({"type": "ping"}));
    ws.expect("pong");

    // A flood: over the rate, one error (not one per message) and the rest
    // dropped; once the rate allows, the connection answers again.
    for _ in 0..200 {
        ws.send(json!({"type": "ping"}));
    }
    let mut pongs = 0;
    loop {
        let m = ws.next().expect("answers to the flood");
        match m["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => {
                assert_eq!(m["code"], "RATE_LIMIT_EXCEEDED", "{m}");
                break;
            }
            _ => panic!("{m}"),
        }
    }
    assert!(
        (1..=55).contains(&pongs),
        "{pongs} pongs for 200 pings at 50/s"
    );
    crate::common::poll(
        "the rate to allow a message again",
        std::time::Duration::from_secs(5),
        || {
            ws.send(json!({"type": "ping"}));
            let answer = ws.next_within(std::time::Duration::from_millis(250))?;
            (answer["type"] == "pong").then_some(())
        },
    );

    // Everyone else carries on.
    insert(&server, "bob", "bob-pw-12", 7, "still here", 1);
    assert_eq!(change_summary(&other.expect("change")).1, vec![7]);
    assert!(server.healthy());
}

#[test]
fn dropping_the_table_or_the_user_ends_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    server.root("CREATE SHARED TABLE app.board (id BIGINT PRIMARY KEY, v TEXT)");
    let mut alice = WsClient::connect(&server, "alice", "alice-pw-1");
    alice.subscribe("board", "SELECT * FROM app.board", json!({}));
    let mut bob = WsClient::connect(&server, "bob", "bob-pw-12");
    bob.subscribe("todo", "SELECT * FROM app.todo", json!({}));
    server.root("DROP TABLE app.board");
    let ended = alice.expect("error");
    assert_eq!(
        (ended["code"].as_str(), ended["subscription_id"].as_str()),
        (Some("NOT_FOUND"), Some("board")),
        "{ended}"
    );
    server.root("DROP USER 'bob'");
    let ended = bob.expect("error");
    assert_eq!(ended["code"], "UNAUTHORIZED", "{ended}");
}

#[test]
fn bearer_at_upgrade_and_the_subscription_limits() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let token = crate::ws_client::login(&server, "alice", "alice-pw-1");
    let mut ws = WsClient::open(&server, Some(&token)).unwrap();
    let hello = ws.expect("auth_success");
    assert_eq!(
        (hello["user_id"].as_str(), hello["role"].as_str()),
        (Some("alice"), Some("user"))
    );
    for i in 0..10 {
        ws.subscribe(&format!("s{i}"), "SELECT id FROM app.todo", json!({}));
    }
    // The 11th of one user, on any connection, is refused.
    ws.send(json!({"type": "subscribe", "subscription": {"id": "s10", "sql": "SELECT id FROM app.todo"}}));
    assert_eq!(ws.expect("error")["code"], "SUBSCRIPTION_LIMIT_EXCEEDED");
    let mut second = WsClient::connect(&server, "alice", "alice-pw-1");
    second.send(
        json!({"type": "subscribe", "subscription": {"id": "t", "sql": "SELECT id FROM app.todo"}}),
    );
    assert_eq!(
        second.expect("error")["code"],
        "SUBSCRIPTION_LIMIT_EXCEEDED"
    );
    // Unsubscribing frees a place; a duplicate id is refused.
    ws.send(json!({"type": "unsubscribe", "subscription_id": "s0"}));
    ws.send(json!({"type": "subscribe", "subscription": {"id": "s1", "sql": "SELECT id FROM app.todo"}}));
    assert_eq!(ws.expect("error")["code"], "INVALID_SUBSCRIPTION_ID");
    second.subscribe("t", "SELECT id FROM app.todo", json!({}));
    // Every subscription of the user gets the change.
    insert(&server, "alice", "alice-pw-1", 1, "x", 1);
    let mut subs: Vec<String> = ws
        .changes(9)
        .iter()
        .map(|c| c["subscription_id"].as_str().unwrap().to_string())
        .collect();
    subs.sort();
    assert_eq!(subs, (1..10).map(|i| format!("s{i}")).collect::<Vec<_>>());
    assert_eq!(second.expect("change")["subscription_id"], "t");
}

/// A subscriber that stops reading loses its subscription with a resume
/// point; writers never wait for it, and resuming from that point gives
/// every row exactly once.
#[test]
fn a_stalled_subscriber_overflows_and_resumes_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        "[websocket]\noutbox_capacity = 64\ncompress_min_bytes = 0\nclient_timeout_secs = 120\n",
    )
    .unwrap();
    let server = TestServer::start_with(&dir.path().join("data"), &[], Some(&config));
    setup(&server);
    let mut slow = WsClient::connect(&server, "alice", "alice-pw-1");
    slow.subscribe("big", "SELECT id, note FROM app.todo", json!({}));
    let mut fast = WsClient::connect(&server, "alice", "alice-pw-1");
    fast.subscribe("ids", "SELECT id FROM app.todo", json!({}));

    // 30 MB of changes, far more than the socket buffers and the outbox
    // hold, while the slow client reads nothing; the fast one keeps up.
    let note = "x".repeat(100_000);
    let total = 300;
    let started = crate::common::stopwatch();
    for chunk in (1..=total).collect::<Vec<i64>>().chunks(20) {
        let batch: Vec<String> = chunk
            .iter()
            .map(|id| {
                format!(
                    "INSERT INTO app.todo (id, title, prio, score, at, note) VALUES ({id}, 't', 1, 0, 0, '{note}')"
                )
            })
            .collect();
        server.ok_as("alice", "alice-pw-1", &batch.join(";"));
        let seen: Vec<i64> = (0..chunk.len())
            .flat_map(|_| change_summary(&fast.expect("change")).1)
            .collect();
        assert_eq!(seen, chunk.to_vec(), "the fast subscriber keeps up");
    }
    let writing = started.elapsed();

    let mut got = Vec::new();
    let ended = loop {
        let m = slow.next().expect("the slow subscriber's messages");
        match m["type"].as_str() {
            Some("change") => got.extend(change_summary(&m).1),
            Some("error") => break m,
            _ => panic!("{m}"),
        }
    };
    assert_eq!(ended["reason"], "overflow", "{ended}");
    assert_eq!(ended["code"], "SUBSCRIPTION_FAILED", "{ended}");
    assert!(
        got.len() < total as usize,
        "it did overflow: {} of {total}",
        got.len()
    );
    let resume_from = ended["last_seq_id"].as_u64().expect("a resume point");
    let mut again = WsClient::connect(&server, "alice", "alice-pw-1");
    again.subscribe(
        "big",
        "SELECT id FROM app.todo",
        json!({"from_seq_id": resume_from}),
    );
    while got.len() < total as usize {
        got.extend(change_summary(&again.expect("change")).1);
    }
    assert_eq!(
        got,
        (1..=total).collect::<Vec<_>>(),
        "every row once, in order"
    );
    eprintln!("{total} writes of 100 kB with a stalled subscriber: {writing:?}");
}

#[test]
fn logging_out_ends_the_connection_at_the_next_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[websocket]\nheartbeat_secs = 1\n").unwrap();
    let server = TestServer::start_with(&dir.path().join("data"), &[], Some(&config));
    setup(&server);
    let token = crate::ws_client::login(&server, "alice", "alice-pw-1");
    let mut ws = WsClient::open(&server, Some(&token)).unwrap();
    ws.expect("auth_success");
    ws.subscribe("mine", "SELECT id FROM app.todo", json!({}));
    let logout = server
        .client()
        .post(format!("{}/v1/api/auth/logout", server.base_url))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert!(logout.status().is_success());
    let ended = ws.expect("error");
    assert_eq!(ended["code"], "AUTH_REQUIRED", "{ended}");
    assert!(ws.next().is_none(), "the connection is closed");
}

#[test]
fn subscribe_to_over_http_system_live_and_kill_live_query() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    // SUBSCRIBE TO checks the query as the caller and says how to open it.
    let body = server.ok_as(
        "alice",
        "alice-pw-1",
        "SUBSCRIBE TO app.todo WHERE prio > 2 OPTIONS (last_rows = 5, batch_size = 2)",
    );
    let row = &crate::common::rows(&body)[0];
    let names: Vec<&str> = body["results"][0]["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["status", "ws_url", "subscription", "message"]);
    assert_eq!(row[0], "ready");
    let ws_url = row[1].as_str().unwrap();
    assert!(
        ws_url.starts_with("ws://127.0.0.1:") && ws_url.ends_with("/v1/ws"),
        "{ws_url}"
    );
    let subscription: Value = serde_json::from_str(row[2].as_str().unwrap()).unwrap();
    assert_eq!(
        subscription["options"],
        json!({"last_rows": 5, "batch_size": 2})
    );
    let (status, bad) = server.sql_as(
        "alice",
        "alice-pw-1",
        json!({"sql": "SUBSCRIBE TO app.todo WHERE nope = 1"}),
    );
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("INVALID_SQL")),
        "{bad}"
    );
    let (_, bad) = server.sql_as(
        "bob",
        "bob-pw-12",
        json!({"sql": "SUBSCRIBE TO app.nothing"}),
    );
    assert_eq!(bad["error"]["code"], "TABLE_NOT_FOUND", "{bad}");

    // What it returned is what a client sends.
    let mut ws = WsClient::connect(&server, "alice", "alice-pw-1");
    ws.send(json!({"type": "subscribe", "subscription": subscription}));
    assert_eq!(
        ws.expect("subscription_ack")["subscription_id"],
        subscription["id"]
    );
    ws.expect("initial_data_batch");
    let mut bob = WsClient::connect(&server, "bob", "bob-pw-12");
    bob.subscribe("b", "SELECT id FROM app.todo", json!({}));
    insert(&server, "alice", "alice-pw-1", 1, "x", 9);
    ws.expect("change");

    // system.live: one's own below dba, everyone's for dba and above.
    let live = server.ok_as(
        "alice",
        "alice-pw-1",
        "SELECT live_id, user_id, sql, changes_delivered, last_seq FROM system.live",
    );
    let mine = crate::common::rows(&live);
    assert_eq!(mine.len(), 1, "{live}");
    assert_eq!(mine[0][1], "alice");
    assert!(mine[0][2].as_str().unwrap().contains("prio > 2"));
    assert_eq!(mine[0][3], "1", "one change delivered");
    assert_ne!(mine[0][4], "0");
    let all = server.root("SELECT live_id, user_id FROM system.live ORDER BY user_id");
    let all = crate::common::rows(&all);
    assert_eq!(all.len(), 2);
    let bobs_id = all[1][0].as_str().unwrap().to_string();

    // Only its owner (or service and above) may kill one.
    let (status, refused) = server.sql_as(
        "alice",
        "alice-pw-1",
        json!({"sql": format!("KILL LIVE QUERY '{bobs_id}'")}),
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("PERMISSION_DENIED")),
        "{refused}"
    );
    server.root(&format!("KILL LIVE QUERY '{bobs_id}'"));
    let killed = bob.expect("error");
    assert_eq!(
        (
            killed["reason"].as_str(),
            killed["subscription_id"].as_str()
        ),
        (Some("killed"), Some("b")),
        "{killed}"
    );
    assert!(killed["last_seq_id"].as_u64().is_some(), "{killed}");
    let (_, again) = server.sql_as(
        "root",
        "",
        json!({"sql": format!("KILL LIVE QUERY '{bobs_id}'")}),
    );
    assert_eq!(again["error"]["code"], "SQL_EXECUTION_ERROR", "{again}");
    assert_eq!(
        crate::common::rows(&server.root("SELECT live_id FROM system.live")).len(),
        1
    );
}

#[test]
fn a_service_subscribes_on_behalf_of_a_user_with_execute_as() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    create_user(&server, "backend", "backend-pw-1", "service");
    insert(&server, "alice", "alice-pw-1", 1, "alices", 1);
    insert(&server, "bob", "bob-pw-12", 2, "bobs", 1);
    let mut ws = WsClient::connect(&server, "backend", "backend-pw-1");
    let (_, rows) = ws.subscribe(
        "as-alice",
        "EXECUTE AS USER 'alice' (SELECT id, title FROM app.todo)",
        json!({}),
    );
    assert_eq!(
        ids(&rows),
        vec![1],
        "alice's rows, not the service's, not bob's"
    );
    insert(&server, "bob", "bob-pw-12", 3, "bobs", 1);
    insert(&server, "alice", "alice-pw-1", 4, "alices", 1);
    assert_eq!(change_summary(&ws.expect("change")).1, vec![4]);
    // A user cannot act as another.
    let mut alice = WsClient::connect(&server, "alice", "alice-pw-1");
    alice.send(json!({"type": "subscribe", "subscription": {"id": "x",
        "sql": "EXECUTE AS USER 'bob' (SELECT * FROM app.todo)"}}));
    assert_eq!(alice.expect("error")["code"], "UNAUTHORIZED");
    // The user it reads as is dropped: the subscription ends, the
    // service's connection stays.
    server.root("DROP USER 'alice'");
    let ended = ws.expect("error");
    assert_eq!(
        (ended["code"].as_str(), ended["subscription_id"].as_str()),
        (Some("UNAUTHORIZED"), Some("as-alice")),
        "{ended}"
    );
    ws.send(json!({"type": "ping"}));
    ws.expect("pong");
}

/// What a subscription may read was decided with the role of its
/// connection's user; a changed role ends the connection at the next
/// heartbeat, and the client reconnects with what the new role allows.
#[test]
fn a_changed_role_ends_the_connection_at_the_next_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "[websocket]\nheartbeat_secs = 1\n").unwrap();
    let server = TestServer::start_with(&dir.path().join("data"), &[], Some(&config));
    setup(&server);
    create_user(&server, "ops", "ops-pw-123", "dba");
    server.root("CREATE SHARED TABLE app.secrets (id BIGINT PRIMARY KEY, v TEXT)");
    let mut ws = WsClient::connect(&server, "ops", "ops-pw-123");
    ws.subscribe("s", "SELECT * FROM app.secrets", json!({}));
    server.root("ALTER USER 'ops' SET ROLE user");
    let ended = ws.expect("error");
    assert_eq!(ended["code"], "AUTH_REQUIRED", "{ended}");
    assert!(ws.next().is_none(), "the connection is closed");
}
