//! Results do not depend on flushes: random sequences of INSERT, UPDATE,
//! DELETE, flushes, restarts and flushes cut at a fail point (then a
//! restart, as after a crash), run against the engine and against a plain
//! map. After every step each user's rows, point lookups and counts must
//! equal the map's, whichever tier holds them.

use crate::util::{caller, create_users, open};
use kalamdb_core::arrow::array::AsArray;
use kalamdb_core::arrow::datatypes::Int64Type;
use kalamdb_core::KalamDb;
use kalamdb_core::{FailPoint, FlushHooks};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeMap;
use std::path::Path;

const USERS: [&str; 2] = ["ma", "mb"];
/// Few keys, so inserts collide with live and deleted rows often.
const KEYS: i64 = 12;

#[derive(Debug, Clone)]
enum Op {
    Insert {
        user: usize,
        ids: Vec<i64>,
        v: i64,
    },
    Update {
        user: usize,
        from: i64,
        to: i64,
        add: i64,
    },
    Delete {
        user: usize,
        from: i64,
        to: i64,
    },
    Flush,
    Restart,
    CrashedFlush(FailPoint),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    let key = 0..KEYS;
    prop_oneof![
        4 => (user.clone(), prop::collection::vec(key.clone(), 1..4), -50i64..50)
            .prop_map(|(user, ids, v)| Op::Insert { user, ids, v }),
        2 => (user.clone(), key.clone(), 0i64..4, -5i64..5)
            .prop_map(|(user, from, span, add)| Op::Update { user, from, to: from + span, add }),
        2 => (user, key, 0i64..3).prop_map(|(user, from, span)| Op::Delete { user, from, to: from + span }),
        2 => Just(Op::Flush),
        1 => Just(Op::Restart),
        1 => prop_oneof![
            Just(FailPoint::AfterFileWritten),
            Just(FailPoint::AfterFirstCommit),
            Just(FailPoint::AfterCommitBeforeDelete),
        ]
        .prop_map(Op::CrashedFlush),
    ]
}

/// user → id → v
type Model = Vec<BTreeMap<i64, i64>>;

async fn execute(db: &KalamDb, user: &str, sql: &str) -> Result<(), String> {
    db.execute(sql, &[], None, &caller(user))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn rows(db: &KalamDb, user: &str, sql: &str) -> Vec<(i64, i64)> {
    let results = db
        .execute(sql, &[], None, &caller(user))
        .await
        .unwrap_or_else(|e| panic!("{user}: {sql}: {e}"));
    let mut out = Vec::new();
    for batch in &results[0].batches {
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let vs = batch.column(1).as_primitive::<Int64Type>();
        for r in 0..batch.num_rows() {
            out.push((ids.value(r), vs.value(r)));
        }
    }
    out
}

/// Applies one step to both; an INSERT of a live key must fail (and change
/// nothing) in both.
async fn apply(db: KalamDb, dir: &Path, model: &mut Model, op: &Op) -> KalamDb {
    match op {
        Op::Insert { user, ids, v } => {
            let mut seen = std::collections::BTreeSet::new();
            let repeats = ids.iter().any(|id| !seen.insert(*id));
            let live = ids.iter().any(|id| model[*user].contains_key(id));
            let values: Vec<String> = ids.iter().map(|id| format!("({id}, {v})")).collect();
            let sql = format!("INSERT INTO m.kv (id, v) VALUES {}", values.join(", "));
            let outcome = execute(&db, USERS[*user], &sql).await;
            if repeats || live {
                assert!(outcome.is_err(), "{sql} should fail: {model:?}");
            } else {
                outcome.unwrap_or_else(|e| panic!("{sql}: {e}"));
                for id in ids {
                    model[*user].insert(*id, *v);
                }
            }
            db
        }
        Op::Update {
            user,
            from,
            to,
            add,
        } => {
            let sql = format!("UPDATE m.kv SET v = v + {add} WHERE id BETWEEN {from} AND {to}");
            execute(&db, USERS[*user], &sql).await.unwrap();
            for (_, v) in model[*user].range_mut(from..=to) {
                *v += add;
            }
            db
        }
        Op::Delete { user, from, to } => {
            let sql = format!("DELETE FROM m.kv WHERE id >= {from} AND id <= {to}");
            execute(&db, USERS[*user], &sql).await.unwrap();
            model[*user].retain(|id, _| !(from..=to).contains(&id));
            db
        }
        Op::Flush => {
            db.flush_table("m", "kv", FlushHooks::default())
                .await
                .unwrap();
            db
        }
        Op::Restart => {
            db.close().await;
            reopen(dir).await
        }
        Op::CrashedFlush(point) => {
            let hooks = FlushHooks {
                fail_at: Some(*point),
                ..FlushHooks::default()
            };
            // With nothing to flush there is nothing to cut.
            let _ = db.flush_table("m", "kv", hooks).await;
            db.close().await;
            reopen(dir).await
        }
    }
}

async fn reopen(dir: &Path) -> KalamDb {
    let db = open(dir);
    db.recover().await.unwrap();
    db
}

async fn check(db: &KalamDb, model: &Model, step: usize, op: &Op) {
    for (u, user) in USERS.iter().enumerate() {
        let want: Vec<(i64, i64)> = model[u].iter().map(|(k, v)| (*k, *v)).collect();
        let got = rows(db, user, "SELECT id, v FROM m.kv ORDER BY id").await;
        assert_eq!(got, want, "{user} after step {step} ({op:?})");
        // Point lookups take their own path (only the files that may hold
        // the key); a deleted key must stay deleted there too.
        for id in [0, KEYS / 2, KEYS - 1] {
            let got = rows(db, user, &format!("SELECT id, v FROM m.kv WHERE id = {id}")).await;
            let want: Vec<(i64, i64)> = model[u].get(&id).map(|v| (id, *v)).into_iter().collect();
            assert_eq!(got, want, "{user}: id {id} after step {step} ({op:?})");
        }
        // Answered by direct reads: the first keys in order, an IN list.
        let got = rows(db, user, "SELECT id, v FROM m.kv ORDER BY id LIMIT 3").await;
        assert_eq!(
            got,
            want[..want.len().min(3)],
            "{user}: LIMIT 3 after step {step}"
        );
        let got = rows(db, user, "SELECT id, v FROM m.kv WHERE id IN (1, 2, 3)").await;
        let listed: Vec<(i64, i64)> = want
            .iter()
            .filter(|(k, _)| (1..=3).contains(k))
            .copied()
            .collect();
        assert_eq!(got, listed, "{user}: IN after step {step}");
        let got = rows(db, user, "SELECT count(*), coalesce(sum(v), 0) FROM m.kv").await;
        let want = (model[u].len() as i64, model[u].values().sum::<i64>());
        assert_eq!(got, vec![want], "{user}: count, sum after step {step}");
    }
}

#[test]
fn results_equal_the_model_across_flushes_restarts_and_crashes() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cases = std::env::var("KALAMDB_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(op(), 1..30), |ops| {
            runtime.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let mut db = open(dir.path());
                execute(
                    &db,
                    "root",
                    "CREATE NAMESPACE m; CREATE USER TABLE m.kv \
                     (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, note TEXT NOT NULL DEFAULT 'n')",
                )
                .await
                .unwrap();
                create_users(&db, &USERS).await;
                let mut model: Model = vec![BTreeMap::new(); USERS.len()];
                for (step, op) in ops.iter().enumerate() {
                    db = apply(db, dir.path(), &mut model, op).await;
                    check(&db, &model, step, op).await;
                }
                db.close().await;
            });
            Ok(())
        })
        .unwrap();
}
