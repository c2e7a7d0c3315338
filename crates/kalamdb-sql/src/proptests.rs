//! Property tests of the SQL front end: no input, however broken, makes
//! splitting or parsing panic; literal INSERTs read by the fast path mean
//! what the full parser would read.

use crate::{parse_batch, parse_statement, KalamStatement, Literal};
use proptest::prelude::*;

/// Fragments from which the scanner's differential test builds INSERTs:
/// valid parts, near misses and things only the tokenizer knows.
const SCAN_PIECES: &[&str] = &[
    "INSERT INTO t VALUES (",
    "insert into Ns.\"T\" (a, \"B\") values (",
    "(",
    ")",
    ", ",
    ",",
    "), (",
    ");",
    "; ",
    " ",
    "\n",
    "\t",
    "1",
    "-1",
    "- 1",
    "2.5",
    "1e5",
    "1E-3",
    "1.",
    ".5",
    "1L",
    "0x1f",
    "1_000",
    "'x'",
    "'it''s'",
    "''",
    "'a\\'",
    "'é'",
    "'",
    "$1",
    "$a",
    "NULL",
    "true",
    "False",
    "nul",
    "NULLx",
    "E'x'",
    "N'y'",
    "-- c\n",
    "/* c */",
    "@",
    "#",
    "\"q\"",
    "\"\"",
    "ä",
    "DEFAULT",
    "now()",
    "+",
    "--",
    ".",
    "x",
];

/// Values, nearly all of which the scanner reads.
const SCAN_VALUES: &[&str] = &[
    "1",
    "-1",
    "0",
    "007",
    "-2.5",
    "1e5",
    "1E-3",
    "-4.25e+10",
    "99999999999999999999999",
    "'x'",
    "'it''s'",
    "''",
    "''''",
    "'é ü'",
    "'a;b'",
    "' -- no comment'",
    "'/* */'",
    "$1",
    "$12",
    "NULL",
    "null",
    "true",
    "FALSE",
    "1.",
];

const SCAN_BLANKS: &[&str] = &["", " ", "\n", "\r\n\t"];

fn check_scan_agrees(sql: &str) -> Result<(), TestCaseError> {
    let Some(scanned) = crate::fast_scan::scan_batch(sql) else {
        return Ok(());
    };
    let parts = crate::split_statements(sql).map_err(|e| {
        TestCaseError::fail(format!("{sql:?}: scanned, but the tokenizer failed: {e}"))
    })?;
    prop_assert_eq!(parts.len(), scanned.len(), "{:?}", sql);
    for (tokens, insert) in parts.iter().zip(&scanned) {
        let read = crate::fast_insert::read(tokens);
        prop_assert_eq!(read.as_ref(), Some(insert), "{:?}", sql);
    }
    Ok(())
}

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
        prop_assert_eq!(&insert.columns, &vec!["a", "b", "c", "d"]);
        for (row, (n, s, b)) in insert.rows().zip(&rows) {
            let row: Vec<Literal> = row.literals().collect();
            let n = n.to_string();
            prop_assert_eq!(&row[0], &Literal::Number(&n));
            prop_assert_eq!(&row[1], &Literal::Str(s.as_str().into()));
            prop_assert_eq!(&row[2], &Literal::Bool(*b));
            prop_assert_eq!(&row[3], &Literal::Null);
        }
    }

    /// The text scanner reads a batch exactly as the tokenizer and the token
    /// reader would, or declines it.
    #[test]
    fn text_scanner_agrees_with_the_tokenizer(pieces in proptest::collection::vec(
        proptest::sample::select(SCAN_PIECES), 0..40)) {
        let sql = format!("INSERT INTO t VALUES ({}", pieces.concat());
        check_scan_agrees(&sql)?;
        let sql = pieces.concat();
        check_scan_agrees(&sql)?;
    }

    /// As above, with well-formed statements of odd values, so most of them
    /// are scanned rather than declined.
    #[test]
    fn text_scanner_reads_values_as_the_tokenizer_does(rows in proptest::collection::vec(
        proptest::collection::vec(
            (proptest::sample::select(SCAN_VALUES), proptest::sample::select(SCAN_BLANKS)),
            1..5),
        1..4), statements in 1usize..3) {
        let values: Vec<String> = rows
            .iter()
            .map(|row| {
                let row: Vec<String> = row.iter().map(|(v, b)| format!("{b}{v}{b}")).collect();
                format!("({})", row.join(","))
            })
            .collect();
        let one = format!("INSERT INTO ns.t (a) VALUES {}", values.join(", "));
        let sql = vec![one; statements].join(";\n");
        check_scan_agrees(&sql)?;
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
