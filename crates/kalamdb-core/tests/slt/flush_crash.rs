//! A flush interrupted at every step of its protocol, then the engine
//! reopened: nothing lost, nothing duplicated, no deleted row back, and the
//! next flush completes. Also: writes made while a flush runs survive it.

use crate::util::{caller, create_users, open, run};
use kalamdb_core::arrow::array::AsArray;
use kalamdb_core::arrow::datatypes::Int64Type;
use kalamdb_core::KalamDb;
use kalamdb_core::{FailPoint, FlushHooks};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

const USERS: [&str; 3] = ["u1", "u2", "u3"];

/// Every user's rows: user → id → v.
async fn contents(db: &KalamDb) -> BTreeMap<String, BTreeMap<i64, i64>> {
    let mut all = BTreeMap::new();
    for user in USERS {
        let results = db
            .execute(
                "SELECT id, v FROM c.kv ORDER BY id",
                &[],
                None,
                &caller(user),
            )
            .await
            .unwrap();
        let mut rows = BTreeMap::new();
        for batch in &results[0].batches {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let vs = batch.column(1).as_primitive::<Int64Type>();
            for r in 0..batch.num_rows() {
                assert!(
                    rows.insert(ids.value(r), vs.value(r)).is_none(),
                    "duplicate id for {user}"
                );
            }
        }
        all.insert(user.to_string(), rows);
    }
    all
}

/// The table: a key, a value, and a NOT NULL column of every other type, so
/// the tombstones of deleted flushed rows (key only) must fit its files.
const KV_COLUMNS: &str = "(id BIGINT PRIMARY KEY, v BIGINT NOT NULL, b BOOLEAN NOT NULL DEFAULT true, s SMALLINT NOT NULL DEFAULT 1, i INT NOT NULL DEFAULT 2, r REAL NOT NULL DEFAULT 1.5, d DOUBLE NOT NULL DEFAULT 2.5, dec DECIMAL(8,2) NOT NULL DEFAULT 1.25, t TEXT NOT NULL DEFAULT 'x', ts TIMESTAMP NOT NULL DEFAULT '2024-01-02T03:04:05Z', day DATE NOT NULL DEFAULT '2024-01-01', u UUID NOT NULL DEFAULT '0190a0b0-1111-7222-8333-444455556666', raw BYTEA NOT NULL DEFAULT 'ab', doc JSON NOT NULL DEFAULT '{}')";

/// Rows in the hot tier and in Parquet, with updates and deletes on both.
async fn setup(db: &KalamDb) {
    run(
        db,
        "root",
        &format!("CREATE NAMESPACE c; CREATE USER TABLE c.kv {KV_COLUMNS}"),
    )
    .await;
    create_users(db, &USERS).await;
    for user in USERS {
        run(
            db,
            user,
            "INSERT INTO c.kv (id, v) VALUES (1, 10), (2, 20), (3, 30), (4, 40)",
        )
        .await;
    }
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    for user in USERS {
        run(db, user, "UPDATE c.kv SET v = v + 1 WHERE id = 1").await;
        run(db, user, "DELETE FROM c.kv WHERE id = 2").await;
        run(db, user, "INSERT INTO c.kv (id, v) VALUES (5, 50)").await;
    }
}

fn parquet_files(dir: &Path) -> usize {
    let mut count = 0;
    let mut dirs = vec![dir.join("storage")];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                count += 1;
            }
        }
    }
    count
}

