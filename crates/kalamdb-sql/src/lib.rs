//! KalamDB's SQL front end.
//!
//! Splits a request's SQL into statements with a real tokenizer (a `;` inside
//! a string literal or comment is not a separator) and parses each one into a
//! typed [`KalamStatement`]: KalamDB's own statements (namespaces, tables with
//! flush policies, users, ...) are parsed here on top of `sqlparser`; standard
//! SELECT/INSERT/UPDATE/DELETE are handed on as `sqlparser` ASTs. This crate
//! decides what a statement means, never how it runs.

mod alter;
mod backup;
mod depth;
mod error;
mod execute_as;
mod export;
mod fast_insert;
mod fast_scan;
mod flush;
mod job;
mod json_ops;
mod live;
mod namespace;
mod parse;
#[cfg(test)]
mod proptests;
mod split;
mod statement;
mod storage;
mod table;
mod transaction;
mod types;
mod user;

pub use depth::MAX_EXPRESSION_DEPTH;
pub use error::ParseError;
pub use fast_insert::{FastInsert, Literal, Row as FastInsertRow};
pub use fast_scan::scan_batch as scan_literal_inserts;
pub use parse::{
    normalize as normalize_ident, parse_batch, parse_batch_tokenized, parse_expr, parse_statement,
    table_ref as table_ref_of,
};
pub use split::split_statements;
pub use sqlparser;
pub use statement::{
    AccessLevel, AlterTable, ColumnDefault, ColumnSpec, CreateTable, KalamStatement, LiveOptions,
    TableChange, TableOptions, TableRef, UserChange,
};
pub use storage::StorageOptions;
pub use types::kalam_type_of;

/// The dialect KalamDB parses with.
pub fn dialect() -> sqlparser::dialect::GenericDialect {
    sqlparser::dialect::GenericDialect {}
}

/// Deepest expression nesting accepted; deeper input is an error, never a
/// stack overflow.
pub const RECURSION_LIMIT: usize = 64;
