//! Direct reads answer exactly as the planner does: every query below runs
//! twice on the same data, once with direct reads on and once planned by
//! DataFusion, and the column names, types, rows (in order) or errors must
//! be equal. The data spans both tiers: flushed rows, rows updated and
//! deleted after their flush, hot rows, other users' rows, NOT NULL
//! columns of many types.

use crate::util::{caller, cells, create_users, open, run};
use kalamdb_core::KalamDb;
use serde_json::json;

/// Column (name, type), rows as text; or the error.
pub(crate) type Outcome = Result<(Vec<(String, String)>, Vec<Vec<String>>), String>;

pub(crate) async fn outcome(
    db: &KalamDb,
    user: &str,
    sql: &str,
    params: &[serde_json::Value],
) -> Outcome {
    outcome_as(db, &caller(user), None, sql, params).await
}

/// [`outcome`] for any caller, in namespace `namespace`.
pub(crate) async fn outcome_as(
    db: &KalamDb,
    caller: &kalamdb_core::Caller,
    namespace: Option<&str>,
    sql: &str,
    params: &[serde_json::Value],
) -> Outcome {
    let results = db
        .execute(sql, params, namespace, caller)
        .await
        .map_err(|e| format!("[{}] {e}", e.error.code()))?;
    let result = &results[0];
    let schema = result.schema.as_ref().expect("a query");
    let columns = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect();
    let rows = cells(result);
    Ok((columns, rows))
}

/// Runs `sql` both ways; returns whether the direct path answered it.
async fn same_both_ways(db: &KalamDb, user: &str, sql: &str, params: &[serde_json::Value]) -> bool {
    db.set_direct_reads(false);
    let planned = outcome(db, user, sql, params).await;
    db.set_direct_reads(true);
    let before = db.direct_reads_served();
    let direct = outcome(db, user, sql, params).await;
    let served = db.direct_reads_served() > before;
    assert_eq!(
        direct, planned,
        "{user}: {sql} {params:?} (direct: {served})"
    );
    served
}

