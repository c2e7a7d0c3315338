//! A table on an `s3` storage, against a real S3-compatible server: files
//! land in the bucket under the storage's prefix and templates, queries
//! read them back, and a flush while the server is down fails cleanly with
//! every row kept hot, then succeeds once the server is back.

use crate::common::{create_user, poll, rows, TestServer};
use crate::flush::{job_id, wait_for_job};
use crate::moto::Moto;
use crate::proxy::FaultyProxy;
use serde_json::Value;

const BUCKET: &str = "kalam-test";

fn create_storage(server: &TestServer, moto: &Moto) {
    create_storage_at(server, &moto.endpoint());
}

fn create_storage_at(server: &TestServer, endpoint: &str) {
    server.root(&format!(
        "CREATE STORAGE s3_test TYPE 's3' NAME 'Test bucket' BUCKET '{BUCKET}' \
         REGION 'us-east-1' ENDPOINT '{endpoint}' PATH 'tenant-a' \
         CREDENTIALS '{{\"access_key_id\":\"test\",\"secret_access_key\":\"test\"}}'"
    ));
}

fn notes_of(server: &TestServer, user: &str) -> Vec<Vec<Value>> {
    rows(&server.ok_as(
        user,
        "pw-123456",
        "SELECT id, body FROM s3.notes ORDER BY id",
    ))
}

#[test]
fn user_table_on_s3_flushes_and_reads_back() {
    let moto = Moto::start(0);
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_storage(&server, &moto);
    server.root("CREATE NAMESPACE s3");
    server.root("CREATE USER TABLE s3.notes (id INT PRIMARY KEY, body TEXT) STORAGE s3_test");
    server.root("CREATE SHARED TABLE s3.config (k TEXT PRIMARY KEY, v TEXT) STORAGE s3_test");
    for user in ["ann", "bob"] {
        create_user(&server, user, "pw-123456", "user");
        server.ok_as(
            user,
            "pw-123456",
            &format!("INSERT INTO s3.notes VALUES (1, '{user} one'), (2, '{user} two')"),
        );
    }
    server.root("INSERT INTO s3.config VALUES ('mode', 'on')");
    let before_ann = notes_of(&server, "ann");

    for table in ["s3.notes", "s3.config"] {
        let id = job_id(&server.root(&format!("FLUSH TABLE {table}")));
        let (status, row) = wait_for_job(&server, &id);
        assert_eq!(status, "completed", "{row}");
    }
    let mut keys = moto.keys(BUCKET);
    keys.sort();
    let parquet: Vec<&String> = keys.iter().filter(|k| k.ends_with(".parquet")).collect();
    assert_eq!(parquet.len(), 3, "{keys:?}");
    for (key, prefix) in parquet.iter().zip([
        "tenant-a/s3/config/batch-",
        "tenant-a/s3/notes/ann/batch-",
        "tenant-a/s3/notes/bob/batch-",
    ]) {
        assert!(key.starts_with(prefix), "{key} vs {prefix}");
    }
    assert!(keys.contains(&"tenant-a/s3/notes/ann/manifest.json".to_string()));
    // Nothing is left in the local storage directory.
    assert!(!dir.path().join("storage/s3").exists());

    assert_eq!(notes_of(&server, "ann"), before_ann);
    assert_eq!(notes_of(&server, "bob").len(), 2);
    // Merge-on-read across tiers: change rows that are only in the bucket.
    server.ok_as(
        "ann",
        "pw-123456",
        "UPDATE s3.notes SET body = 'changed' WHERE id = 1",
    );
    server.ok_as("ann", "pw-123456", "DELETE FROM s3.notes WHERE id = 2");
    assert_eq!(
        notes_of(&server, "ann"),
        vec![vec![Value::from(1), Value::from("changed")]]
    );
    let body = server.root("SELECT v FROM s3.config WHERE k = 'mode'");
    assert_eq!(rows(&body), vec![vec![Value::from("on")]]);

    // Storages in use cannot be dropped; the bucket's files go with the table.
    let (status, body) = server.sql_as(
        "root",
        "",
        serde_json::json!({ "sql": "DROP STORAGE s3_test" }),
    );
    assert_eq!(status, 400, "{body}");
    server.root("DROP TABLE s3.notes");
    assert!(
        moto.keys(BUCKET).iter().all(|k| !k.contains("/notes/")),
        "{:?}",
        moto.keys(BUCKET)
    );
}