async fn crash_at(point: FailPoint) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    setup(&db).await;
    let before = contents(&db).await;
    let hooks = FlushHooks {
        fail_at: Some(point),
        ..FlushHooks::default()
    };
    assert!(db.flush_table("c", "kv", hooks).await.is_err());
    db.close().await;

    let db = open(dir.path());
    db.recover().await.unwrap();
    assert_eq!(contents(&db).await, before, "after reopening at {point:?}");
    // Orphans are gone: one committed file per user from the first flush,
    // plus the committed ones of this flush.
    let committed_now = match point {
        FailPoint::AfterFirstCommit | FailPoint::AfterCommitBeforeDelete => 1,
        FailPoint::AfterFileWritten => 0,
        FailPoint::AfterFirstDeleteChunk => unreachable!("these scopes fit one delete batch"),
    };
    // A key already in a file refuses a duplicate, whether its hot versions
    // were deleted yet or not.
    for user in USERS {
        let dup = db
            .execute(
                "INSERT INTO c.kv (id, v) VALUES (1, 0)",
                &[],
                None,
                &caller(user),
            )
            .await;
        assert!(dup.is_err(), "{user} at {point:?}");
    }
    assert_eq!(parquet_files(dir.path()), USERS.len() + committed_now);

    let stats = db
        .flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    assert!(stats.failed.is_empty());
    assert_eq!(
        contents(&db).await,
        before,
        "after the next flush at {point:?}"
    );
    assert_eq!(parquet_files(dir.path()), 2 * USERS.len());
    // A flushed key still refuses a duplicate; a flushed delete stays deleted.
    let dup = db
        .execute(
            "INSERT INTO c.kv (id, v) VALUES (1, 0)",
            &[],
            None,
            &caller("u1"),
        )
        .await;
    assert!(dup.is_err());
    run(&db, "u1", "INSERT INTO c.kv (id, v) VALUES (2, 99)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_file_written_loses_and_duplicates_nothing() {
    crash_at(FailPoint::AfterFileWritten).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_in_the_middle_of_a_multi_user_flush_loses_and_duplicates_nothing() {
    crash_at(FailPoint::AfterFirstCommit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_commit_and_hot_delete_hides_and_later_removes_the_versions() {
    crash_at(FailPoint::AfterCommitBeforeDelete).await;
}

/// Versions of table `c.kv` in the hot tier, hidden ones included.
/// The table `c.kv` and its one user, u1.
async fn one_user_table(db: &KalamDb) {
    run(
        db,
        "root",
        &format!("CREATE NAMESPACE c; CREATE USER TABLE c.kv {KV_COLUMNS}"),
    )
    .await;
    create_users(db, &["u1"]).await;
}

fn hot_versions(db: &KalamDb) -> usize {
    versions_per_key(db).values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_larger_than_the_kept_keys_is_flushed_and_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    one_user_table(&db).await;
    // More versions than a flush keeps keys for (65,536), so the deletes
    // after the commit read the snapshot again.
    for chunk in 0..8 {
        let values: Vec<String> = (0..10_000)
            .map(|i| {
                let id = chunk * 10_000 + i;
                format!("({id}, {id})")
            })
            .collect();
        run(
            &db,
            "u1",
            &format!("INSERT INTO c.kv (id, v) VALUES {}", values.join(",")),
        )
        .await;
    }
    run(&db, "u1", "UPDATE c.kv SET v = -1 WHERE id < 100").await;
    run(&db, "u1", "DELETE FROM c.kv WHERE id >= 79990").await;
    assert_eq!(hot_versions(&db), 80_000 + 100 + 10);
    // A write during the flush: the scope's versions cannot go in one
    // range delete, they are deleted one by one.
    let db = Arc::new(db);
    let hooks = writing_after_snapshot(
        &db,
        &[("u1", "INSERT INTO c.kv (id, v) VALUES (200000, 7)")],
    );
    let stats = db.flush_table("c", "kv", hooks).await.unwrap();
    assert_eq!(stats.rows_flushed, 79_990);
    assert_eq!(hot_versions(&db), 1, "only the write made during the flush");
    run(&db, "u1", "DELETE FROM c.kv WHERE id = 200000").await;
    let result = db
        .execute(
            "SELECT COUNT(*), SUM(v) FROM c.kv",
            &[],
            None,
            &caller("u1"),
        )
        .await
        .unwrap();
    let batch = &result[0].batches[0];
    assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(0), 79_990);
    let expected: i64 = (100..79_990).sum::<i64>() - 100;
    assert_eq!(
        batch.column(1).as_primitive::<Int64Type>().value(0),
        expected
    );
    // Point lookups read only the row group whose key range holds the key.
    for (id, want) in [
        (5, Some(-1)),
        (70_000, Some(70_000)),
        (79_995, None),
        (99_999, None),
    ] {
        let sql = format!("SELECT v FROM c.kv WHERE id = {id}");
        let rows = crate::util::query(&db, "u1", &sql).await;
        let got = rows.first().map(|r| r[0].parse::<i64>().unwrap());
        assert_eq!(got, want, "id {id}");
    }
}

/// Inserts `rows` rows of ids from `first` as `user`, then updates every
/// tenth and deletes every seventh: three kinds of versions, several per key.
async fn write_many(db: &KalamDb, user: &str, first: i64, rows: i64) {
    let values: Vec<String> = (first..first + rows)
        .map(|id| format!("({id}, {id})"))
        .collect();
    let sql = format!("INSERT INTO c.kv (id, v) VALUES {}", values.join(","));
    run(db, user, &sql).await;
    run(db, user, "UPDATE c.kv SET v = -v WHERE id % 10 = 0").await;
    run(db, user, "DELETE FROM c.kv WHERE id % 7 = 0").await;
}

/// A large scope that nobody wrote during its flush loses its hot versions
/// in one range delete; a large scope written meanwhile, beside it in the
/// same flush, keeps the new writes. Neither touches the other's rows,
/// before or after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_scopes_lose_their_flushed_versions_and_keep_newer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    setup(&db).await;
    for user in USERS {
        write_many(&db, user, 1_000, 6_000).await;
    }
    let hooks = writing_after_snapshot(
        &db,
        &[
            ("u2", "INSERT INTO c.kv (id, v) VALUES (99999, 9)"),
            ("u2", "UPDATE c.kv SET v = 11 WHERE id = 1002"),
        ],
    );
    let mut expected = contents(&db).await;
    expected.get_mut("u2").unwrap().insert(99_999, 9);
    expected.get_mut("u2").unwrap().insert(1_002, 11);
    db.flush_table("c", "kv", hooks).await.unwrap();
    assert_eq!(
        hot_versions(&db),
        2,
        "every flushed version is gone, the two written meanwhile stay"
    );
    assert_eq!(contents(&db).await, expected);

    // Written again after the range deletes: the new versions are not
    // covered by them, hot or flushed.
    write_many(&db, "u1", 10_000, 5_000).await;
    let mut expected = contents(&db).await;
    assert!(expected["u1"].contains_key(&14_999));
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    assert_eq!(hot_versions(&db), 0);
    assert_eq!(contents(&db).await, expected);
    run(&db, "u3", "INSERT INTO c.kv (id, v) VALUES (1001, 5)").await;
    expected.get_mut("u3").unwrap().insert(1_001, 5);
    let db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("engine still shared"));
    db.close().await;
    let db = open(dir.path());
    assert_eq!(contents(&db).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_after_commit_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    setup(&db).await;
    let before = contents(&db).await;
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    drop(db);
    let db = open(dir.path());
    assert_eq!(contents(&db).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_flush_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    setup(&db).await;
    // Run after the flush took its snapshot: these versions are newer than
    // anything the flush moves and must stay (hot) and visible.
    let hooks = writing_after_snapshot(
        &db,
        &[
            ("u1", "INSERT INTO c.kv (id, v) VALUES (6, 60)"),
            ("u1", "UPDATE c.kv SET v = 555 WHERE id = 5"),
            ("u2", "DELETE FROM c.kv WHERE id = 3"),
            ("u3", "UPDATE c.kv SET v = 444 WHERE id = 4"),
        ],
    );
    let mut expected = contents(&db).await;
    expected.get_mut("u1").unwrap().insert(6, 60);
    expected.get_mut("u1").unwrap().insert(5, 555);
    expected.get_mut("u2").unwrap().remove(&3);
    expected.get_mut("u3").unwrap().insert(4, 444);
    db.flush_table("c", "kv", hooks).await.unwrap();
    assert_eq!(contents(&db).await, expected);
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    assert_eq!(contents(&db).await, expected);
    let db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("engine still shared"));
    db.close().await;
    let db = open(dir.path());
    assert_eq!(contents(&db).await, expected);
}

/// Hooks that run `writes` (user, statement) in order right after the
/// flush takes its snapshot: writes the flush must not move or delete.
fn writing_after_snapshot(db: &Arc<KalamDb>, writes: &[(&str, &str)]) -> FlushHooks {
    let writer = db.clone();
    let writes: Vec<(String, String)> = writes
        .iter()
        .map(|(user, sql)| (user.to_string(), sql.to_string()))
        .collect();
    let handle = tokio::runtime::Handle::current();
    FlushHooks {
        after_snapshot: Some(Arc::new(move || {
            handle.block_on(async {
                for (user, sql) in &writes {
                    run(&writer, user, sql).await;
                }
            })
        })),
        ..FlushHooks::default()
    }
}

/// Hot versions per primary key of the table (all users).
fn versions_per_key(db: &KalamDb) -> BTreeMap<Vec<u8>, usize> {
    let ctx = db.services();
    let uid = ctx.catalog().table("c", "kv").unwrap().uid;
    let mut per_key = BTreeMap::new();
    ctx.store()
        .snapshot()
        .scan_versions(&kalamdb_store::ScopeKey::table_prefix(uid), &mut |v| {
            *per_key.entry(v.pk_prefix.to_vec()).or_insert(0) += 1;
            Ok(true)
        })
        .unwrap();
    per_key
}

/// A scope with no files whose rows are all deleted writes no file: the
/// flush only deletes hot versions, in several batches. A crash between two
/// batches must leave every key with all of its versions or none (a
/// tombstone deleted without the older versions would bring the row back).
/// Three versions per key make a batch of 16,384 versions end inside a key
/// unless the cut waits for the key's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_delete_batches_brings_no_deleted_row_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    one_user_table(&db).await;
    let values: Vec<String> = (0..6_000).map(|id| format!("({id}, {id})")).collect();
    run(
        &db,
        "u1",
        &format!("INSERT INTO c.kv (id, v) VALUES {}", values.join(",")),
    )
    .await;
    run(&db, "u1", "UPDATE c.kv SET v = -v").await;
    run(&db, "u1", "DELETE FROM c.kv").await;
    assert_eq!(hot_versions(&db), 18_000);

    let hooks = FlushHooks {
        fail_at: Some(FailPoint::AfterFirstDeleteChunk),
        ..FlushHooks::default()
    };
    assert!(db.flush_table("c", "kv", hooks).await.is_err());
    db.close().await;

    let db = open(dir.path());
    db.recover().await.unwrap();
    let left = versions_per_key(&db);
    assert!(
        !left.is_empty() && left.len() < 6_000,
        "the first batch ran, the rest did not: {} keys left",
        left.len()
    );
    assert!(
        left.values().all(|&n| n == 3),
        "a key lost only some versions"
    );
    let count = crate::util::query(&db, "u1", "SELECT COUNT(*) FROM c.kv").await;
    assert_eq!(count, vec![vec!["0".to_string()]]);

    // The next flush removes the rest; the keys are free again.
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    assert_eq!(hot_versions(&db), 0);
    run(&db, "u1", "INSERT INTO c.kv (id, v) VALUES (5, 50)").await;
    let rows = crate::util::query(&db, "u1", "SELECT id, v FROM c.kv").await;
    assert_eq!(rows, vec![vec!["5".to_string(), "50".to_string()]]);
}
