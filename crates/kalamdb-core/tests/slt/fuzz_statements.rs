//! Random statements, from templates with random parts and from keyword
//! soup, run against a real engine as a user and as root: any of them may
//! fail, none may panic, and the engine answers correctly afterwards. The
//! templates include what takes servers down: long flat operator chains
//! (deep trees from a loop in the parser) and functions asked to build
//! huge values; the process's peak memory stays bounded.

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

/// Operators that chain without parentheses into left-deep trees.
const CHAIN_OPS: &[&str] = &["+", "-", "*", " || ", " OR ", " AND ", "::INT::"];

/// Calls that would build values as large as their argument asks.
const HUNGRY: &[&str] = &[
    "SELECT repeat('ab', N)",
    "SELECT length(lpad('x', N))",
    "SELECT rpad('x', N, 'yz')",
    "SELECT range(1, N)",
    "SELECT cardinality(array_repeat(1, N))",
    "SELECT array_resize(make_array(1), N)",
    "SELECT replace(repeat('a', 1000), 'a', repeat('b', N))",
    "SELECT * FROM unnest(range(1, N)) a CROSS JOIN unnest(range(1, 3000)) b",
    "SELECT id, repeat(CAST(v AS TEXT), N) FROM z.u",
];

fn chain() -> impl Strategy<Value = String> {
    (proptest::sample::select(CHAIN_OPS), 100usize..6000).prop_map(|(op, n)| {
        if op == "::INT::" {
            format!("SELECT 1::{}", vec!["INT"; n].join("::"))
        } else if op.trim() == "OR" || op.trim() == "AND" {
            let terms: Vec<String> = (0..n).map(|i| format!("id = {i}")).collect();
            format!("SELECT * FROM z.u WHERE {}", terms.join(op))
        } else {
            format!("SELECT {}", vec!["1"; n].join(op))
        }
    })
}

fn hungry() -> impl Strategy<Value = String> {
    (proptest::sample::select(HUNGRY), 0u32..32).prop_map(|(template, bits)| {
        let n: u64 = 1u64 << bits;
        template.replace('N', &n.to_string())
    })
}

/// The process's peak resident memory so far, in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn statement() -> impl Strategy<Value = String> {
    let table = proptest::sample::select(TABLES);
    prop_oneof![
        chain(),
        hungry(),
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
    // `block_on` runs statements on this thread: give it the stack the
    // server's query threads have.
    std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(fuzz_statements)
        .unwrap()
        .join()
        .unwrap();
}

fn fuzz_statements() {
    // As the server's query runtime: statements may recurse up to the
    // parser's depth bound, which needs more than the default 2 MiB stack
    // in debug builds.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(32 * 1024 * 1024)
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
    let peak_before = peak_kib();
    runner
        .run(&(statement(), any::<bool>()), |(sql, as_root)| {
            if std::env::var_os("FUZZ_TRACE").is_some() {
                eprintln!("FUZZ {}", sql.chars().take(1500).collect::<String>());
            }
            let who = caller(if as_root { "root" } else { "fz" });
            let params = [serde_json::json!(7)];
            let _ = runtime.block_on(db.execute(&sql, &params, Some("z"), &who));
            executed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    assert!(executed.into_inner() >= 400);
    // Other tests share the process, so the bound is loose; without the
    // limits one `repeat` or `range` alone would take gigabytes.
    let grown = peak_kib().saturating_sub(peak_before);
    assert!(grown < 1_500_000, "peak memory grew by {grown} KiB");
    runtime.block_on(async {
        db.wait_for_jobs().await;
        let one = query(&db, "root", "SELECT 1 + 1").await;
        assert_eq!(one, vec![vec!["2".to_string()]]);
        run(&db, "fz", "INSERT INTO z.u VALUES (1000, 1)").await;
        let mine = query(&db, "fz", "SELECT v FROM z.u WHERE id = 1000").await;
        assert_eq!(mine, vec![vec!["1".to_string()]]);
    });
}
