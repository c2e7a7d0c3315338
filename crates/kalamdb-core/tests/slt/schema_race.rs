//! Writes, flushes and compactions racing ALTER TABLE: every acknowledged
//! row is there once, and every column an ALTER added with `DEFAULT k`
//! reads k in every row, whether the row committed before the ALTER (it
//! reads the fill), after it (it got the default), or was overtaken by it
//! (it ran again under the new schema); whichever tier and schema version
//! holds it.

use crate::util::{caller, create_users, open, run};
use kalamdb_core::arrow::array::{Array, AsArray};
use kalamdb_core::arrow::compute::cast;
use kalamdb_core::arrow::datatypes::{DataType, Int64Type};
use kalamdb_core::{FlushHooks, KalamDb};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const WRITERS: usize = 3;
const ALTERS: i64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_flushes_racing_alters_lose_nothing_and_read_the_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    run(
        &db,
        "root",
        "CREATE NAMESPACE r; CREATE USER TABLE r.kv (id BIGINT PRIMARY KEY, v BIGINT)",
    )
    .await;
    create_users(&db, &["ra"]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (db, stop, count) = (db.clone(), stop.clone(), count.clone());
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            let mut n = 0i64;
            while !stop.load(Ordering::Acquire) {
                let id = n * WRITERS as i64 + w as i64;
                n += 1;
                let sql = format!("INSERT INTO r.kv (id, v) VALUES ({id}, {id})");
                db.execute(&sql, &[], None, &caller("ra"))
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                written.push(id);
                count.fetch_add(1, Ordering::Release);
                if n % 16 == 0 {
                    let sql = format!(
                        "UPDATE r.kv SET v = v + 0 WHERE id = {}",
                        id - WRITERS as i64
                    );
                    db.execute(&sql, &[], None, &caller("ra"))
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                }
            }
            written
        }));
    }
    let mover = {
        let (db, stop) = (db.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rounds = 0;
            while !stop.load(Ordering::Acquire) {
                db.flush_table("r", "kv", FlushHooks::default())
                    .await
                    .unwrap();
                rounds += 1;
                if rounds % 3 == 0 {
                    db.compact_table("r", "kv", Default::default())
                        .await
                        .unwrap();
                }
                tokio::task::yield_now().await;
            }
        })
    };
    // Added columns c1.., each DEFAULT its number; every third one renamed
    // (its values stay), and the first one dropped halfway.
    let mut columns: Vec<(String, i64)> = Vec::new();
    for k in 1..=ALTERS {
        run(
            &db,
            "root",
            &format!("ALTER TABLE r.kv ADD COLUMN c{k} BIGINT NOT NULL DEFAULT {k}"),
        )
        .await;
        columns.push((format!("c{k}"), k));
        if k % 3 == 0 {
            run(
                &db,
                "root",
                &format!("ALTER TABLE r.kv RENAME COLUMN c{k} TO r{k}"),
            )
            .await;
            columns.last_mut().unwrap().0 = format!("r{k}");
        }
        if k == ALTERS / 2 {
            run(&db, "root", "ALTER TABLE r.kv DROP COLUMN c1").await;
            columns.remove(0);
        }
        // Let writes (and flushes meanwhile) go on between changes.
        let target = count.load(Ordering::Acquire) + 30;
        while count.load(Ordering::Acquire) < target {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, Ordering::Release);
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    mover.await.unwrap();
    db.flush_table("r", "kv", FlushHooks::default())
        .await
        .unwrap();
    written.sort_unstable();
    assert!(written.len() > WRITERS, "the writers wrote");

    let Ok(db) = Arc::try_unwrap(db) else {
        panic!("the tasks ended, so nothing else holds the engine");
    };
    db.close().await;
    let db = open(dir.path());
    db.recover().await.unwrap();
    check(&db, &written, &columns).await;
}

