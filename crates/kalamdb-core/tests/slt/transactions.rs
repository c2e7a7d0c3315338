//! Transactions that overlap, driven step by step through client sessions
//! (a transaction left open by one request goes on in the next):
//! snapshot reads, first committer wins on a row both wrote, a flush
//! during a transaction, and a randomized run of read-compute-write
//! transfers whose final state must equal a serial order of the committed
//! ones.

use crate::util::{caller, create_users, open, run};
use kalamdb_commons::ErrorCode;
use kalamdb_core::arrow::array::AsArray;
use kalamdb_core::arrow::compute::cast;
use kalamdb_core::arrow::datatypes::{DataType, Int64Type};
use kalamdb_core::{ClientSession, FlushHooks, KalamDb};

async fn step(db: &KalamDb, session: &mut ClientSession, sql: &str) -> Result<Vec<i64>, ErrorCode> {
    match db.execute_in(session, sql, &[], &caller("ta")).await {
        Ok(results) => {
            let mut out = Vec::new();
            if let Some(last) = results.iter().rev().find(|r| r.schema.is_some()) {
                for batch in &last.batches {
                    let column = cast(batch.column(0), &DataType::Int64).unwrap();
                    out.extend(column.as_primitive::<Int64Type>().values().iter().copied());
                }
            }
            Ok(out)
        }
        Err(e) => Err(e.error.code()),
    }
}

