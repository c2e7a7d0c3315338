//! Tab completion: SQL keywords, and the namespaces, tables and columns the
//! server reports (refreshed at start and after DDL).

use crate::client::Client;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

const KEYWORDS: &[&str] = &[
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
    "ALTER",
    "TABLE",
    "NAMESPACE",
    "USER",
    "SHARED",
    "STREAM",
    "STORAGE",
    "STORAGES",
    "SHOW",
    "TABLES",
    "NAMESPACES",
    "DESCRIBE",
    "FLUSH",
    "ALL",
    "KILL",
    "JOB",
    "STATS",
    "FOR",
    "EXECUTE",
    "AS",
    "ORDER",
    "BY",
    "GROUP",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT",
    "INNER",
    "ON",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "LIKE",
    "BETWEEN",
    "DISTINCT",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "PRIMARY",
    "KEY",
    "DEFAULT",
    "IF",
    "EXISTS",
    "CASCADE",
    "WITH",
    "PASSWORD",
    "ROLE",
    "BIGINT",
    "INT",
    "SMALLINT",
    "BOOLEAN",
    "TEXT",
    "VARCHAR",
    "DOUBLE",
    "FLOAT",
    "REAL",
    "DECIMAL",
    "TIMESTAMP",
    "DATE",
    "UUID",
    "BYTEA",
    "JSON",
    "SNOWFLAKE_ID()",
    "NOW()",
    "UUID_V7()",
    "CURRENT_USER()",
    "system.jobs",
    "system.tables",
    "system.namespaces",
    "system.users",
    "system.storages",
];

const META: &[&str] = &[
    "\\help", "\\q", "\\dn", "\\dt", "\\d", "\\health", "\\flush", "\\jobs", "\\timing", "\\watch",
];

#[derive(Clone, Default)]
pub struct KalamHelper {
    names: Arc<Mutex<BTreeSet<String>>>,
}

impl KalamHelper {
    /// Reloads namespaces, tables and columns from the server; failures
    /// leave the previous names (completion is a convenience).
    pub fn refresh(&self, client: &Client) {
        let mut names = BTreeSet::new();
        if let Ok((results, _)) = client.sql(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns",
            None,
        ) {
            for row in results.iter().flat_map(|r| r.rows.iter()) {
                let text = |i: usize| row.get(i).and_then(|v| v.as_str()).unwrap_or("");
                let (ns, table, column) = (text(0), text(1), text(2));
                names.insert(ns.to_string());
                names.insert(table.to_string());
                names.insert(format!("{ns}.{table}"));
                names.insert(column.to_string());
            }
        }
        if let Ok((results, _)) = client.sql("SELECT namespace_id FROM system.namespaces", None) {
            for row in results.iter().flat_map(|r| r.rows.iter()) {
                if let Some(ns) = row.first().and_then(|v| v.as_str()) {
                    names.insert(ns.to_string());
                }
            }
        }
        names.retain(|n| !n.is_empty());
        if !names.is_empty() {
            *self.names.lock().unwrap() = names;
        }
    }

    /// Candidates for the word `prefix`.
    pub fn candidates(&self, prefix: &str, line_start: bool) -> Vec<String> {
        if prefix.is_empty() {
            return Vec::new();
        }
        let lower = prefix.to_ascii_lowercase();
        let matches = |c: &str| c.to_ascii_lowercase().starts_with(&lower) && c != prefix;
        if prefix.starts_with('\\') {
            return META
                .iter()
                .filter(|m| line_start && matches(m))
                .map(|m| m.to_string())
                .collect();
        }
        let mut out: Vec<String> = self
            .names
            .lock()
            .unwrap()
            .iter()
            .filter(|n| matches(n))
            .cloned()
            .collect();
        let lower_case_typed = prefix.chars().any(|c| c.is_ascii_lowercase());
        out.extend(KEYWORDS.iter().filter(|k| matches(k)).map(|k| {
            if lower_case_typed && !k.contains('.') {
                k.to_ascii_lowercase()
            } else {
                k.to_string()
            }
        }));
        out.sort();
        out.dedup();
        out
    }
}

impl Completer for KalamHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        // rustyline's cursor is a byte offset on a character boundary.
        let before = line.get(..pos).unwrap_or(line);
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '\\' | '(' | ')')))
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(0);
        let (head, prefix) = before.split_at(start);
        let line_start = head.trim().is_empty();
        let pairs = self
            .candidates(prefix, line_start)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for KalamHelper {
    type Hint = String;
}

impl Highlighter for KalamHelper {}

impl Validator for KalamHelper {}

impl Helper for KalamHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_names_and_meta_commands() {
        let helper = KalamHelper::default();
        helper.names.lock().unwrap().extend([
            "app".to_string(),
            "app.messages".to_string(),
            "body".to_string(),
        ]);
        assert_eq!(helper.candidates("SEL", false), vec!["SELECT"]);
        assert_eq!(helper.candidates("sel", false), vec!["select"]);
        assert_eq!(helper.candidates("app.", false), vec!["app.messages"]);
        assert!(helper.candidates("bo", false).contains(&"body".to_string()));
        assert_eq!(helper.candidates("\\fl", true), vec!["\\flush"]);
        assert!(helper.candidates("\\fl", false).is_empty());
    }
}
