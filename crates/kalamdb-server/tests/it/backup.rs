//! `BACKUP DATABASE` and `RESTORE DATABASE` (and `--restore-from`): a
//! backup restored into an empty data directory reads exactly as its source
//! did when it was taken, in both tiers, for every user, without the source
//! or its files.

use crate::common::{create_user, flush, rows, TestServer};
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const NOTES: &str = "CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL, \
     n INT NOT NULL, small SMALLINT NOT NULL, at TIMESTAMP NOT NULL, day DATE NOT NULL, \
     t TIME NOT NULL, price DECIMAL(10,2) NOT NULL, ok BOOLEAN NOT NULL, ratio DOUBLE NOT NULL, \
     raw BYTES NOT NULL, meta JSON)";

fn note(id: i64, body: &str) -> String {
    format!(
        "({id}, '{body}', {n}, {small}, '2024-05-0{d}T10:00:00Z', '2024-05-0{d}', '13:45:0{d}', \
         {id}.25, {ok}, {id}.5, '\\x0{d}ff', '{{\"id\": {id}}}')",
        n = id * 7,
        small = id % 100,
        d = id % 9 + 1,
        ok = id % 2 == 0,
    )
}

/// Everything a client can read: each user's rows with `_seq`, the shared
/// table, the catalog and the accounts.
fn state(server: &TestServer) -> Vec<Value> {
    let mut state = Vec::new();
    for (user, password) in [("u1", "u1-pw"), ("u2", "u2-pw")] {
        state.push(
            server.ok_as(user, password, "SELECT *, _seq FROM app.notes ORDER BY id")["results"][0]
                ["rows"]
                .clone(),
        );
    }
    for sql in [
        "SELECT * FROM app.tags ORDER BY id",
        "SELECT namespace_id, table_name, table_type FROM system.tables \
         WHERE namespace_id NOT IN ('system', 'information_schema') ORDER BY table_name",
        "SELECT user_id, role FROM system.users ORDER BY user_id",
    ] {
        state.push(server.root(sql)["results"][0]["rows"].clone());
    }
    state
}

fn message(body: &Value) -> String {
    body["results"][0]["message"].as_str().unwrap().to_string()
}

