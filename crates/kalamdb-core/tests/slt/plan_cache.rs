//! Kept plans answer exactly as fresh ones do: each query below runs with
//! several parameter sets twice, by a text already run (its kept plan) and
//! by a text never run before (planned afresh), and the names, types, rows
//! or errors must be equal. Then what must make a kept plan unusable does:
//! a changed table, another caller, role or namespace, and NOW() is never
//! frozen.

use crate::direct_reads::{outcome, outcome_as, setup};
use crate::util::{caller, query, run};
use kalamdb_commons::{Role, UserId};
use kalamdb_core::{Caller, KalamDb};
use serde_json::{json, Value};

/// Runs `sql` by its kept plan and afresh (the same query under a text
/// longer than the statement cache's 4 KiB, so nothing is kept for it and
/// it is planned with its values bound before optimizing); returns whether
/// the kept plan was used.
async fn same_as_fresh(db: &KalamDb, user: &str, sql: &str, params: &[Value]) -> bool {
    let pad = "x".repeat(4096);
    let fresh = outcome(db, user, &format!("{sql} /* {pad} */"), params).await;
    let before = db.plans_reused();
    let kept = outcome(db, user, sql, params).await;
    let reused = db.plans_reused() > before;
    // An error's text may name the first row it met, and rows are not in
    // a fixed order without ORDER BY: the codes must be equal.
    let code = |e: String| e.split(']').next().unwrap_or_default().to_string();
    let (kept, fresh) = (kept.map_err(code), fresh.map_err(code));
    assert_eq!(
        kept, fresh,
        "{user}: {sql} {params:?} (kept plan: {reused})"
    );
    reused
}

/// SHOW STATS' (scope_scans, key_lookups) of `d.<table>`.
async fn reads(db: &KalamDb, table: &str) -> (u64, u64) {
    let rows = query(db, "root", &format!("SHOW STATS FOR TABLE d.{table}")).await;
    // scope_scans and key_lookups.
    (rows[0][12].parse().unwrap(), rows[0][13].parse().unwrap())
}