async fn check(db: &KalamDb, written: &[i64], columns: &[(String, i64)]) {
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let sql = format!("SELECT id, v, {} FROM r.kv ORDER BY id", names.join(", "));
    let results = db
        .execute(&sql, &[], None, &caller("ra"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut ids = Vec::new();
    for batch in &results[0].batches {
        let columns_of: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Int64).unwrap())
            .collect();
        for r in 0..batch.num_rows() {
            let id = columns_of[0].as_primitive::<Int64Type>().value(r);
            assert_eq!(columns_of[1].as_primitive::<Int64Type>().value(r), id);
            for ((name, k), column) in columns.iter().zip(&columns_of[2..]) {
                assert!(!column.is_null(r), "row {id}: {name} is NULL");
                assert_eq!(
                    column.as_primitive::<Int64Type>().value(r),
                    *k,
                    "row {id}: {name}"
                );
            }
            ids.push(id);
        }
    }
    assert_eq!(ids, written, "every acknowledged row, once");
}

/// Inserts racing DROP TABLE: each lands before the drop (and goes with
/// it) or fails; none leaves rows under the dropped table's key range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_racing_drop_table_leave_no_rows_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    run(
        &db,
        "root",
        "CREATE NAMESPACE d; CREATE USER TABLE d.t (id BIGINT PRIMARY KEY, v BIGINT)",
    )
    .await;
    create_users(&db, &["da"]).await;
    let uid = db.services().catalog().table("d", "t").unwrap().uid;
    let count = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..3i64 {
        let (db, count) = (db.clone(), count.clone());
        writers.push(tokio::spawn(async move {
            for n in 0i64.. {
                let sql = format!("INSERT INTO d.t (id, v) VALUES ({}, 1)", n * 3 + w);
                if db.execute(&sql, &[], None, &caller("da")).await.is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::Release);
            }
        }));
    }
    while count.load(Ordering::Acquire) < 30 {
        tokio::task::yield_now().await;
    }
    run(&db, "root", "DROP TABLE d.t").await;
    for writer in writers {
        writer.await.unwrap();
    }
    let store = db.services().store();
    let mut left = 0;
    store
        .snapshot()
        .scan_versions(&kalamdb_store::ScopeKey::table_prefix(uid), &mut |_| {
            left += 1;
            Ok(true)
        })
        .unwrap();
    assert_eq!(left, 0, "rows of the dropped table left in the hot tier");
}

/// Transactions writing two tables commit while DROP NAMESPACE takes the
/// same tables' gates: the two take them in one order (table id), so
/// neither waits forever for the other. Names sort against creation order
/// here, so a drop that took them by name would take them the other way.
/// The interleaving that would deadlock then (the drop taking one gate
/// between a commit's two) is not forced, so this checks liveness under
/// contention more than the order itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_across_tables_and_drop_namespace_do_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(open(dir.path()));
    create_users(&db, &["ta"]).await;
    for round in 0..50 {
        run(
            &db,
            "root",
            "CREATE NAMESPACE g; \
             CREATE USER TABLE g.z (id BIGINT PRIMARY KEY, v BIGINT); \
             CREATE USER TABLE g.a (id BIGINT PRIMARY KEY, v BIGINT)",
        )
        .await;
        let committed = Arc::new(AtomicUsize::new(0));
        let mut writers = Vec::new();
        for w in 0..2i64 {
            let (db, committed) = (db.clone(), committed.clone());
            writers.push(tokio::spawn(async move {
                for n in 0i64.. {
                    let id = n * 2 + w;
                    let sql = format!(
                        "BEGIN; INSERT INTO g.a (id, v) VALUES ({id}, 1); \
                         INSERT INTO g.z (id, v) VALUES ({id}, 1); COMMIT"
                    );
                    if db.execute(&sql, &[], None, &caller("ta")).await.is_err() {
                        return;
                    }
                    committed.fetch_add(1, Ordering::Release);
                }
            }));
        }
        // The drop meets commits in flight, not writers still starting.
        while committed.load(Ordering::Acquire) < 4 {
            tokio::task::yield_now().await;
        }
        let dropped = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            db.execute("DROP NAMESPACE g CASCADE", &[], None, &caller("root")),
        )
        .await;
        assert!(
            matches!(dropped, Ok(Ok(_))),
            "round {round}: DROP NAMESPACE hung or failed"
        );
        for writer in writers {
            tokio::time::timeout(std::time::Duration::from_secs(60), writer)
                .await
                .expect("a transaction hung")
                .unwrap();
        }
    }
}
