//! Property tests of the SQL front end: no input, however broken, makes
//! splitting or parsing panic; literal INSERTs read by the fast path mean
//! what the full parser would read.

use crate::{parse_batch, parse_statement, KalamStatement, Literal};
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "INSERT",
    "INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "CREATE",
    "DROP",
    "TABLE",
    "USER",
    "SHARED",
    "NAMESPACE",
    "STORAGE",
    "FLUSH",
    "ALL",
    "KILL",
    "JOB",
    "EXECUTE",
    "AS",
    "SHOW",
    "STATS",
    "FOR",
    "WITH",
    "PRIMARY",
    "KEY",
    "DEFAULT",
    "IF",
    "EXISTS",
    "NOT",
    "NULL",
    "AND",
    "OR",
    "(",
    ")",
    ",",
    ";",
    "'",
    "\"",
    "$1",
    "--",
    "/*",
    "*/",
    "=",
    "*",
    ".",
    "1",
    "-2.5e9",
    "'x''y'",
    "ns.t",
    "CURRENT_USER()",
    "SNOWFLAKE_ID()",
    "TYPE",
    "'s3'",
];

fn soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(WORDS), 0..40).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_batch(&text);
    }

    #[test]
    fn keyword_soup_never_panics(text in soup()) {
        let _ = parse_batch(&text);
    }

    #[test]
    fn literal_inserts_keep_their_values(rows in proptest::collection::vec(
        (any::<i64>(), "[a-z' ]{0,12}", any::<bool>()), 1..6)) {
        let values: Vec<String> = rows
            .iter()
            .map(|(n, s, b)| format!("({n}, '{}', {b}, NULL)", s.replace('\'', "''")))
            .collect();
        let sql = format!("INSERT INTO ns.t (a, b, c, d) VALUES {}", values.join(", "));
        let KalamStatement::FastInsert(insert) = parse_statement(&sql).unwrap() else {
            panic!("not read by the fast path: {sql}");
        };
        prop_assert_eq!(insert.columns, vec!["a", "b", "c", "d"]);
        for (row, (n, s, b)) in insert.rows.iter().zip(&rows) {
            prop_assert_eq!(&row[0], &Literal::Number(n.to_string()));
            prop_assert_eq!(&row[1], &Literal::Str(s.clone()));
            prop_assert_eq!(&row[2], &Literal::Bool(*b));
            prop_assert_eq!(&row[3], &Literal::Null);
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash(depth in 60usize..400) {
        let sql = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let result = parse_batch(&sql);
        if depth > 70 {
            prop_assert!(result.is_err());
        }
    }
}
