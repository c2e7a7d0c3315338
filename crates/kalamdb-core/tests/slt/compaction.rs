//! Compaction: every query answers the same before and after it (values
//! and `_seq`), in the hot and cold tiers, across restarts; it survives a
//! crash at every step; readers that started before its commit finish;
//! writes and flushes go on meanwhile; the scheduler starts it.

use crate::util::{caller, create_users, job_id, message, open, query, run, walk};
use kalamdb_core::{CompactFailPoint, CompactHooks, FlushHooks, KalamDb};
use std::path::Path;
use std::sync::Arc;

const USERS: [&str; 3] = ["u1", "u2", "u3"];

/// A key, a value, and a NOT NULL column of every other type, so
/// tombstones (key only) and merged rows must fit every column.
const COLUMNS: &str = "(id BIGINT PRIMARY KEY, v BIGINT NOT NULL, b BOOLEAN NOT NULL DEFAULT true, s SMALLINT NOT NULL DEFAULT 1, i INT NOT NULL DEFAULT 2, r REAL NOT NULL DEFAULT 1.5, d DOUBLE NOT NULL DEFAULT 2.5, dec DECIMAL(8,2) NOT NULL DEFAULT 1.25, t TEXT NOT NULL DEFAULT 'x', ts TIMESTAMP NOT NULL DEFAULT '2024-01-02T03:04:05Z', day DATE NOT NULL DEFAULT '2024-01-01', u UUID NOT NULL DEFAULT '0190a0b0-1111-7222-8333-444455556666', raw BYTEA NOT NULL DEFAULT 'ab', doc JSON NOT NULL DEFAULT '{}')";

/// Queries whose answers must not change: every column and `_seq`, a
/// count, a group, point lookups of live, updated, deleted and absent
/// keys, a key range.
const QUERIES: [&str; 8] = [
    "SELECT *, _seq FROM c.kv ORDER BY id",
    "SELECT COUNT(*), SUM(v) FROM c.kv",
    "SELECT COUNT(*) FROM c.kv",
    "SELECT v % 3 AS g, COUNT(*), MAX(_seq) FROM c.kv GROUP BY v % 3 ORDER BY g",
    "SELECT id, v, _seq FROM c.kv WHERE id IN (1, 2, 7, 14, 30, 999) ORDER BY id",
    "SELECT id, v FROM c.kv WHERE id = 21",
    "SELECT id, v, _seq FROM c.kv WHERE id BETWEEN 10 AND 20 ORDER BY id",
    "SELECT id FROM c.kv WHERE v < 0 ORDER BY id",
];

async fn answers(db: &KalamDb) -> Vec<Vec<Vec<String>>> {
    let mut all = Vec::new();
    for user in USERS {
        for sql in QUERIES {
            all.push(query(db, user, sql).await);
        }
    }
    all
}

/// Creates `c.kv` (every column type) and `users`.
pub(crate) async fn create_kv(db: &KalamDb, users: &[&str]) {
    run(
        db,
        "root",
        &format!("CREATE NAMESPACE c; CREATE USER TABLE c.kv {COLUMNS}"),
    )
    .await;
    create_users(db, users).await;
}

/// `flushes` flushes per user, with inserts, updates and deletes of
/// flushed and hot rows between them; some rows stay hot at the end.
async fn history(db: &KalamDb, flushes: i64) {
    create_kv(db, &USERS).await;
    for round in 0..flushes {
        for user in USERS {
            let first = round * 10;
            let values: Vec<String> = (first..first + 10)
                .map(|id| format!("({id}, {id})"))
                .collect();
            run(
                db,
                user,
                &format!("INSERT INTO c.kv (id, v) VALUES {}", values.join(",")),
            )
            .await;
            // Updates and deletes of rows earlier flushes moved.
            run(
                db,
                user,
                &format!("UPDATE c.kv SET v = -v WHERE id = {}", round * 3),
            )
            .await;
            run(
                db,
                user,
                &format!("DELETE FROM c.kv WHERE id = {}", round * 7),
            )
            .await;
        }
        db.flush_table("c", "kv", FlushHooks::default())
            .await
            .unwrap();
    }
    // Hot rows over flushed keys: an update, a delete, a re-insert.
    for user in USERS {
        run(db, user, "UPDATE c.kv SET v = 1000 WHERE id = 1").await;
        run(db, user, "DELETE FROM c.kv WHERE id = 2").await;
        run(db, user, "INSERT INTO c.kv (id, v) VALUES (999, 9)").await;
    }
}