/// Data in both tiers: flushed rows, then a flushed row updated and one
/// deleted, and new hot rows.
fn fill(server: &TestServer) {
    server.root("CREATE NAMESPACE app");
    server.root(NOTES);
    server.root("CREATE SHARED TABLE app.tags (id INT PRIMARY KEY, name TEXT NOT NULL)");
    create_user(server, "u1", "u1-pw", "user");
    create_user(server, "u2", "u2-pw", "user");
    let rows = |ids: std::ops::Range<i64>, who: &str| {
        ids.map(|id| note(id, &format!("{who} {id}")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    server.ok_as(
        "u1",
        "u1-pw",
        &format!("INSERT INTO app.notes VALUES {}", rows(1..40, "u1")),
    );
    server.ok_as(
        "u2",
        "u2-pw",
        &format!("INSERT INTO app.notes VALUES {}", rows(1..15, "u2")),
    );
    server.root("INSERT INTO app.tags VALUES (1, 'red'), (2, 'green')");
    flush(server, "app.notes");
    flush(server, "app.tags");
    server.ok_as(
        "u1",
        "u1-pw",
        "UPDATE app.notes SET body = 'changed after flush' WHERE id = 3",
    );
    server.ok_as("u1", "u1-pw", "DELETE FROM app.notes WHERE id = 4");
    server.ok_as("u2", "u2-pw", "DELETE FROM app.notes WHERE id < 5");
    server.ok_as(
        "u1",
        "u1-pw",
        &format!("INSERT INTO app.notes VALUES {}", rows(40..45, "u1 hot")),
    );
    server.root("UPDATE app.tags SET name = 'blue' WHERE id = 2");
}

#[test]
fn a_restored_backup_reads_as_its_source_did_without_the_source() {
    let scratch = tempfile::tempdir().unwrap();
    let source_dir = scratch.path().join("source");
    let backup_dir = scratch.path().join("backup-1");
    let mut source = TestServer::start(&source_dir);
    fill(&source);
    let before = state(&source);
    assert_eq!(before[0].as_array().unwrap().len(), 43, "{:?}", before[0]);

    let body = source.root(&format!("BACKUP DATABASE TO '{}'", backup_dir.display()));
    let text = message(&body);
    assert!(text.starts_with("Database backed up to "), "{text}");
    let job = text.split("Job ID: ").nth(1).unwrap().to_string();
    assert!(job.starts_with("BK-"), "{text}");
    let jobs = source.root(&format!(
        "SELECT job_type, status, result FROM system.jobs WHERE job_id = '{job}'"
    ));
    let job_row = &rows(&jobs)[0];
    assert_eq!(job_row[0], "backup");
    assert_eq!(job_row[1], "completed");
    let result: Value = serde_json::from_str(job_row[2].as_str().unwrap()).unwrap();
    // Two users' files of one table and the shared table's.
    assert_eq!(result["files"], 3, "{result}");
    assert!(backup_dir.join("backup.json").is_file());

    // Changes after the backup are not in it; the source then disappears,
    // files and all.
    source.ok_as(
        "u1",
        "u1-pw",
        &format!("INSERT INTO app.notes VALUES {}", note(99, "late")),
    );
    source.root("DROP TABLE app.tags");
    source.kill9();
    std::fs::remove_dir_all(&source_dir).unwrap();

    // Into an empty data directory, at start.
    let restored_dir = scratch.path().join("restored");
    let restored = TestServer::start_args(
        &restored_dir,
        &[],
        None,
        "127.0.0.1:0",
        &[OsStr::new("--restore-from"), backup_dir.as_os_str()],
    );
    assert_eq!(state(&restored), before);
    // It goes on from there: new versions come after the restored ones,
    // and a flush of the restored tables works.
    let body = restored.ok_as(
        "u1",
        "u1-pw",
        &format!("INSERT INTO app.notes VALUES {}", note(50, "after restore")),
    );
    assert_eq!(body["results"][0]["row_count"], 1, "{body}");
    let last = |rows: &Value| {
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let seq = r.as_array().unwrap().last().unwrap();
                seq.as_i64()
                    .unwrap_or_else(|| seq.as_str().unwrap().parse().unwrap())
            })
            .max()
            .unwrap()
    };
    let after = state(&restored);
    assert!(last(&after[0]) > last(&before[0]));
    flush(&restored, "app.notes");
    assert_eq!(
        state(&restored)[0].as_array().unwrap().len(),
        before[0].as_array().unwrap().len() + 1
    );
    drop(restored);

    // Over a server that has data of its own, with the statement: staged,
    // applied at the next start, the replaced data kept aside.
    let other_dir = scratch.path().join("other");
    let mut other = TestServer::start(&other_dir);
    other.root("CREATE NAMESPACE junk");
    other.root("CREATE SHARED TABLE junk.t (id INT PRIMARY KEY)");
    other.root("INSERT INTO junk.t VALUES (1)");
    let body = other.root(&format!("RESTORE DATABASE FROM '{}'", backup_dir.display()));
    assert!(message(&body).contains("is staged"), "{body}");
    // Nothing changes until the restart.
    assert_eq!(rows(&other.root("SELECT COUNT(*) FROM junk.t"))[0][0], "1");
    other.terminate();
    let other = TestServer::start(&other_dir);
    assert_eq!(state(&other), before);
    let (status, _) = other.sql_as("root", "", json!({ "sql": "SELECT * FROM junk.t" }));
    assert_eq!(status, 400, "the restored catalog has no junk.t");
    let kept: Vec<PathBuf> = std::fs::read_dir(&other_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("rocksdb.before-restore-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the replaced hot tier is kept");
    assert!(!other_dir.join("restore.json").exists());
}

fn error_of(server: &TestServer, user: &str, password: &str, sql: &str) -> (u16, String) {
    let (status, body) = server.sql_as(user, password, json!({ "sql": sql }));
    let text = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, text)
}

#[test]
fn backup_and_restore_refuse_what_they_must() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "u1", "u1-pw", "user");
    create_user(&server, "svc", "svc-pw", "service");
    for (user, password) in [("u1", "u1-pw"), ("svc", "svc-pw")] {
        for sql in ["BACKUP DATABASE TO 'mine'", "RESTORE DATABASE FROM 'mine'"] {
            let (status, text) = error_of(&server, user, password, sql);
            assert_eq!(status, 403, "{user}: {sql}: {text}");
            assert!(text.contains("dba"), "{text}");
        }
    }
    assert!(!dir.path().join("backups/mine").exists());

    // A relative path is under the data directory's `backups`.
    server.root("BACKUP DATABASE TO 'first'");
    assert!(dir.path().join("backups/first/backup.json").is_file());
    assert!(dir.path().join("backups/first/rocksdb").is_dir());
    // Never over something that exists.
    let (status, text) = error_of(&server, "root", "", "BACKUP DATABASE TO 'first'");
    assert_eq!(status, 400);
    assert!(text.contains("not empty"), "{text}");
    let failed = server.root(
        "SELECT status, error FROM system.jobs WHERE job_type = 'backup' AND status = 'failed'",
    );
    assert_eq!(rows(&failed).len(), 1, "{failed}");

    // Only a backup can be restored.
    let not_backup = dir.path().join("not-a-backup");
    std::fs::create_dir_all(&not_backup).unwrap();
    std::fs::write(not_backup.join("backup.json"), "{\"hello\": 1}").unwrap();
    for path in [
        Path::new("/nonexistent/backup"),
        dir.path(),
        not_backup.as_path(),
    ] {
        let sql = format!("RESTORE DATABASE FROM '{}'", path.display());
        let (status, text) = error_of(&server, "root", "", &sql);
        assert_eq!(status, 400, "{sql}: {text}");
        assert!(
            text.contains("not a KalamDB backup") || text.contains("cannot open the backup"),
            "{text}"
        );
    }
    assert!(!dir.path().join("restore.json").exists());
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_restore_stopped_by_a_missing_cold_file_is_finished_by_the_next_start() {
    let scratch = tempfile::tempdir().unwrap();
    let backup_dir = scratch.path().join("backup");
    {
        let source = TestServer::start(&scratch.path().join("source"));
        source.root("CREATE NAMESPACE app");
        source.root("CREATE SHARED TABLE app.t (id INT PRIMARY KEY, v TEXT NOT NULL)");
        source.root("INSERT INTO app.t VALUES (1, 'one'), (2, 'two')");
        flush(&source, "app.t");
        source.root("INSERT INTO app.t VALUES (3, 'three')");
        source.root(&format!("BACKUP DATABASE TO '{}'", backup_dir.display()));
    }
    let parquet: Vec<PathBuf> = files_under(&backup_dir.join("cold"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(parquet.len(), 1, "{parquet:?}");
    let aside = scratch.path().join("aside.parquet");
    std::fs::rename(&parquet[0], &aside).unwrap();

    let target = scratch.path().join("target");
    // The flag stages the restore; the second start, without it, goes on
    // with the staged one.
    for attempt in 0..2 {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_kalamdb-server"));
        command
            .arg("--data-dir")
            .arg(&target)
            .args(["--http-addr", "127.0.0.1:0"])
            .env_remove("KALAMDB_DATA_DIR");
        if attempt == 0 {
            command.arg("--restore-from").arg(&backup_dir);
        }
        let output = command.output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("cannot finish the restore"), "{stderr}");
    }
    // The second attempt did not replace the restored hot tier again.
    let replaced = std::fs::read_dir(&target)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("rocksdb.before-restore-")
        })
        .count();
    assert_eq!(replaced, 0);
    assert!(target.join("restore.json").exists());

    std::fs::rename(&aside, &parquet[0]).unwrap();
    let server = TestServer::start(&target);
    let body = server.root("SELECT id, v FROM app.t ORDER BY id");
    assert_eq!(
        body["results"][0]["rows"],
        json!([[1, "one"], [2, "two"], [3, "three"]])
    );
    assert!(!target.join("restore.json").exists());
}
