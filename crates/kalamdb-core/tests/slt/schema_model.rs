//! Schema changes never change what rows hold: random sequences of ALTER
//! TABLE (add a column with or without a default, drop one, add a dropped
//! name again, rename, widen INT to BIGINT, change a default), writes,
//! flushes, compactions, restarts and cut flushes, run against the engine
//! and against a plain model. After every step each user's rows, under the
//! current names, equal the model's, whichever tier and whichever schema
//! version wrote them.

use crate::util::{caller, create_users, open};
use kalamdb_core::arrow::array::{Array, AsArray};
use kalamdb_core::arrow::compute::cast;
use kalamdb_core::arrow::datatypes::{DataType, Int64Type};
use kalamdb_core::{FailPoint, FlushHooks, KalamDb};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeMap;
use std::path::Path;

const USERS: [&str; 2] = ["sa", "sb"];
const KEYS: i64 = 8;
/// Column names come from a small pool, so dropped names come back.
const NAMES: [&str; 4] = ["c0", "c1", "c2", "c3"];

#[derive(Debug, Clone)]
enum Op {
    Insert {
        user: usize,
        id: i64,
        v: i64,
    },
    Update {
        user: usize,
        column: usize,
        add: i64,
    },
    Delete {
        user: usize,
        id: i64,
    },
    Add {
        name: usize,
        default: Option<i64>,
        int: bool,
    },
    Drop {
        column: usize,
    },
    Rename {
        column: usize,
        to: usize,
    },
    Widen {
        column: usize,
    },
    SetDefault {
        column: usize,
        default: Option<i64>,
    },
    Flush,
    Compact,
    Restart,
    CrashedFlush,
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS.len();
    let column = 0..NAMES.len();
    prop_oneof![
        4 => (user.clone(), 0..KEYS, -9i64..9).prop_map(|(user, id, v)| Op::Insert { user, id, v }),
        2 => (user.clone(), column.clone(), -3i64..3)
            .prop_map(|(user, column, add)| Op::Update { user, column, add }),
        1 => (user, 0..KEYS).prop_map(|(user, id)| Op::Delete { user, id }),
        2 => (0..NAMES.len(), prop::option::of(-5i64..5), any::<bool>())
            .prop_map(|(name, default, int)| Op::Add { name, default, int }),
        1 => column.clone().prop_map(|column| Op::Drop { column }),
        1 => (column.clone(), 0..NAMES.len()).prop_map(|(column, to)| Op::Rename { column, to }),
        1 => column.clone().prop_map(|column| Op::Widen { column }),
        1 => (column, prop::option::of(-5i64..5))
            .prop_map(|(column, default)| Op::SetDefault { column, default }),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Restart),
        1 => Just(Op::CrashedFlush),
    ]
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    int: bool,
    default: Option<i64>,
}

/// The table's extra columns (beyond `id`), and each user's rows: id →
/// one value per column, in column order.
#[derive(Debug, Default)]
struct Model {
    columns: Vec<Column>,
    rows: Vec<BTreeMap<i64, Vec<Option<i64>>>>,
}