/// An engine over the shared test data with every query planned, so that
/// kept plans answer them all.
async fn planned_engine() -> (tempfile::TempDir, KalamDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::util::open(dir.path());
    setup(&db).await;
    db.set_direct_reads(false);
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_plans_answer_as_fresh_ones() {
    let (_dir, db) = planned_engine().await;
    let cases: Vec<(&str, Vec<Vec<Value>>)> = vec![
        (
            "SELECT * FROM d.u WHERE id = $1",
            vec![
                vec![json!(3)],
                vec![json!(5)],
                vec![json!(41)],
                vec![json!(9)],
                // Not of the parameter's type: planned with the value.
                vec![json!("3")],
                vec![json!(5_000_000_000_i64)],
                vec![json!(1.5)],
                vec![Value::Null],
                vec![json!(true)],
                vec![],
                vec![json!(1), json!(2)],
            ],
        ),
        (
            "SELECT name FROM d.u WHERE id IN ($1, $2) ORDER BY name",
            vec![vec![json!(41), json!(2)], vec![json!(1), json!("x")]],
        ),
        (
            "SELECT * FROM d.s WHERE code = $1",
            vec![vec![json!("a")], vec![json!("c'd")], vec![json!(1)]],
        ),
        (
            "SELECT * FROM d.b WHERE id = $1",
            vec![vec![json!(9_007_199_254_740_993_i64)], vec![json!(-5)]],
        ),
        (
            "SELECT id, name FROM d.u WHERE big > $1 ORDER BY id LIMIT 5",
            vec![vec![json!(3_000_000_000_i64)], vec![json!(0)]],
        ),
        (
            "SELECT count(*), sum(big), min(name) FROM d.u WHERE ok = $1",
            vec![vec![json!(true)], vec![json!(false)]],
        ),
        (
            "SELECT u.id, b.v FROM d.u u JOIN d.b b ON CAST(b.v AS INT) = u.id WHERE u.id < $1 ORDER BY u.id",
            vec![vec![json!(3)], vec![json!(100)]],
        ),
        (
            "SELECT id FROM d.u WHERE id = (SELECT max(id) FROM d.u WHERE id < $1)",
            vec![vec![json!(10)], vec![json!(5)]],
        ),
        (
            "SELECT id, _seq > 0 AS s FROM d.u WHERE id <= $1 ORDER BY id",
            vec![vec![json!(4)]],
        ),
        ("SELECT * FROM d.u WHERE id >= 38 ORDER BY id DESC", vec![vec![]]),
        (
            "SELECT id FROM d.u WHERE _deleted = true ORDER BY id",
            vec![vec![]],
        ),
        ("SELECT $1 || 'x'", vec![vec![json!("a")], vec![json!(1)]]),
        (
            "SELECT id, CURRENT_USER AS who FROM d.u WHERE id = $1",
            vec![vec![json!(1)]],
        ),
        (
            "SELECT id FROM d.u WHERE ts < now() AND id < $1 ORDER BY id",
            vec![vec![json!(4)]],
        ),
    ];
    for user in ["da", "db"] {
        for (sql, param_sets) in &cases {
            // The first run keeps the plan.
            let _ = outcome(&db, user, sql, &param_sets[0]).await;
            for params in param_sets {
                assert!(
                    same_as_fresh(&db, user, sql, params).await,
                    "{sql} {params:?}: the kept plan was not used"
                );
            }
        }
    }
    // System tables are made for each statement: never kept.
    for _ in 0..2 {
        assert!(
            !same_as_fresh(
                &db,
                "da",
                "SELECT user_id FROM system.users WHERE user_id = $1",
                &[json!("da")]
            )
            .await
        );
    }
    // A kept plan with a bound key still seeks rather than scanning.
    let (scans, lookups) = reads(&db, "u").await;
    for id in [1, 2, 3] {
        outcome(
            &db,
            "da",
            "SELECT name FROM d.u WHERE id = $1",
            &[json!(id)],
        )
        .await
        .unwrap();
    }
    assert_eq!(reads(&db, "u").await, (scans, lookups + 3));
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_plans_follow_changes_to_tables_callers_and_time() {
    let (_dir, db) = planned_engine().await;
    let sql = "SELECT * FROM t WHERE id = $1";
    run(
        &db,
        "root",
        "CREATE NAMESPACE e; \
         CREATE USER TABLE d.t (id INT PRIMARY KEY, a TEXT); \
         CREATE USER TABLE e.t (id INT PRIMARY KEY, b INT)",
    )
    .await;
    run(
        &db,
        "da",
        "INSERT INTO d.t VALUES (1, 'd'); INSERT INTO e.t VALUES (1, 7)",
    )
    .await;
    let in_ns = |ns: &'static str| {
        let db = &db;
        async move { outcome_as(db, &caller("da"), Some(ns), sql, &[json!(1)]).await }
    };
    let d = in_ns("d").await.unwrap();
    assert_eq!(d.1, vec![vec!["1".to_string(), "d".to_string()]]);
    // The same text in another namespace reads that namespace's table.
    let e = in_ns("e").await.unwrap();
    assert_eq!(e.1, vec![vec!["1".to_string(), "7".to_string()]]);
    let before = db.plans_reused();
    assert_eq!(in_ns("d").await.unwrap(), d);
    assert!(db.plans_reused() > before, "the plan is kept");
    // Dropped and created again with other columns: planned afresh.
    run(
        &db,
        "root",
        "DROP TABLE d.t; CREATE USER TABLE d.t (id INT PRIMARY KEY, c BOOLEAN, a TEXT)",
    )
    .await;
    run(&db, "da", "INSERT INTO d.t VALUES (1, true, 'new')").await;
    let before = db.plans_reused();
    let changed = in_ns("d").await.unwrap();
    assert_eq!(db.plans_reused(), before, "a stale plan was used");
    assert_eq!(
        changed.0.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["id", "c", "a"]
    );
    assert_eq!(changed.1, vec![vec!["1", "true", "new"]]);
    // Each user reads their own rows with the same text.
    assert_eq!(
        outcome_as(&db, &caller("db"), Some("d"), sql, &[json!(1)])
            .await
            .unwrap()
            .1,
        Vec::<Vec<String>>::new()
    );
    // A role that may read a PRIVATE table, and one that may not.
    run(
        &db,
        "root",
        "CREATE SHARED TABLE d.p (id INT PRIMARY KEY) WITH (ACCESS_LEVEL='PRIVATE'); \
         INSERT INTO d.p VALUES (1)",
    )
    .await;
    let private = "SELECT * FROM d.p WHERE id = $1";
    let service = Caller {
        user_id: UserId::new("da").unwrap(),
        role: Role::Service,
    };
    for _ in 0..2 {
        let refused = outcome_as(&db, &caller("da"), None, private, &[json!(1)]).await;
        assert!(refused.unwrap_err().contains("PERMISSION_DENIED"));
        let allowed = outcome_as(&db, &service, None, private, &[json!(1)]).await;
        assert_eq!(allowed.unwrap().1, vec![vec!["1"]]);
    }
    // UPDATE and DELETE keep the plan of the query finding their rows,
    // which never sees deleted rows.
    let update = "UPDATE d.u SET big = big + $2 WHERE id = $1";
    let big = "SELECT big FROM d.u WHERE id = 2";
    let start: i64 = query(&db, "da", big).await[0][0].parse().unwrap();
    for step in 1..=3 {
        let before = db.plans_reused();
        let done = db
            .execute(update, &[json!(2), json!(10)], None, &caller("da"))
            .await
            .unwrap();
        assert_eq!(done[0].row_count, 1);
        assert_eq!(db.plans_reused() > before, step > 1, "step {step}");
        let now: i64 = query(&db, "da", big).await[0][0].parse().unwrap();
        assert_eq!(now, start + 10 * step);
    }
    for _ in 0..2 {
        let done = db
            .execute(
                "UPDATE d.u SET name = 'back' WHERE _deleted = true",
                &[],
                None,
                &caller("da"),
            )
            .await
            .unwrap();
        assert_eq!(done[0].row_count, 0, "a deleted row was updated");
    }
    let delete = "DELETE FROM d.u WHERE id = $1";
    for (id, rows) in [(2, 1), (2, 0), (10, 1)] {
        let done = db
            .execute(delete, &[json!(id)], None, &caller("da"))
            .await
            .unwrap();
        assert_eq!(done[0].row_count, rows, "DELETE id {id}");
    }
    // NOW() is this statement's time, never the kept plan's.
    let now = "SELECT id, CAST(now() AS BIGINT) FROM d.u WHERE id = $1";
    let mut last = 0_i64;
    for _ in 0..3 {
        let (_, rows) = outcome(&db, "da", now, &[json!(1)]).await.unwrap();
        let at: i64 = rows[0][1].parse().unwrap();
        assert!(at > last, "now() did not move: {at} after {last}");
        last = at;
    }
    db.close().await;
}