/// Starts a server whose flush jobs retry `retries` times, `backoff_ms`
/// apart (doubling), with an s3 table `s3.notes` (storage at `endpoint`)
/// holding two rows for each of `users`.
fn server_with_notes(
    dir: &std::path::Path,
    endpoint: &str,
    users: &[String],
    retries: &str,
    backoff_ms: &str,
) -> TestServer {
    let server = TestServer::start_with(
        dir,
        &[
            ("KALAMDB_JOBS_MAX_RETRIES", retries),
            ("KALAMDB_JOBS_RETRY_BACKOFF_MS", backoff_ms),
        ],
        None,
    );
    create_storage_at(&server, endpoint);
    server.root("CREATE NAMESPACE s3");
    server.root("CREATE USER TABLE s3.notes (id INT PRIMARY KEY, body TEXT) STORAGE s3_test");
    for user in users {
        create_user(&server, user, "pw-123456", "user");
        server.ok_as(
            user,
            "pw-123456",
            &format!("INSERT INTO s3.notes VALUES (1, '{user} one'), (2, '{user} two')"),
        );
    }
    server
}

fn ann_and_bob() -> Vec<String> {
    vec!["ann".to_string(), "bob".to_string()]
}

#[test]
fn flush_while_s3_is_down_fails_cleanly_and_a_later_flush_succeeds() {
    let mut moto = Moto::start(0);
    let port = moto.port;
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_notes(dir.path(), &moto.endpoint(), &ann_and_bob(), "1", "50");
    let before = notes_of(&server, "ann");

    moto.stop();
    let id = job_id(&server.root("FLUSH TABLE s3.notes"));
    let (status, row) = wait_for_job(&server, &id);
    assert_eq!(status, "failed", "{row}");
    let error = row[3].as_str().unwrap_or_default();
    assert!(error.contains("ann") && error.contains("bob"), "{error}");
    // Every row is still there (hot), and the server is fine.
    assert_eq!(notes_of(&server, "ann"), before);
    assert!(server.healthy());
    server.wait_for_log("flush attempt failed; retrying");

    let moto = Moto::start(port);
    moto.create_bucket(BUCKET);
    let id = job_id(&server.root("FLUSH TABLE s3.notes"));
    let (status, row) = wait_for_job(&server, &id);
    assert_eq!(status, "completed", "{row}");
    assert!(
        row[2].as_str().unwrap().contains("\"rows_flushed\":4"),
        "{row}"
    );
    assert_eq!(notes_of(&server, "ann"), before);
    let parquet = moto
        .keys(BUCKET)
        .into_iter()
        .filter(|k| k.ends_with(".parquet"))
        .count();
    assert_eq!(parquet, 2);
}

#[test]
fn a_flush_job_retries_until_the_storage_is_back() {
    let mut moto = Moto::start(0);
    let port = moto.port;
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    // Retries wait 1 s, 2 s, 4 s, ...: long enough to bring moto back.
    let server = server_with_notes(dir.path(), &moto.endpoint(), &ann_and_bob(), "6", "1000");
    let before = notes_of(&server, "bob");
    moto.stop();
    let id = job_id(&server.root("FLUSH TABLE s3.notes"));
    // Wait until the first attempt has failed and the job says it retries.
    let row = wait_for_message(&server, &id, |m| m.contains("retrying"));
    assert_eq!(row[0], "running", "{row:?}");
    let moto = Moto::start(port);
    moto.create_bucket(BUCKET);
    let (status, row) = wait_for_job(&server, &id);
    assert_eq!(status, "completed", "{row}");
    assert!(
        row[2].as_str().unwrap().contains("\"rows_flushed\":4"),
        "{row}"
    );
    assert_eq!(notes_of(&server, "bob"), before);
    assert_eq!(
        moto.keys(BUCKET)
            .iter()
            .filter(|k| k.ends_with(".parquet"))
            .count(),
        2
    );
}

/// Polls a job's message until `pred` holds (or fails after a minute).
fn wait_for_message(server: &TestServer, id: &str, pred: impl Fn(&str) -> bool) -> Vec<Value> {
    poll(
        &format!("job {id}'s message"),
        std::time::Duration::from_secs(60),
        || {
            let body = server.root(&format!(
                "SELECT status, message FROM system.jobs WHERE job_id = '{id}'"
            ));
            let row = rows(&body).pop().unwrap_or_default();
            pred(row.get(1).and_then(Value::as_str).unwrap_or_default()).then_some(row)
        },
    )
}