async fn execute(db: &KalamDb, user: &str, sql: &str) -> Result<(), String> {
    db.execute(sql, &[], None, &caller(user))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn apply(db: KalamDb, dir: &Path, model: &mut Model, op: &Op) -> KalamDb {
    match op {
        Op::Insert { user, id, v } => {
            let live = model.rows[*user].contains_key(id);
            // The first column (if any) gets `v`; the rest their defaults.
            let (names, values) = match model.columns.first() {
                Some(c) => (format!("id, {}", c.name), format!("{id}, {v}")),
                None => ("id".to_string(), id.to_string()),
            };
            let sql = format!("INSERT INTO m.kv ({names}) VALUES ({values})");
            let outcome = execute(&db, USERS[*user], &sql).await;
            if live {
                assert!(outcome.is_err(), "{sql} should fail");
            } else {
                outcome.unwrap_or_else(|e| panic!("{sql}: {e}"));
                let row = model
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| if i == 0 { Some(*v) } else { c.default })
                    .collect();
                model.rows[*user].insert(*id, row);
            }
            db
        }
        Op::Update { user, column, add } => {
            let Some(c) = model.columns.get(*column) else {
                return db;
            };
            let sql = format!("UPDATE m.kv SET {0} = {0} + {add} WHERE id >= 0", c.name);
            execute(&db, USERS[*user], &sql).await.unwrap();
            for row in model.rows[*user].values_mut() {
                if let Some(v) = &mut row[*column] {
                    *v += add;
                }
            }
            db
        }
        Op::Delete { user, id } => {
            let sql = format!("DELETE FROM m.kv WHERE id = {id}");
            execute(&db, USERS[*user], &sql).await.unwrap();
            model.rows[*user].remove(id);
            db
        }
        Op::Add { name, default, int } => {
            let name = NAMES[*name];
            let exists = model.columns.iter().any(|c| c.name == name);
            let t = if *int { "INT" } else { "BIGINT" };
            let sql = match default {
                Some(d) => format!("ALTER TABLE m.kv ADD COLUMN {name} {t} DEFAULT {d}"),
                None => format!("ALTER TABLE m.kv ADD COLUMN {name} {t}"),
            };
            let outcome = execute(&db, "root", &sql).await;
            if exists {
                assert!(outcome.is_err(), "{sql} should fail");
                return db;
            }
            outcome.unwrap_or_else(|e| panic!("{sql}: {e}"));
            model.columns.push(Column {
                name: name.into(),
                int: *int,
                default: *default,
            });
            for rows in &mut model.rows {
                for row in rows.values_mut() {
                    row.push(*default);
                }
            }
            db
        }
        Op::Drop { column } => {
            if *column >= model.columns.len() {
                return db;
            }
            let name = model.columns.remove(*column).name;
            execute(&db, "root", &format!("ALTER TABLE m.kv DROP COLUMN {name}"))
                .await
                .unwrap();
            for rows in &mut model.rows {
                for row in rows.values_mut() {
                    row.remove(*column);
                }
            }
            db
        }
        Op::Rename { column, to } => {
            let to = NAMES[*to];
            let Some(c) = model.columns.get(*column) else {
                return db;
            };
            let sql = format!("ALTER TABLE m.kv RENAME COLUMN {} TO {to}", c.name);
            let taken = model.columns.iter().any(|c| c.name == to);
            let outcome = execute(&db, "root", &sql).await;
            if taken {
                assert!(outcome.is_err(), "{sql} should fail");
                return db;
            }
            model.columns[*column].name = to.into();
            outcome.unwrap_or_else(|e| panic!("{sql}: {e}"));
            db
        }
        Op::Widen { column } => {
            let Some(c) = model.columns.get_mut(*column) else {
                return db;
            };
            c.int = false;
            let sql = format!("ALTER TABLE m.kv ALTER COLUMN {} TYPE BIGINT", c.name);
            execute(&db, "root", &sql).await.unwrap();
            db
        }
        Op::SetDefault { column, default } => {
            let Some(c) = model.columns.get_mut(*column) else {
                return db;
            };
            c.default = *default;
            let sql = match default {
                Some(d) => format!("ALTER TABLE m.kv ALTER COLUMN {} SET DEFAULT {d}", c.name),
                None => format!("ALTER TABLE m.kv ALTER COLUMN {} DROP DEFAULT", c.name),
            };
            execute(&db, "root", &sql).await.unwrap();
            db
        }
        Op::Flush => {
            db.flush_table("m", "kv", FlushHooks::default())
                .await
                .unwrap();
            db
        }
        Op::Compact => {
            db.compact_table("m", "kv", Default::default())
                .await
                .unwrap();
            db
        }
        Op::Restart => {
            db.close().await;
            reopen(dir).await
        }
        Op::CrashedFlush => {
            let hooks = FlushHooks {
                fail_at: Some(FailPoint::AfterFileWritten),
                ..FlushHooks::default()
            };
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
    let names: Vec<&str> = model.columns.iter().map(|c| c.name.as_str()).collect();
    let select = std::iter::once("id")
        .chain(names.iter().copied())
        .collect::<Vec<_>>()
        .join(", ");
    for (u, user) in USERS.iter().enumerate() {
        let results = db
            .execute(
                &format!("SELECT {select} FROM m.kv ORDER BY id"),
                &[],
                None,
                &caller(user),
            )
            .await
            .unwrap_or_else(|e| panic!("{user} after step {step} ({op:?}): {e}"));
        let mut got: Vec<(i64, Vec<Option<i64>>)> = Vec::new();
        for batch in &results[0].batches {
            let columns: Vec<_> = batch
                .columns()
                .iter()
                .map(|c| cast(c, &DataType::Int64).unwrap())
                .collect();
            for r in 0..batch.num_rows() {
                let id = columns[0].as_primitive::<Int64Type>().value(r);
                let values = columns[1..]
                    .iter()
                    .map(|c| (!c.is_null(r)).then(|| c.as_primitive::<Int64Type>().value(r)))
                    .collect();
                got.push((id, values));
            }
        }
        let want: Vec<(i64, Vec<Option<i64>>)> = model.rows[u]
            .iter()
            .map(|(id, row)| (*id, row.clone()))
            .collect();
        assert_eq!(
            got, want,
            "{user} after step {step} ({op:?}), columns {names:?}"
        );
    }
}

#[test]
fn rows_equal_the_model_across_schema_changes_flushes_and_restarts() {
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
        .run(&prop::collection::vec(op(), 1..40), |ops| {
            runtime.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let mut db = open(dir.path());
                execute(
                    &db,
                    "root",
                    "CREATE NAMESPACE m; CREATE USER TABLE m.kv (id BIGINT PRIMARY KEY)",
                )
                .await
                .unwrap();
                create_users(&db, &USERS).await;
                let mut model = Model {
                    columns: Vec::new(),
                    rows: vec![BTreeMap::new(); USERS.len()],
                };
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
