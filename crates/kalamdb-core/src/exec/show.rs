//! SHOW and DESCRIBE, answered by queries over the built-in tables.

use super::query::run_query;
use super::{Session, StatementResult};
use crate::error::{CoreError, Result};
use kalamdb_sql::{KalamStatement, TableRef};

/// Quotes a value as an SQL string literal.
pub fn sql_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

impl Session<'_> {
    /// Runs SQL that KalamDB wrote itself, without the request's parameters.
    pub(super) async fn internal_query(&self, sql: &str) -> Result<StatementResult> {
        let KalamStatement::Standard(statement) = kalamdb_sql::parse_statement(sql)? else {
            return Err(CoreError::Internal(format!("not a query: {sql}")));
        };
        let session = self.without_params();
        run_query(&session, &statement, None, false).await
    }
}

pub async fn show_namespaces(s: &Session<'_>) -> Result<StatementResult> {
    s.internal_query(
        "SELECT namespace_id, table_count, created_at FROM system.namespaces ORDER BY namespace_id",
    )
    .await
}

pub async fn show_tables(s: &Session<'_>, namespace: Option<&str>) -> Result<StatementResult> {
    let filter = match namespace {
        Some(ns) => {
            if s.services.catalog.namespace(ns).is_none() {
                return Err(CoreError::NamespaceNotFound(ns.to_string()));
            }
            format!("WHERE namespace_id = {}", sql_string(ns))
        }
        None => String::new(),
    };
    s.internal_query(&format!(
        "SELECT namespace_id, table_name, table_type, storage_id, flush_policy, created_at \
         FROM system.tables {filter} ORDER BY namespace_id, table_name"
    ))
    .await
}

pub async fn describe_table(s: &Session<'_>, table: &TableRef) -> Result<StatementResult> {
    let def = s.resolve_table(table)?;
    s.internal_query(&format!(
        "SELECT column_name, data_type, is_nullable, column_default, is_primary_key \
         FROM information_schema.columns WHERE table_schema = {} AND table_name = {} \
         ORDER BY ordinal_position",
        sql_string(def.namespace.as_str()),
        sql_string(def.name.as_str())
    ))
    .await
}