#[test]
fn storage_cut_in_the_middle_of_a_flush_keeps_every_row_and_the_retry_finishes() {
    let moto = Moto::start(0);
    moto.create_bucket(BUCKET);
    let proxy = FaultyProxy::start(moto.port);
    let dir = tempfile::tempdir().unwrap();
    let users: Vec<String> = (0..24).map(|u| format!("user{u}")).collect();
    let server = server_with_notes(dir.path(), &proxy.endpoint(), &users, "8", "500");
    // Slow enough that the flush of 24 users is still going when cut.
    proxy.set_delay(std::time::Duration::from_millis(25));
    let id = job_id(&server.root("FLUSH TABLE s3.notes"));
    poll(
        "two files in the bucket",
        std::time::Duration::from_secs(60),
        || {
            let files = moto.keys(BUCKET);
            (files.iter().filter(|k| k.ends_with(".parquet")).count() >= 2).then_some(())
        },
    );
    proxy.set_down(true);
    let row = wait_for_message(&server, &id, |m| m.contains("retrying"));
    assert_eq!(row[0], "running", "{row:?}");
    // Meanwhile every row is readable (committed files, hot rows) except
    // where a committed file sits behind the cut connection.
    proxy.set_down(false);
    proxy.set_delay(std::time::Duration::ZERO);
    let (status, row) = wait_for_job(&server, &id);
    assert_eq!(status, "completed", "{row}");
    assert!(
        row[2].as_str().unwrap().contains("\"rows_flushed\":48"),
        "{row}"
    );
    for user in &users {
        assert_eq!(notes_of(&server, user).len(), 2, "{user}");
    }
    let stats = rows(&server.root("SHOW STATS FOR TABLE s3.notes"))
        .pop()
        .unwrap();
    assert_eq!(stats[4], Value::from("0"), "nothing left hot: {stats:?}");
    assert_eq!(
        stats[7],
        Value::from("24"),
        "one committed file per user: {stats:?}"
    );
    let in_bucket = moto
        .keys(BUCKET)
        .iter()
        .filter(|k| k.ends_with(".parquet"))
        .count();
    assert!(in_bucket >= 24, "{in_bucket}");
}

#[test]
fn compaction_on_s3_replaces_a_users_files_in_the_bucket() {
    let moto = Moto::start(0);
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_storage(&server, &moto);
    server.root("CREATE NAMESPACE s3");
    server.root(
        "CREATE USER TABLE s3.notes (id INT PRIMARY KEY, body TEXT NOT NULL) STORAGE s3_test",
    );
    for user in ["ann", "bob"] {
        create_user(&server, user, "pw-123456", "user");
    }
    for round in 0..3 {
        for user in ["ann", "bob"] {
            server.ok_as(
                user,
                "pw-123456",
                &format!(
                    "INSERT INTO s3.notes VALUES ({}, '{user} {round}'); \
                     UPDATE s3.notes SET body = body || '!' WHERE id = 0; \
                     DELETE FROM s3.notes WHERE id = 1",
                    10 + round
                ),
            );
            if round == 0 {
                server.ok_as(
                    user,
                    "pw-123456",
                    "INSERT INTO s3.notes VALUES (0, 'a'), (1, 'b')",
                );
            }
        }
        let id = job_id(&server.root("FLUSH TABLE s3.notes"));
        assert_eq!(wait_for_job(&server, &id).0, "completed");
    }
    let before: Vec<_> = ["ann", "bob"]
        .iter()
        .map(|u| notes_of(&server, u))
        .collect();
    let parquet = || {
        let mut keys: Vec<String> = moto
            .keys(BUCKET)
            .into_iter()
            .filter(|k| k.ends_with(".parquet"))
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(parquet().len(), 6);
    let id = job_id(&server.root("STORAGE COMPACT TABLE s3.notes"));
    assert!(id.starts_with("CO-"), "{id}");
    let (status, row) = wait_for_job(&server, &id);
    assert_eq!(status, "completed", "{row}");
    let keys = parquet();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for (key, user) in keys.iter().zip(["ann", "bob"]) {
        assert!(
            key.starts_with(&format!("tenant-a/s3/notes/{user}/compacted-")),
            "{key}"
        );
    }
    let after: Vec<_> = ["ann", "bob"]
        .iter()
        .map(|u| notes_of(&server, u))
        .collect();
    assert_eq!(after, before);
    assert_eq!(before[0].len(), 4, "{:?}", before[0]);
}