pub(crate) async fn setup(db: &KalamDb) {
    run(
        db,
        "root",
        "CREATE NAMESPACE d; \
         CREATE USER TABLE d.u (id INT PRIMARY KEY, name TEXT NOT NULL, big BIGINT NOT NULL, \
           ok BOOLEAN NOT NULL, x DOUBLE NOT NULL, ts TIMESTAMP NOT NULL, day DATE NOT NULL, \
           doc JSON, note TEXT); \
         CREATE USER TABLE d.b (id BIGINT PRIMARY KEY, v SMALLINT NOT NULL); \
         CREATE SHARED TABLE d.s (code TEXT PRIMARY KEY, n INT NOT NULL)",
    )
    .await;
    create_users(db, &["da", "db"]).await;
    for (user, base) in [("da", 0), ("db", 1000)] {
        let rows: Vec<String> = (1..=40)
            .map(|i| {
                format!(
                    "({i}, 'n{i}', {}, {}, {}.5, '2024-01-{:02}T00:00:00Z', '2024-02-{:02}', \
                     '{{\"k\": {i}}}', NULL)",
                    base + i * 1_000_000_007_i64,
                    i % 2 == 0,
                    i,
                    1 + i % 28,
                    1 + i % 28,
                )
            })
            .collect();
        run(
            db,
            user,
            &format!("INSERT INTO d.u VALUES {}", rows.join(", ")),
        )
        .await;
        run(
            db,
            user,
            "INSERT INTO d.b VALUES (-5, 1), (0, 2), (9007199254740993, 3)",
        )
        .await;
    }
    run(
        db,
        "root",
        "INSERT INTO d.s VALUES ('a', 1), ('b', 2), ('c''d', 3)",
    )
    .await;
    db.flush_table("d", "u", Default::default()).await.unwrap();
    db.flush_table("d", "s", Default::default()).await.unwrap();
    // After the flush: updates and deletes of flushed rows, new hot rows.
    run(
        db,
        "da",
        "UPDATE d.u SET name = 'changed', note = 'hot' WHERE id IN (3, 4)",
    )
    .await;
    run(db, "da", "DELETE FROM d.u WHERE id IN (5, 6, 7)").await;
    run(
        db,
        "da",
        "INSERT INTO d.u VALUES (41, 'n41', 1, true, 0.5, '2024-03-01T00:00:00Z', '2024-03-01', NULL, 'new')",
    )
    .await;
    db.flush_table("d", "u", Default::default()).await.unwrap();
    run(db, "da", "DELETE FROM d.u WHERE id = 8").await;
    run(db, "da", "UPDATE d.u SET big = big + 1 WHERE id = 9").await;
    run(db, "root", "DELETE FROM d.s WHERE code = 'b'").await;
    // d.b stays hot: a tombstone and a key with two versions there.
    run(db, "da", "DELETE FROM d.b WHERE id = 0").await;
    run(db, "da", "UPDATE d.b SET v = 9 WHERE id = -5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_reads_answer_as_the_planner_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    setup(&db).await;
    // Shapes a direct read answers.
    let direct = [
        "SELECT * FROM d.u WHERE id = 1",
        "SELECT * FROM d.u WHERE id = 3",
        "SELECT * FROM d.u WHERE id = 5",
        "SELECT * FROM d.u WHERE id = 8",
        "SELECT * FROM d.u WHERE id = 9",
        "SELECT * FROM d.u WHERE id = 41",
        "SELECT * FROM d.u WHERE id = 4000",
        "SELECT * FROM d.u WHERE id = -1",
        "SELECT * FROM d.u WHERE id = '12'",
        "SELECT * FROM d.u WHERE 12 = id",
        "SELECT * FROM d.u WHERE id IN (41, 1, 5, 1, 9, 99, 30)",
        "select NAME, id as \"Key\", doc, ts, day from D.U where ID = 2",
        "SELECT note AS n FROM d.u WHERE id IN (3, 4, 41)",
        "SELECT * FROM d.u LIMIT 7",
        "SELECT id FROM d.u LIMIT 0",
        "SELECT * FROM d.u ORDER BY id LIMIT 10",
        "SELECT * FROM d.u ORDER BY id ASC LIMIT 100",
        "SELECT COUNT(*) FROM d.u",
        "SELECT count(*) AS n FROM d.u",
        "SELECT COUNT(*) FROM d.u WHERE id IN (1, 5, 9, 77)",
        "SELECT * FROM d.b WHERE id = 9007199254740993",
        "SELECT * FROM d.b WHERE id = -5",
        "SELECT * FROM d.b ORDER BY id LIMIT 2",
        "SELECT COUNT(*) FROM d.b",
        "SELECT * FROM d.s WHERE code = 'c''d'",
        "SELECT * FROM d.s WHERE code IN ('a', 'b', 'z')",
        "SELECT COUNT(*) FROM d.s",
        "SELECT n, code FROM d.s LIMIT 5",
    ];
    for user in ["da", "db"] {
        for sql in direct {
            assert!(
                same_both_ways(&db, user, sql, &[]).await,
                "{sql} was planned"
            );
        }
    }
    // Parameters.
    for (sql, params) in [
        ("SELECT * FROM d.u WHERE id = $1", vec![json!(3)]),
        ("SELECT * FROM d.u WHERE id = $1", vec![json!(5)]),
        (
            "SELECT name FROM d.u WHERE id IN ($1, $2)",
            vec![json!(41), json!(2)],
        ),
        ("SELECT * FROM d.s WHERE code = $1", vec![json!("a")]),
    ] {
        assert!(
            same_both_ways(&db, "da", sql, &params).await,
            "{sql} was planned"
        );
    }
    // A constant query: planned the first time, its result kept after.
    same_both_ways(&db, "da", "SELECT 1", &[]).await;
    assert!(same_both_ways(&db, "da", "SELECT 1", &[]).await);
    same_both_ways(&db, "da", "SELECT 1 AS one, 'x', NULL, -2.5, TRUE", &[]).await;
    assert!(same_both_ways(&db, "da", "SELECT 1 AS one, 'x', NULL, -2.5, TRUE", &[]).await);
    // What a direct read declines is planned, with the planner's answer or
    // error.
    for (sql, params) in [
        ("SELECT * FROM d.u WHERE id = 'abc'", vec![]),
        ("SELECT * FROM d.u WHERE id = 5000000000", vec![]),
        ("SELECT * FROM d.u WHERE id = 1.0", vec![]),
        ("SELECT * FROM d.u WHERE name = 'n1'", vec![]),
        ("SELECT nope FROM d.u WHERE id = 1", vec![]),
        ("SELECT * FROM d.nope WHERE id = 1", vec![]),
        ("SELECT * FROM nope.u WHERE id = 1", vec![]),
        ("SELECT * FROM d.u WHERE id = $1", vec![json!("3")]),
        ("SELECT * FROM d.u WHERE id = $1", vec![json!(3), json!(4)]),
        ("SELECT * FROM d.u WHERE id = $2", vec![json!(3)]),
        ("SELECT * FROM d.u ORDER BY name LIMIT 3", vec![]),
        ("SELECT _seq, id FROM d.u WHERE id = 1", vec![]),
        ("SELECT * FROM system.users WHERE user_id = 'da'", vec![]),
    ] {
        assert!(
            !same_both_ways(&db, "da", sql, &params).await,
            "{sql} went direct"
        );
    }
    // A PRIVATE shared table is refused the same way.
    run(
        &db,
        "root",
        "CREATE SHARED TABLE d.p (id INT PRIMARY KEY) WITH (ACCESS_LEVEL='PRIVATE')",
    )
    .await;
    assert!(!same_both_ways(&db, "da", "SELECT * FROM d.p WHERE id = 1", &[]).await);
    // After a restart (cold files only for the flushed rows) all the same:
    // first with nothing in the file cache (lookups fetch on a blocking
    // thread), then with the cache warm (lookups answered in place).
    db.close().await;
    let db = open(dir.path());
    db.recover().await.unwrap();
    db.set_direct_reads(true);
    let mut first = Vec::new();
    for sql in direct {
        first.push(outcome(&db, "da", sql, &[]).await);
    }
    for (sql, first) in direct.iter().zip(first) {
        assert!(
            same_both_ways(&db, "da", sql, &[]).await,
            "{sql} was planned"
        );
        assert_eq!(outcome(&db, "da", sql, &[]).await, first, "{sql}");
    }
    db.close().await;
}

/// The plan text of `EXPLAIN [ANALYZE] ...`, all rows joined.
async fn explain(db: &KalamDb, sql: &str) -> String {
    let (_, rows) = outcome(db, "da", sql, &[]).await.unwrap();
    rows.into_iter().flatten().collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_what_a_scan_seeks_and_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    setup(&db).await;
    // Keys sought, whatever form they take.
    for (sql, keys) in [
        ("EXPLAIN SELECT name FROM d.u WHERE id = 5 AND big > 0", 1),
        (
            "EXPLAIN SELECT name FROM d.u WHERE id IN (1, 2, 3) AND ok",
            3,
        ),
        (
            "EXPLAIN SELECT name FROM d.u WHERE (id = 1 OR id = 2) AND ok",
            2,
        ),
        ("EXPLAIN SELECT name FROM d.u WHERE id = '7' AND ok", 1),
        (
            "EXPLAIN SELECT b.v FROM d.b b WHERE b.id = 9007199254740993 AND b.v > 0",
            1,
        ),
    ] {
        let plan = explain(&db, sql).await;
        assert!(
            plan.contains(&format!(
                "ScopeScanExec: table=d.{}, keys={keys}",
                if sql.contains("d.b") { "b" } else { "u" }
            )),
            "{sql}:\n{plan}"
        );
    }
    // A whole scope, and ORDER BY the key with a LIMIT: no sort, n rows.
    let plan = explain(&db, "EXPLAIN SELECT name FROM d.u WHERE big > 0").await;
    assert!(
        plan.contains("ScopeScanExec: table=d.u, scan=scope"),
        "{plan}"
    );
    let plan = explain(
        &db,
        "EXPLAIN SELECT id, name FROM d.u WHERE ok ORDER BY id LIMIT 5",
    )
    .await;
    assert!(!plan.contains("SortExec"), "{plan}");
    let plan = explain(
        &db,
        "EXPLAIN SELECT id, name FROM d.u ORDER BY id LIMIT 5 OFFSET 2",
    )
    .await;
    assert!(
        !plan.contains("SortExec") && plan.contains("limit=7"),
        "{plan}"
    );
    // What the scan did: a key the hot tier decides reads no file; a key
    // only a file holds reads the one file whose range holds it (da's
    // scope has two: ids 1-40 and 3-41).
    let plan = explain(
        &db,
        "EXPLAIN ANALYZE SELECT name FROM d.u WHERE id = 9 AND ok IS NOT NULL",
    )
    .await;
    assert!(
        plan.contains("keys_sought=1") && plan.contains("files_read=0"),
        "{plan}"
    );
    let plan = explain(
        &db,
        "EXPLAIN ANALYZE SELECT name FROM d.u WHERE id = 1 AND ok IS NOT NULL",
    )
    .await;
    assert!(
        plan.contains("files_read=1") && plan.contains("files_pruned=1"),
        "{plan}"
    );
    let plan = explain(&db, "EXPLAIN ANALYZE SELECT name FROM d.u WHERE big > 0").await;
    assert!(
        plan.contains("files_read=2") && plan.contains("files_pruned=0"),
        "{plan}"
    );
    db.close().await;
}

/// Kept file metadata and blocks never answer for another file: a table
/// dropped and created again under its name (same scope, same keys, same
/// flush watermarks give or take) reads its own rows, cold, through the
/// direct path and the planner alike, with the cache warm from the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_table_never_reads_the_old_tables_cached_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    create_users(&db, &["da"]).await;
    run(&db, "root", "CREATE NAMESPACE d").await;
    for (round, value) in [(0, "old"), (1, "new")] {
        if round == 1 {
            run(&db, "root", "DROP TABLE d.t").await;
        }
        run(
            &db,
            "root",
            "CREATE USER TABLE d.t (id BIGINT PRIMARY KEY, v TEXT NOT NULL)",
        )
        .await;
        let rows: Vec<String> = (1..=50).map(|i| format!("({i}, '{value}{i}')")).collect();
        run(
            &db,
            "da",
            &format!("INSERT INTO d.t VALUES {}", rows.join(", ")),
        )
        .await;
        db.flush_table("d", "t", Default::default()).await.unwrap();
        for _ in 0..2 {
            for sql in [
                "SELECT v FROM d.t WHERE id = 7",
                "SELECT v FROM d.t WHERE id IN (1, 50)",
            ] {
                assert!(same_both_ways(&db, "da", sql, &[]).await, "{sql}");
                let (_, rows) = outcome(&db, "da", sql, &[]).await.unwrap();
                assert!(
                    rows.iter().flatten().all(|v| v.starts_with(value)),
                    "round {round}: {sql} gave {rows:?}"
                );
            }
        }
    }
    db.close().await;
}
