//! Random statements, from templates with random parts and from keyword
//! soup, run against a real engine as a user and as root: any of them may
//! fail, none may panic, and the engine answers correctly afterwards.

use crate::util::{caller, open, query, run};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const TABLES: &[&str] = &[
    "z.u",
    "z.s",
    "z.nope",
    "system.jobs",
    "system.users",
    "information_schema.columns",
];
const ATOMS: &[&str] = &[
    "1",
    "-1",
    "0",
    "NULL",
    "'x'",
    "''",
    "id",
    "v",
    "$1",
    "1/0",
    "2.5",
    "99999999999999999999",
    "CAST('a' AS INT)",
    "CURRENT_USER()",
    "NOW()",
    "_seq",
    "_deleted",
    "(SELECT MAX(id) FROM z.u)",
    "'2026-01-01'",
    "TRUE",
];
const OPS: &[&str] = &[
    "=", "<", ">=", "+", "-", "*", "/", "%", "||", "AND", "OR", "LIKE", "<>",
];

fn expr() -> impl Strategy<Value = String> {
    let atom = proptest::sample::select(ATOMS).prop_map(String::from);
    atom.prop_recursive(3, 12, 2, |inner| {
        (inner.clone(), proptest::sample::select(OPS), inner)
            .prop_map(|(a, op, b)| format!("({a} {op} {b})"))
    })
}

fn statement() -> impl Strategy<Value = String> {
    let table = proptest::sample::select(TABLES);
    prop_oneof![
        (table.clone(), expr(), expr())
            .prop_map(|(t, e, w)| format!("SELECT {e}, * FROM {t} WHERE {w}")),
        (table.clone(), expr(), expr())
            .prop_map(|(t, a, b)| format!("INSERT INTO {t} VALUES ({a}, {b})")),
        (table.clone(), expr(), expr())
            .prop_map(|(t, e, w)| format!("UPDATE {t} SET v = {e} WHERE {w}")),
        (table.clone(), expr()).prop_map(|(t, w)| format!("DELETE FROM {t} WHERE {w}")),
        (table.clone(), expr()).prop_map(|(t, e)| format!(
            "SELECT COUNT(*), SUM({e}) FROM {t} GROUP BY v ORDER BY 1 LIMIT 3"
        )),
        table.clone().prop_map(|t| format!("FLUSH TABLE {t}")),
        (table, expr()).prop_map(|(t, e)| format!("EXECUTE AS USER 'fz' (SELECT {e} FROM {t})")),
        proptest::collection::vec(
            proptest::sample::select(ATOMS.iter().chain(OPS).copied().collect::<Vec<_>>()),
            0..12
        )
        .prop_map(|w| w.join(" ")),
    ]
}

#[test]
fn random_statements_never_panic_the_engine() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    runtime.block_on(async {
        run(
            &db,
            "root",
            "CREATE NAMESPACE z; CREATE USER TABLE z.u (id INT PRIMARY KEY, v INT); \
             CREATE SHARED TABLE z.s (id INT PRIMARY KEY, v INT); \
             CREATE USER 'fz' WITH PASSWORD 'pw-fuzz' ROLE user",
        )
        .await;
        run(&db, "fz", "INSERT INTO z.u VALUES (1, 1), (2, 2)").await;
        run(&db, "root", "INSERT INTO z.s VALUES (1, 1)").await;
    });
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let executed = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&(statement(), any::<bool>()), |(sql, as_root)| {
            let who = caller(if as_root { "root" } else { "fz" });
            let params = [serde_json::json!(7)];
            let _ = runtime.block_on(db.execute(&sql, &params, Some("z"), &who));
            executed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    assert!(executed.into_inner() >= 400);
    runtime.block_on(async {
        db.wait_for_jobs().await;
        let one = query(&db, "root", "SELECT 1 + 1").await;
        assert_eq!(one, vec![vec!["2".to_string()]]);
        run(&db, "fz", "INSERT INTO z.u VALUES (1000, 1)").await;
        let mine = query(&db, "fz", "SELECT v FROM z.u WHERE id = 1000").await;
        assert_eq!(mine, vec![vec!["1".to_string()]]);
    });
}
