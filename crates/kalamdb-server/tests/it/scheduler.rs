//! The scheduler and shutdown in the real binary: a short real interval
//! flushes on its own; SIGTERM during a flush stops it at a user boundary
//! and exits 0 with nothing lost; `flush_on_shutdown` empties the hot tier.

use crate::common::{create_user, poll, rows, TestServer};
use crate::flush::{job_id, wait_for_job};
use serde_json::Value;
use std::time::Duration;

fn count(server: &TestServer, user: &str, table: &str) -> i64 {
    let body = server.ok_as(user, "pw-123456", &format!("SELECT COUNT(*) FROM {table}"));
    let cell = &rows(&body)[0][0];
    cell.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| cell.as_i64())
        .unwrap()
}

fn stats(server: &TestServer, table: &str) -> Vec<Value> {
    rows(&server.root(&format!("SHOW STATS FOR TABLE {table}")))
        .pop()
        .unwrap()
}

#[test]
fn a_short_real_interval_flushes_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(
        dir.path(),
        &[("KALAMDB_FLUSH_CHECK_INTERVAL_MS", "50")],
        None,
    );
    server.root("CREATE NAMESPACE sch");
    server.root("CREATE USER TABLE sch.t (id INT PRIMARY KEY, v TEXT) FLUSH INTERVAL 1s");
    create_user(&server, "ivy", "pw-123456", "user");
    server.ok_as(
        "ivy",
        "pw-123456",
        "INSERT INTO sch.t VALUES (1, 'a'), (2, 'b')",
    );
    let job = poll("an interval flush", Duration::from_secs(30), || {
        let body = server.root(
            "SELECT job_id FROM system.jobs WHERE trigger = 'interval' AND status = 'completed'",
        );
        rows(&body)
            .pop()
            .map(|row| row[0].as_str().unwrap().to_string())
    });
    let figures = stats(&server, "sch.t");
    assert_eq!(
        figures[4],
        Value::from("0"),
        "hot rows after the flush: {figures:?}"
    );
    assert_eq!(figures[6], Value::from("2"), "cold rows: {figures:?}");
    assert_eq!(figures[10], Value::from(job));
    assert_eq!(count(&server, "ivy", "sch.t"), 2);
}

/// Rows for many users, so that a flush has many scope boundaries.
fn many_users(server: &TestServer, users: usize) {
    server.root("CREATE NAMESPACE sd");
    server.root("CREATE USER TABLE sd.t (id INT PRIMARY KEY, v TEXT)");
    for u in 0..users {
        let name = format!("user{u}");
        create_user(server, &name, "pw-123456", "user");
        let values: Vec<String> = (0..50)
            .map(|i| format!("({i}, 'row {i} of {name}')"))
            .collect();
        server.ok_as(
            &name,
            "pw-123456",
            &format!("INSERT INTO sd.t VALUES {}", values.join(",")),
        );
    }
}

#[test]
fn sigterm_during_a_flush_stops_it_at_a_user_boundary_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("KALAMDB_SHUTDOWN_TIMEOUT_SECS", "0")];
    let mut server = TestServer::start_with(dir.path(), &env, None);
    let users = 40;
    many_users(&server, users);
    let id = job_id(&server.root("FLUSH TABLE sd.t"));
    assert_eq!(
        server.terminate(),
        Some(0),
        "clean exit: {:?}",
        server.log()
    );
    let log = server.log().join("\n");
    assert!(log.contains("shutdown complete"), "{log}");

    let server = TestServer::start(dir.path());
    // The job ended (completed in time, or cancelled at a boundary); it is
    // not re-run as if interrupted by a crash.
    let (status, row) = wait_for_job(&server, &id);
    assert!(
        matches!(status.as_str(), "completed" | "cancelled"),
        "{row}"
    );
    for u in [0, users / 2, users - 1] {
        assert_eq!(count(&server, &format!("user{u}"), "sd.t"), 50);
    }
    // Whatever stayed hot is flushed by the next flush.
    let next = job_id(&server.root("FLUSH TABLE sd.t"));
    assert_eq!(wait_for_job(&server, &next).0, "completed");
    assert_eq!(stats(&server, "sd.t")[4], Value::from("0"));
    assert_eq!(
        stats(&server, "sd.t")[6],
        Value::from((users * 50).to_string())
    );
}

#[test]
fn flush_on_shutdown_moves_every_buffered_row() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("KALAMDB_FLUSH_ON_SHUTDOWN", "true")];
    let mut server = TestServer::start_with(dir.path(), &env, None);
    many_users(&server, 3);
    assert_eq!(server.terminate(), Some(0));
    let log = server.log().join("\n");
    assert!(
        log.contains("flushing buffered rows before stopping"),
        "{log}"
    );

    let server = TestServer::start(dir.path());
    let body = server.root("SELECT trigger, status FROM system.jobs");
    assert_eq!(
        rows(&body),
        vec![vec![Value::from("shutdown"), Value::from("completed")]]
    );
    let figures = stats(&server, "sd.t");
    assert_eq!(figures[4], Value::from("0"), "{figures:?}");
    assert_eq!(figures[6], Value::from("150"), "{figures:?}");
    assert_eq!(count(&server, "user1", "sd.t"), 50);
}
