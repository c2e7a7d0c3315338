//! The change log across flushes, compactions and restarts: a resume
//! replays the same changes (values, old values, `_seq`) whichever tier
//! holds the versions its inserts refer to. A flush moves those versions
//! to Parquet without copying them into the log, so after it the log's
//! references are read from the files; superseded versions get their
//! values in the log before a flush or compaction removes them.

use crate::compaction::create_kv;
use crate::util::{caller, open, run};
use kalamdb_core::{CompactHooks, FlushHooks, KalamDb, LiveChange, Outbox, SubscribeRequest};
use kalamdb_store::ScopeKey;

const USERS: [&str; 2] = ["u1", "u2"];

/// Every change after `_seq` 0 a resume of `user` replays, as text.
async fn replay(db: &KalamDb, user: &str) -> Vec<String> {
    let (outbox, _rx) = Outbox::new(8);
    let request = SubscribeRequest {
        subscription_id: "replay".into(),
        connection_id: format!("c-{user}"),
        sql: "SELECT * FROM c.kv".into(),
        from_seq_id: Some(0),
        ..SubscribeRequest::default()
    };
    let mut live = db.subscribe(&caller(user), request, outbox).await.unwrap();
    let mut replay = live.replay.take().expect("a resume replays");
    let mut out = Vec::new();
    loop {
        let (back, page) = tokio::task::spawn_blocking(move || {
            let page = replay.next_page();
            (replay, page)
        })
        .await
        .unwrap();
        replay = back;
        match page.unwrap_or_else(|e| panic!("{user}: {e:?}")) {
            Some(changes) => out.extend(changes.iter().map(describe)),
            None => break,
        }
    }
    db.unsubscribe(&live.feed);
    out
}

fn describe(change: &LiveChange) -> String {
    let rows = |batch: &Option<kalamdb_core::arrow::record_batch::RecordBatch>| {
        batch.as_ref().map(|b| {
            (0..b.num_rows())
                .map(|r| {
                    b.columns()
                        .iter()
                        .map(|c| crate::cell(c.as_ref(), r))
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect::<Vec<_>>()
        })
    };
    format!(
        "{:?} @{} new {:?} old {:?}",
        change.kind,
        change.last_seq,
        rows(&change.rows),
        rows(&change.old_values)
    )
}

async fn replays(db: &KalamDb) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for user in USERS {
        all.push(replay(db, user).await);
    }
    all
}

/// Whether the log of `user` reads from the hot tier alone.
fn hot_only(db: &KalamDb, user: &str) -> bool {
    let uid = db.services().catalog().table("c", "kv").unwrap().uid;
    db.services()
        .store()
        .changes(&ScopeKey::new(uid, Some(user)), 0, u64::MAX, usize::MAX)
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_replays_the_same_changes_after_flushes_compaction_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = open(dir.path());
    create_kv(&db, &USERS).await;
    for round in 0..4i64 {
        for user in USERS {
            let first = round * 10;
            let values: Vec<String> = (first..first + 10)
                .map(|id| format!("({id}, {id})"))
                .collect();
            run(
                &db,
                user,
                &format!("INSERT INTO c.kv (id, v) VALUES {}", values.join(",")),
            )
            .await;
            // Rows inserted and then overwritten before the flush (their
            // insert's version is superseded in the hot tier), rows of
            // earlier flushes updated and deleted, a deleted key inserted
            // again (two inserts of one key in the log).
            run(
                &db,
                user,
                &format!(
                    "UPDATE c.kv SET v = -v WHERE id IN ({}, {})",
                    first + 1,
                    round * 3
                ),
            )
            .await;
            run(
                &db,
                user,
                &format!(
                    "DELETE FROM c.kv WHERE id IN ({}, {})",
                    first + 2,
                    round * 7
                ),
            )
            .await;
            run(
                &db,
                user,
                &format!(
                    "INSERT INTO c.kv (id, v, t) VALUES ({}, 5, 'again')",
                    first + 2
                ),
            )
            .await;
        }
        let before = replays(&db).await;
        if round == 0 {
            assert!(hot_only(&db, "u1"), "every referenced version is hot");
        }
        db.flush_table("c", "kv", FlushHooks::default())
            .await
            .unwrap();
        assert_eq!(replays(&db).await, before, "after flush {round}");
        assert!(
            !hot_only(&db, "u1"),
            "the flushed inserts are read from the files, not copied into the log"
        );
    }
    let before = replays(&db).await;
    assert_eq!(
        before[0].len(),
        4 * 4,
        "per round: an insert, an update, a delete, a re-insert"
    );

    // Compaction drops the versions later flushes superseded: their
    // references get their values first.
    let stats = db
        .compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!((stats.files_in, stats.files_out), (8, 2), "{stats:?}");
    assert!(stats.rows_out < stats.rows_in, "{stats:?}");
    assert_eq!(replays(&db).await, before, "after compaction");

    // Hot rows over the compacted ones, then a restart.
    run(&db, "u1", "UPDATE c.kv SET v = 7 WHERE id = 0").await;
    run(&db, "u1", "INSERT INTO c.kv (id, v) VALUES (500, 1)").await;
    let before = replays(&db).await;
    db.close().await;
    db = open(dir.path());
    assert_eq!(replays(&db).await, before, "after a restart");
    db.flush_table("c", "kv", FlushHooks::default())
        .await
        .unwrap();
    db.compact_table("c", "kv", CompactHooks::default())
        .await
        .unwrap();
    assert_eq!(
        replays(&db).await,
        before,
        "after another flush and compaction"
    );
}