/// Committed files of `c.kv` per the manifest, and Parquet files on disk.
fn files(db: &KalamDb, dir: &Path) -> (usize, usize) {
    let uid = db.services().catalog().table("c", "kv").unwrap().uid;
    let committed = kalamdb_core::table_manifest_entries(db.services().store(), uid)
        .unwrap()
        .len();
    let on_disk = walk(&dir.join("storage"))
        .iter()
        .filter(|p| p.ends_with(".parquet"))
        .count();
    (committed, on_disk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_the_same_after_compaction_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    history(&db, 6).await;
    let before = answers(&db).await;
    assert_eq!(files(&db, dir.path()), (18, 18));
    let stats = db
        .compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!((stats.scopes, stats.files_in, stats.files_out), (3, 18, 3));
    // Per user: 9 + 5 * 12 rows in six files (each later flush: 10 new
    // rows, an update and a tombstone); out: 54 live rows. The 15 left
    // out are the 5 tombstones and the 10 versions updates and deletes
    // replaced.
    assert_eq!(
        (stats.rows_in, stats.rows_out, stats.tombstones_dropped),
        (3 * 69, 3 * 54, 3 * 5),
        "{stats:?}"
    );
    assert_eq!(stats.files_removed, 18);
    assert_eq!(answers(&db).await, before);
    assert_eq!(files(&db, dir.path()), (3, 3), "old files are gone");
    // Nothing left to do.
    let again = db
        .compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!((again.files_in, again.files_out), (0, 0));
    // Keys still behave: a live cold key refuses a duplicate, a deleted
    // one (its tombstone dropped) takes a new row.
    let dup = db
        .execute(
            "INSERT INTO c.kv (id, v) VALUES (3, 0)",
            &[],
            None,
            &caller("u1"),
        )
        .await;
    assert!(dup.is_err());
    db.close().await;
    let db = open(dir.path());
    db.recover().await.unwrap();
    assert_eq!(answers(&db).await, before, "after a restart");
    // Later flushes and compactions go on from here.
    run(&db, "u1", "INSERT INTO c.kv (id, v) VALUES (7, 70)").await;
    run(&db, "u1", "DELETE FROM c.kv WHERE id = 10").await;
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    let before = answers(&db).await;
    db.compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!(answers(&db).await, before);
    assert_eq!(files(&db, dir.path()), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_whose_rows_were_all_deleted_keeps_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    create_kv(&db, &["u1"]).await;
    run(&db, "u1", "INSERT INTO c.kv (id, v) VALUES (1, 1), (2, 2)").await;
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    run(&db, "u1", "DELETE FROM c.kv WHERE id > 0").await;
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    let stats = db
        .compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    // One tombstone stays: the scope's file carries its flush mark.
    assert_eq!((stats.files_out, stats.tombstones_dropped), (1, 1));
    assert!(query(&db, "u1", "SELECT * FROM c.kv").await.is_empty());
    run(&db, "u1", "INSERT INTO c.kv (id, v) VALUES (1, 5)").await;
    assert_eq!(query(&db, "u1", "SELECT v FROM c.kv").await, [["5"]]);
    let again = db
        .compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!(again.files_in, 0, "a lone kept tombstone is settled");
}

async fn crash_at(point: CompactFailPoint) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    history(&db, 3).await;
    let before = answers(&db).await;
    let hooks = CompactHooks {
        fail_at: Some(point),
        ..CompactHooks::default()
    };
    assert!(db.compact_table("c", "kv", hooks).await.is_err());
    let (committed, _) = files(&db, dir.path());
    // Stopped in the first scope (before its commit) or after it.
    let expected = match point {
        CompactFailPoint::AfterFilesWritten => 9,
        CompactFailPoint::AfterCommit => 7,
        CompactFailPoint::BetweenDeletes => 3,
    };
    assert_eq!(committed, expected, "{point:?}");
    assert_eq!(
        answers(&db).await,
        before,
        "before the restart at {point:?}"
    );
    db.close().await;

    let db = open(dir.path());
    db.recover().await.unwrap();
    assert_eq!(answers(&db).await, before, "after reopening at {point:?}");
    // No orphans: every Parquet file on disk is committed.
    assert_eq!(files(&db, dir.path()), (expected, expected), "{point:?}");
    // The next compaction completes.
    db.compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!(answers(&db).await, before, "after compacting at {point:?}");
    assert_eq!(files(&db, dir.path()), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_new_files_are_written_leaves_the_old_ones() {
    crash_at(CompactFailPoint::AfterFilesWritten).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_commit_leaves_the_old_files_to_the_next_start() {
    crash_at(CompactFailPoint::AfterCommit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_removals_leaves_the_rest_to_the_next_start() {
    crash_at(CompactFailPoint::BetweenDeletes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_a_running_reader_may_need_stay_until_it_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    history(&db, 3).await;
    let before = answers(&db).await;
    // A reader's view, taken before the compaction's commit.
    let snapshot = db.services().store().snapshot();
    db.compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!(files(&db, dir.path()), (3, 12), "old files wait for it");
    assert_eq!(answers(&db).await, before);
    // Readers after the commit do not hold them.
    let later = db.services().store().snapshot();
    db.scheduler_tick().await.unwrap();
    assert_eq!(files(&db, dir.path()), (3, 12));
    drop(snapshot);
    db.scheduler_tick().await.unwrap();
    assert_eq!(files(&db, dir.path()), (3, 3), "removed once it is done");
    drop(later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_flushes_go_on_while_a_compaction_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    history(&db, 3).await;
    // While the first scope's new file is being written: writes to it and
    // to another scope, and a flush of the table (which waits only for the
    // scope being compacted).
    let writer = db.clone();
    let handle = tokio::runtime::Handle::current();
    let flush = Arc::new(std::sync::Mutex::new(None));
    let started = flush.clone();
    let hooks = CompactHooks {
        after_batch: Some(Arc::new(move || {
            if started.lock().unwrap().is_some() {
                return;
            }
            handle.block_on(async {
                run(&writer, "u1", "INSERT INTO c.kv (id, v) VALUES (500, 5)").await;
                run(&writer, "u1", "DELETE FROM c.kv WHERE id = 3").await;
                run(&writer, "u2", "UPDATE c.kv SET v = 77 WHERE id = 4").await;
            });
            let flusher = writer.clone();
            *started.lock().unwrap() = Some(handle.spawn(async move {
                flusher
                    .flush_table("c", "kv", FlushHooks::default())
                    .await
                    .unwrap()
            }));
        })),
        ..CompactHooks::default()
    };
    db.compact_table("c", "kv", hooks).await.unwrap();
    let flushed = flush.lock().unwrap().take().expect("the hook ran");
    let stats = flushed.await.unwrap();
    assert!(stats.failed.is_empty());
    assert_eq!(
        query(
            &db,
            "u1",
            "SELECT id, v FROM c.kv WHERE id IN (3, 500) ORDER BY id"
        )
        .await,
        [["500", "5"]]
    );
    assert_eq!(
        query(&db, "u2", "SELECT v FROM c.kv WHERE id = 4").await,
        [["77"]]
    );
    let before = answers(&db).await;
    db.compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!(answers(&db).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_jobs_report_their_figures_and_the_scheduler_starts_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    history(&db, 3).await;
    let text = message(&db, "root", "STORAGE COMPACT TABLE c.kv").await;
    assert!(text.contains("Job ID: CO-"), "{text}");
    let id = job_id(&text);
    db.wait_for_jobs().await;
    let rows = query(
        &db,
        "root",
        &format!("SELECT job_type, status, trigger, result FROM system.jobs WHERE job_id = '{id}'"),
    )
    .await;
    assert_eq!(rows[0][..3], ["compact", "completed", "manual"]);
    let result: serde_json::Value = serde_json::from_str(&rows[0][3]).unwrap();
    for key in [
        "files_in",
        "files_out",
        "rows_in",
        "rows_out",
        "tombstones_dropped",
        "bytes_in",
        "bytes_out",
        "duration_ms",
    ] {
        assert!(result[key].is_u64(), "{key} in {result}");
    }
    assert_eq!(
        (result["files_in"].as_u64(), result["files_out"].as_u64()),
        (Some(9), Some(3))
    );
    // Users below the service role may not.
    let refused = db
        .execute("COMPACT TABLE c.kv", &[], None, &caller("u1"))
        .await;
    assert!(refused.is_err());
    let all = message(&db, "root", "STORAGE COMPACT ALL IN NAMESPACE c").await;
    assert!(all.contains("Job IDs: [CO-"), "{all}");
    db.wait_for_jobs().await;

    // A table of its own thresholds: more than 2 small files per scope.
    run(
        &db,
        "root",
        "CREATE USER TABLE c.auto (id INT PRIMARY KEY, v TEXT) WITH (COMPACTION_MAX_SMALL_FILES = 2)",
    )
    .await;
    for round in 0..3 {
        run(
            &db,
            "u1",
            &format!("INSERT INTO c.auto (id, v) VALUES ({round}, 'x')"),
        )
        .await;
        db.flush_table("c", "auto", FlushHooks::default())
            .await
            .unwrap();
        let started = db.scheduler_tick().await.unwrap();
        let compactions: Vec<_> = started.iter().filter(|s| s.1 == "files").collect();
        assert_eq!(
            compactions.len(),
            usize::from(round == 2),
            "round {round}: {started:?}"
        );
    }
    db.wait_for_jobs().await;
    let rows = query(
        &db,
        "root",
        "SELECT status, trigger FROM system.jobs WHERE job_type = 'compact' AND table_name = 'auto'",
    )
    .await;
    assert_eq!(rows, [["completed", "files"]]);
    assert_eq!(
        query(&db, "u1", "SELECT COUNT(*) FROM c.auto").await,
        [["3"]]
    );
    let uid = db.services().catalog().table("c", "auto").unwrap().uid;
    let entries = kalamdb_core::table_manifest_entries(db.services().store(), uid).unwrap();
    assert_eq!(entries.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_only_the_newest_files_keeps_tombstones_an_older_file_needs() {
    let dir = tempfile::tempdir().unwrap();
    // Files under 16 KiB are small; more than two of them are due.
    let config = kalamdb_core::EngineConfig {
        compaction: kalamdb_core::CompactionPolicy {
            max_files: 0,
            max_small_files: 2,
            target_file_bytes: 64 * 1024,
        },
        ..kalamdb_core::EngineConfig::default()
    };
    let db = crate::util::open_with(dir.path(), config, Arc::new(kalamdb_commons::SystemClock));
    create_kv(&db, &USERS).await;
    let values: Vec<String> = (0..3000).map(|id| format!("({id}, {id})")).collect();
    run(
        &db,
        "u1",
        &format!("INSERT INTO c.kv (id, v) VALUES {}", values.join(",")),
    )
    .await;
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    let uid = db.services().catalog().table("c", "kv").unwrap().uid;
    let entries = || kalamdb_core::table_manifest_entries(db.services().store(), uid).unwrap();
    assert!(
        entries()[0].bytes >= 16 * 1024,
        "the first file is not small"
    );
    // Three small files: each deletes two keys of the first file (their
    // tombstones must stay) and the key the previous one added (nothing
    // older holds it: its tombstone can go).
    for (round, deleted) in [(0, [1, 2]), (1, [7, 14]), (2, [15, 30])] {
        let new = 10_000 + round;
        let sql = format!(
            "DELETE FROM c.kv WHERE id IN ({}, {}, {}); INSERT INTO c.kv (id, v) VALUES ({new}, 1)",
            deleted[0],
            deleted[1],
            new - 1
        );
        run(&db, "u1", &sql).await;
        db.flush_table("c", "kv", FlushHooks::default())
            .await
            .unwrap();
    }
    let before = answers(&db).await;
    assert_eq!(entries().len(), 4);
    let started = db.scheduler_tick().await.unwrap();
    assert!(started.iter().any(|s| s.1 == "files"), "{started:?}");
    db.wait_for_jobs().await;
    assert_eq!(answers(&db).await, before);
    let after = entries();
    assert_eq!(after.len(), 2, "the first file and the merged one");
    assert_eq!(after.iter().map(|e| e.held_tombstones()).sum::<u64>(), 6);
    let result = query(
        &db,
        "root",
        "SELECT result FROM system.jobs WHERE job_type = 'compact'",
    )
    .await;
    let result: serde_json::Value = serde_json::from_str(&result[0][0]).unwrap();
    assert_eq!(result["tombstones_dropped"], 2, "{result}");
    assert_eq!(result["files_in"], 3, "{result}");
    // A full compaction then drops the rest.
    db.compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!(answers(&db).await, before);
    assert_eq!(
        entries().iter().map(|e| e.held_tombstones()).sum::<u64>(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_compact_gets_the_running_job_and_kill_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    history(&db, 2).await;
    let before = answers(&db).await;
    // The job waits after its first batch until the gate opens.
    let (arrived, arrivals) = std::sync::mpsc::channel();
    let arrived = std::sync::Mutex::new(arrived);
    let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let hook_gate = gate.clone();
    db.services().flusher().set_compact_hooks(CompactHooks {
        after_batch: Some(Arc::new(move || {
            let _ = arrived.lock().unwrap().send(());
            let (open, opened) = &*hook_gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = opened.wait(open).unwrap();
            }
        })),
        ..CompactHooks::default()
    });
    let first = job_id(&message(&db, "root", "STORAGE COMPACT TABLE c.kv").await);
    arrivals.recv().unwrap();
    let second = message(&db, "root", "COMPACT TABLE c.kv").await;
    assert!(second.contains("already running"), "{second}");
    assert_eq!(job_id(&second), first);
    let killed = message(&db, "root", &format!("KILL JOB '{first}'")).await;
    assert!(killed.contains("stopping"), "{killed}");
    {
        let (open, opened) = &*gate;
        *open.lock().unwrap() = true;
        opened.notify_all();
    }
    db.wait_for_jobs().await;
    let rows = query(
        &db,
        "root",
        &format!("SELECT status FROM system.jobs WHERE job_id = '{first}'"),
    )
    .await;
    assert_eq!(rows, [["cancelled"]]);
    // Stopped inside the first scope: nothing of it was committed, and its
    // unfinished file is gone.
    assert_eq!(files(&db, dir.path()), (6, 6));
    assert_eq!(answers(&db).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_stats_tells_files_tombstones_and_the_last_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    history(&db, 3).await;
    let before = query(&db, "root", "SHOW STATS FOR TABLE c.kv").await;
    let column = |rows: &[Vec<String>], name: &str| -> String {
        let i = [
            "table_id",
            "table_type",
            "storage_id",
            "flush_policy",
            "hot_rows",
            "hot_bytes",
            "cold_rows",
            "parquet_files",
            "cold_bytes",
            "last_flush_at",
            "last_flush_job",
            "failing_scopes",
            "scope_scans",
            "key_lookups",
            "cold_tombstones",
            "last_compaction_at",
            "last_compaction_job",
        ]
        .iter()
        .position(|c| *c == name)
        .unwrap();
        rows[0][i].clone()
    };
    assert_eq!(column(&before, "parquet_files"), "9");
    // Per user: the tombstones of ids 7 and 14.
    assert_eq!(column(&before, "cold_tombstones"), "6");
    assert_eq!(column(&before, "last_compaction_job"), "NULL");
    let id = job_id(&message(&db, "root", "COMPACT TABLE c.kv").await);
    db.wait_for_jobs().await;
    let after = query(&db, "root", "SHOW STATS FOR TABLE c.kv").await;
    assert_eq!(column(&after, "parquet_files"), "3");
    assert_eq!(column(&after, "cold_tombstones"), "0");
    assert_eq!(column(&after, "last_compaction_job"), id);
    assert_ne!(column(&after, "last_compaction_at"), "NULL");
    assert!(column(&after, "cold_bytes").parse::<u64>().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_on_other_columns_skip_row_groups_only_where_each_key_is_in_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    run(
        &db,
        "root",
        "CREATE NAMESPACE c; CREATE USER TABLE c.n (id INT PRIMARY KEY, n INT, t TEXT)",
    )
    .await;
    create_users(&db, &["u1"]).await;
    for chunk in 0..3 {
        let values: Vec<String> = (1..=1000)
            .map(|i| {
                let id = chunk * 1000 + i;
                format!("({id}, {id}, 'v{id:05}')")
            })
            .collect();
        let sql = format!("INSERT INTO c.n VALUES {}", values.join(","));
        run(&db, "u1", &sql).await;
    }
    db.flush_table("c", "n", FlushHooks::default())
        .await
        .unwrap();
    let ask = |sql: &'static str| query(&db, "u1", sql);
    // One file: a hot version decides for its key.
    run(&db, "u1", "UPDATE c.n SET n = 5000, t = 'zzz' WHERE id = 1").await;
    assert_eq!(ask("SELECT id FROM c.n WHERE n > 4000").await, [["1"]]);
    assert_eq!(ask("SELECT id FROM c.n WHERE t > 'x'").await, [["1"]]);
    // Two files over the same keys: the newer version (n = 5000) lies
    // outside `n < 2`, the older (n = 1) inside; skipping the newer file's
    // row group would bring the old row back.
    db.flush_table("c", "n", FlushHooks::default())
        .await
        .unwrap();
    assert!(ask("SELECT id FROM c.n WHERE n < 2").await.is_empty());
    assert!(ask("SELECT id FROM c.n WHERE t <= 'v00001'")
        .await
        .is_empty());
    assert!(ask("SELECT id FROM c.n WHERE n BETWEEN 0 AND 1")
        .await
        .is_empty());
    // Compacted: one file, each key once.
    db.compact_table("c", "n", CompactHooks::default())
        .await
        .unwrap();
    assert!(ask("SELECT id FROM c.n WHERE n < 2").await.is_empty());
    assert_eq!(ask("SELECT id FROM c.n WHERE n > 4000").await, [["1"]]);
    assert_eq!(
        ask("SELECT COUNT(*) FROM c.n WHERE n BETWEEN 10 AND 20").await,
        [["11"]]
    );
    assert_eq!(
        ask("SELECT COUNT(*) FROM c.n WHERE 2990 <= n AND t >= 'v02995'").await,
        [["7"]],
        "2995..=3000, and 1 (n 5000, t 'zzz')"
    );
    // A deleted key stays deleted whatever the filter.
    run(&db, "u1", "DELETE FROM c.n WHERE id = 15").await;
    db.flush_table("c", "n", FlushHooks::default())
        .await
        .unwrap();
    assert_eq!(
        ask("SELECT COUNT(*) FROM c.n WHERE n BETWEEN 10 AND 20").await,
        [["10"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_files_wait_for_a_running_backup_and_the_scheduler_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    history(&db, 2).await;
    let before = answers(&db).await;
    // What a backup holds while it copies files.
    let paused = db.services().storages().pause_removals().await;
    db.compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!(files(&db, dir.path()), (3, 9), "nothing removed meanwhile");
    let tick = tokio::time::timeout(std::time::Duration::from_secs(30), db.scheduler_tick());
    tick.await
        .expect("the tick does not wait for the backup")
        .unwrap();
    assert_eq!(files(&db, dir.path()), (3, 9));
    drop(paused);
    db.scheduler_tick().await.unwrap();
    assert_eq!(files(&db, dir.path()), (3, 3));
    assert_eq!(answers(&db).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_larger_than_the_target_size_writes_several_files_over_separate_keys() {
    let dir = tempfile::tempdir().unwrap();
    // A target far below one file's rows: every output file is cut at the
    // least a file holds (64K rows, give or take a batch).
    let config = kalamdb_core::EngineConfig {
        compaction: kalamdb_core::CompactionPolicy {
            target_file_bytes: 1024,
            ..kalamdb_core::CompactionPolicy::default()
        },
        ..kalamdb_core::EngineConfig::default()
    };
    let db = crate::util::open_with(dir.path(), config, Arc::new(kalamdb_commons::SystemClock));
    run(
        &db,
        "root",
        "CREATE NAMESPACE c; CREATE USER TABLE c.big (id BIGINT PRIMARY KEY, n INT)",
    )
    .await;
    create_users(&db, &["u1"]).await;
    // Each flush holds every third key: the files overlap, so they merge.
    for flush in 0..3 {
        for chunk in 0..50 {
            let first = chunk * 3000 + flush;
            let values: Vec<String> = (0..1000)
                .map(|i| first + i * 3)
                .map(|id| format!("({id}, {})", id % 7))
                .collect();
            let sql = format!("INSERT INTO c.big VALUES {}", values.join(","));
            run(&db, "u1", &sql).await;
        }
        db.flush_table("c", "big", FlushHooks::default())
            .await
            .unwrap();
    }
    let ask = [
        "SELECT COUNT(*), SUM(n), MIN(id), MAX(id) FROM c.big",
        "SELECT id, n FROM c.big WHERE id IN (0, 65535, 65536, 70000, 149999)",
        "SELECT COUNT(*) FROM c.big WHERE id BETWEEN 60000 AND 70000",
    ];
    let mut before = Vec::new();
    for sql in ask {
        before.push(query(&db, "u1", sql).await);
    }
    let stats = db
        .compact_table("c", "big", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!((stats.files_in, stats.rows_out), (3, 150_000));
    assert_eq!(stats.files_out, 3, "{stats:?}");
    let uid = db.services().catalog().table("c", "big").unwrap().uid;
    let mut entries = kalamdb_core::table_manifest_entries(db.services().store(), uid).unwrap();
    entries.sort_by(|a, b| a.min_pk.cmp(&b.min_pk));
    for pair in entries.windows(2) {
        assert!(pair[0].max_pk < pair[1].min_pk, "parts over separate keys");
    }
    for entry in &entries[..2] {
        assert!(
            (65_536..65_536 + 4096).contains(&entry.rows),
            "{}",
            entry.rows
        );
    }
    for (sql, want) in ask.iter().zip(&before) {
        assert_eq!(&query(&db, "u1", sql).await, want, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_of_a_scope_waits_while_that_scope_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    // Every user has files and hot rows: the flush has u1's scope first.
    history(&db, 2).await;
    let (committed, commits) = std::sync::mpsc::channel::<()>();
    let committed = std::sync::Mutex::new(committed);
    let flusher = db.clone();
    let handle = tokio::runtime::Handle::current();
    let flush = Arc::new(std::sync::Mutex::new(None));
    let started = flush.clone();
    let overlapped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = overlapped.clone();
    let commits = std::sync::Mutex::new(commits);
    let hooks = CompactHooks {
        after_batch: Some(Arc::new(move || {
            if started.lock().unwrap().is_some() {
                return;
            }
            let tx = committed.lock().unwrap().clone();
            let flush_hooks = FlushHooks {
                after_commit: Some(Arc::new(move || {
                    let _ = tx.send(());
                })),
                ..FlushHooks::default()
            };
            let flusher = flusher.clone();
            *started.lock().unwrap() = Some(
                handle.spawn(async move { flusher.flush_table("c", "kv", flush_hooks).await }),
            );
            // While u1 is being compacted, no flush commit may happen: the
            // flush waits at u1, its first scope. (Absence is only seen by
            // waiting; the wait is bounded.)
            let waited = commits
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(2));
            seen.store(waited.is_ok(), std::sync::atomic::Ordering::SeqCst);
        })),
        ..CompactHooks::default()
    };
    let before = answers(&db).await;
    db.compact_table("c", "kv", hooks).await.unwrap();
    let flushed = flush.lock().unwrap().take().expect("the hook ran");
    assert!(flushed.await.unwrap().unwrap().failed.is_empty());
    assert!(
        !overlapped.load(std::sync::atomic::Ordering::SeqCst),
        "a flush committed while its first scope was being compacted"
    );
    assert_eq!(answers(&db).await, before);
}