async fn setup() -> (tempfile::TempDir, KalamDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    run(
        &db,
        "root",
        "CREATE NAMESPACE t; CREATE USER TABLE t.acct (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
    )
    .await;
    create_users(&db, &["ta"]).await;
    run(
        &db,
        "ta",
        "INSERT INTO t.acct VALUES (1, 100), (2, 100), (3, 100)",
    )
    .await;
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_one_snapshot_and_the_first_committer_wins() {
    let (_dir, db) = setup().await;
    let (mut a, mut b, mut c) = (
        ClientSession::default(),
        ClientSession::default(),
        ClientSession::default(),
    );
    // c's snapshot is taken before anyone writes.
    step(&db, &mut c, "BEGIN").await.unwrap();
    assert_eq!(
        step(&db, &mut c, "SELECT balance FROM t.acct WHERE id = 1").await,
        Ok(vec![100])
    );

    step(
        &db,
        &mut a,
        "BEGIN; UPDATE t.acct SET balance = balance + 1 WHERE id = 1",
    )
    .await
    .unwrap();
    step(
        &db,
        &mut b,
        "BEGIN; UPDATE t.acct SET balance = balance + 10 WHERE id = 1",
    )
    .await
    .unwrap();
    // Each sees its own write only.
    assert_eq!(
        step(&db, &mut a, "SELECT balance FROM t.acct WHERE id = 1").await,
        Ok(vec![101])
    );
    assert_eq!(
        step(&db, &mut b, "SELECT balance FROM t.acct WHERE id = 1").await,
        Ok(vec![110])
    );
    step(&db, &mut a, "COMMIT").await.unwrap();
    assert_eq!(
        step(&db, &mut b, "COMMIT").await,
        Err(ErrorCode::TransactionConflict),
        "the second writer of the row conflicts"
    );
    assert!(!b.in_transaction(), "a failed COMMIT ends the transaction");
    // c still reads its snapshot, scans and lookups alike.
    assert_eq!(
        step(&db, &mut c, "SELECT balance FROM t.acct WHERE id = 1").await,
        Ok(vec![100])
    );
    assert_eq!(
        step(&db, &mut c, "SELECT SUM(balance) FROM t.acct").await,
        Ok(vec![300])
    );
    step(&db, &mut c, "COMMIT").await.unwrap();
    let mut fresh = ClientSession::default();
    assert_eq!(
        step(&db, &mut fresh, "SELECT balance FROM t.acct WHERE id = 1").await,
        Ok(vec![101])
    );

    // Two inserts of one new key: the second commit conflicts.
    step(&db, &mut a, "BEGIN; INSERT INTO t.acct VALUES (9, 1)")
        .await
        .unwrap();
    step(&db, &mut b, "BEGIN; INSERT INTO t.acct VALUES (9, 2)")
        .await
        .unwrap();
    step(&db, &mut b, "COMMIT").await.unwrap();
    assert_eq!(
        step(&db, &mut a, "COMMIT").await,
        Err(ErrorCode::TransactionConflict)
    );
    assert_eq!(
        step(&db, &mut fresh, "SELECT balance FROM t.acct WHERE id = 9").await,
        Ok(vec![2])
    );

    // Writes to different rows both commit.
    step(
        &db,
        &mut a,
        "BEGIN; UPDATE t.acct SET balance = 0 WHERE id = 2",
    )
    .await
    .unwrap();
    step(
        &db,
        &mut b,
        "BEGIN; UPDATE t.acct SET balance = 0 WHERE id = 3",
    )
    .await
    .unwrap();
    step(&db, &mut a, "COMMIT").await.unwrap();
    step(&db, &mut b, "COMMIT").await.unwrap();
    assert_eq!(
        step(&db, &mut fresh, "SELECT SUM(balance) FROM t.acct").await,
        Ok(vec![103])
    );

    // A write committed outside a transaction also wins over one inside.
    step(&db, &mut a, "BEGIN; DELETE FROM t.acct WHERE id = 1")
        .await
        .unwrap();
    run(&db, "ta", "UPDATE t.acct SET balance = 5 WHERE id = 1").await;
    assert_eq!(
        step(&db, &mut a, "COMMIT").await,
        Err(ErrorCode::TransactionConflict)
    );
    assert_eq!(
        step(&db, &mut fresh, "SELECT balance FROM t.acct WHERE id = 1").await,
        Ok(vec![5])
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_during_a_transaction_never_shows_it_a_wrong_row() {
    let (_dir, db) = setup().await;
    let mut a = ClientSession::default();
    // Flushed before BEGIN: read from the files as of the snapshot.
    db.flush_table("t", "acct", FlushHooks::default())
        .await
        .unwrap();
    step(&db, &mut a, "BEGIN").await.unwrap();
    assert_eq!(
        step(&db, &mut a, "SELECT SUM(balance) FROM t.acct").await,
        Ok(vec![300])
    );
    run(&db, "ta", "UPDATE t.acct SET balance = 0 WHERE id = 2").await;
    // Not yet flushed: the snapshot still reads the old version.
    assert_eq!(
        step(&db, &mut a, "SELECT balance FROM t.acct WHERE id = 2").await,
        Ok(vec![100])
    );
    // Flushed after BEGIN: the old version left the hot tier, so the
    // transaction cannot go on reading its snapshot; it fails, never
    // answering from the newer files.
    db.flush_table("t", "acct", FlushHooks::default())
        .await
        .unwrap();
    assert_eq!(
        step(&db, &mut a, "SELECT balance FROM t.acct WHERE id = 2").await,
        Err(ErrorCode::TransactionConflict)
    );
    assert!(!a.in_transaction());
    assert_eq!(
        step(&db, &mut a, "SELECT SUM(balance) FROM t.acct").await,
        Ok(vec![200])
    );
    db.close().await;
}

/// Read-compute-write transfers from several sessions at once, each
/// computing the new balances on the client from what its transaction
/// read: any lost update would break the serial-order check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_read_compute_write_transfers_equal_a_serial_order() {
    let (_dir, db) = setup().await;
    let db = std::sync::Arc::new(db);
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut session = ClientSession::default();
            let mut x = t * 7 + 1;
            for _ in 0..25 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let from = 1 + (x >> 33) % 3;
                let to = 1 + (from % 3);
                let amount = 1 + ((x >> 40) % 9) as i64;
                let read = |id: u64| format!("SELECT balance FROM t.acct WHERE id = {id}");
                step(&db, &mut session, "BEGIN").await.unwrap();
                let a = step(&db, &mut session, &read(from)).await.unwrap()[0];
                // Let other sessions interleave between read and write.
                tokio::task::yield_now().await;
                let b = step(&db, &mut session, &read(to)).await.unwrap()[0];
                let writes = format!(
                    "UPDATE t.acct SET balance = {} WHERE id = {from}; \
                     UPDATE t.acct SET balance = {} WHERE id = {to}; COMMIT",
                    a - amount,
                    b + amount
                );
                match step(&db, &mut session, &writes).await {
                    Ok(_) => committed.push((from, to, amount)),
                    Err(ErrorCode::TransactionConflict) => {}
                    Err(other) => panic!("{writes}: {other}"),
                }
            }
            committed
        }));
    }
    let mut want = [0i64, 100, 100, 100];
    let mut count = 0;
    for task in tasks {
        for (from, to, amount) in task.await.unwrap() {
            want[from as usize] -= amount;
            want[to as usize] += amount;
            count += 1;
        }
    }
    assert!(count > 0);
    let mut fresh = ClientSession::default();
    let got = step(&db, &mut fresh, "SELECT balance FROM t.acct ORDER BY id")
        .await
        .unwrap();
    assert_eq!(got, want[1..].to_vec(), "{count} committed transfers");
}

/// A transaction's writes are held in memory until COMMIT, so they are
/// bounded: one row over the bound is a clear error and nothing is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_over_its_row_bound_is_refused_whole() {
    let (_dir, db) = setup().await;
    let mut a = ClientSession::default();
    let over = kalamdb_core::MAX_TRANSACTION_ROWS as i64 + 1;
    let sql = format!(
        "BEGIN; INSERT INTO t.acct (id, balance) SELECT value + 10, 0 FROM generate_series(1, {over}); COMMIT"
    );
    let error = db
        .execute_in(&mut a, &sql, &[], &caller("ta"))
        .await
        .unwrap_err();
    assert_eq!(error.error.code(), ErrorCode::ResourceExhausted);
    assert!(
        error
            .to_string()
            .contains("a transaction may write at most"),
        "{error}"
    );
    assert!(!a.in_transaction());
    assert_eq!(
        step(&db, &mut a, "SELECT COUNT(*) FROM t.acct").await,
        Ok(vec![3]),
        "nothing of it was written"
    );
    db.close().await;
}
