//! UPDATE and DELETE with any WHERE.
//!
//! Both run as a query over the table as the caller sees it (so a USER
//! table yields only the caller's rows, whatever the WHERE says), under the
//! scope's write lock, and then write one new version per matched row: the
//! new values for UPDATE, a tombstone for DELETE. The query is built from
//! the statement's own syntax tree, never printed and parsed again (not
//! every expression survives that round trip).

use super::query::{collect_changes, plan_changes, select_statement, PlannedQuery};
use super::write::{write_versions, Replacement};
use super::{Session, StatementResult};
use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use crate::values::{cast_to_column, validate_value, value_at};
use datafusion::arrow::array::ArrayRef;
use kalamdb_commons::Value;
use kalamdb_sql::sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, Ident, ObjectName, SelectItem, TableFactor,
    TableWithJoins, Update,
};
use kalamdb_store::{RowVersion, ScopeKey};
use std::sync::Arc;

/// A column by its exact (stored) name.
fn column_ref(name: &str) -> Expr {
    Expr::Identifier(Ident::with_quote('"', name))
}

/// The single table an UPDATE or DELETE targets, as the FROM of the query
/// that finds its rows: named in full, with the statement's alias.
fn single_table(
    s: &Session<'_>,
    table: &TableWithJoins,
) -> Result<(Arc<TableDef>, TableWithJoins)> {
    if !table.joins.is_empty() {
        return Err(CoreError::exec(
            "UPDATE/DELETE with JOIN is not supported; use a subquery in WHERE",
        ));
    }
    let TableFactor::Table { name, .. } = &table.relation else {
        return Err(CoreError::exec("UPDATE/DELETE needs a table name"));
    };
    let def = s.resolve_object_name(name)?;
    s.check_write(&def)?;
    let mut from = table.clone();
    if let TableFactor::Table { name, .. } = &mut from.relation {
        *name = ObjectName::from(vec![
            Ident::with_quote('"', def.namespace.as_str()),
            Ident::with_quote('"', def.name.as_str()),
        ]);
    }
    Ok((def, from))
}

/// Plans `SELECT <projection> FROM <table> [WHERE ...]` as the caller:
/// before the scope's lock is taken, as a plan reads no rows.
async fn plan_matches<'s>(
    s: &'s Session<'_>,
    def: &TableDef,
    from: TableWithJoins,
    projection: Vec<SelectItem>,
    selection: Option<&Expr>,
    text: Option<&Arc<str>>,
) -> Result<PlannedQuery<'s>> {
    let statement = select_statement(projection, Some(from), selection.cloned());
    plan_changes(s, statement, text, def.schema_version).await
}

/// The scope's write lock and the table's schema gate, held from reading
/// the rows to change to writing their new versions.
async fn lock_and_gate<'s>(
    s: &'s Session<'_>,
    def: &'s TableDef,
    scope: &ScopeKey,
) -> Result<(
    tokio::sync::MutexGuard<'s, ()>,
    tokio::sync::RwLockReadGuard<'s, ()>,
)> {
    let guard = s.services.hot.lock_scope(scope).await;
    let schema = super::write::current_schema(def).await?;
    Ok((guard, schema))
}

/// `text`: the statement's, when the statement cache keeps it.
pub async fn update(
    s: &Session<'_>,
    update: &Update,
    text: Option<&Arc<str>>,
) -> Result<StatementResult> {
    if update.from.is_some()
        || update.returning.is_some()
        || update.limit.is_some()
        || !update.order_by.is_empty()
    {
        return Err(CoreError::exec(
            "UPDATE ... FROM/RETURNING/ORDER BY/LIMIT is not supported",
        ));
    }
    let (def, from) = single_table(s, &update.table)?;
    let mut assigned: Vec<Option<&Expr>> = vec![None; def.columns.len()];
    for assignment in &update.assignments {
        let AssignmentTarget::ColumnName(name) = &assignment.target else {
            return Err(CoreError::exec("tuple assignments are not supported"));
        };
        let column = name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(kalamdb_sql::normalize_ident)
            .ok_or_else(|| CoreError::exec(format!("invalid column {name}")))?;
        let index = def.column_index(&column).ok_or_else(|| {
            CoreError::exec(format!(
                "column '{column}' does not exist in table '{}'",
                def.qualified_name()
            ))
        })?;
        if column == def.primary_key {
            return Err(CoreError::exec(format!(
                "primary key column '{column}' cannot be updated; delete and insert instead"
            )));
        }
        if assigned[index].replace(&assignment.value).is_some() {
            return Err(CoreError::exec(format!(
                "column '{column}' is assigned twice"
            )));
        }
    }
    let projection = def
        .columns
        .iter()
        .zip(&assigned)
        .map(|(c, a)| match a {
            Some(expr) => SelectItem::ExprWithAlias {
                expr: Expr::Nested(Box::new((*expr).clone())),
                alias: Ident::with_quote('"', c.name.as_str()),
            },
            None => SelectItem::UnnamedExpr(column_ref(&c.name)),
        })
        // Then the row as it was: the change's old values.
        .chain(
            def.columns
                .iter()
                .enumerate()
                .map(|(i, c)| SelectItem::ExprWithAlias {
                    expr: column_ref(&c.name),
                    alias: Ident::new(format!("__kalam_old_{i}")),
                }),
        )
        .chain(std::iter::once(SelectItem::UnnamedExpr(column_ref(
            crate::schema::SEQ_COLUMN,
        ))))
        .collect();

    let scope = s.write_scope(&def)?;
    let planned = plan_matches(s, &def, from, projection, update.selection.as_ref(), text)
        .await
        .map_err(|e| super::write::overtaken(&def, e))?;
    // In a transaction the rows are kept until COMMIT, which checks them.
    let _locks = match &s.txn {
        None => Some(lock_and_gate(s, &def, &scope).await?),
        Some(_) => None,
    };
    let batches = collect_changes(s, planned).await?;
    let mut replacements = Vec::new();
    for batch in batches {
        let mut columns = Vec::with_capacity(def.columns.len());
        for (array, column) in batch.columns().iter().zip(&def.columns) {
            columns.push(
                cast_to_column(array, column.data_type)
                    .map_err(|e| CoreError::exec(format!("column '{}': {e}", column.name)))?,
            );
        }
        let old = old_rows(
            &def,
            batch.columns().get(def.columns.len()..).unwrap_or(&[]),
        )?;
        for (r, (old, old_seq)) in old.into_iter().enumerate() {
            let mut values = Vec::with_capacity(def.columns.len());
            for (array, column) in columns.iter().zip(&def.columns) {
                let value = validate_value(
                    value_at(array, r, column.data_type)?,
                    column.data_type,
                    &column.name,
                )?;
                if value.is_null() && !column.nullable {
                    return Err(CoreError::exec(format!(
                        "NULL value in column '{}' violates its NOT NULL constraint",
                        column.name
                    )));
                }
                values.push(value);
            }
            replacements.push(Replacement {
                new: RowVersion {
                    deleted: false,
                    schema_version: def.schema_version,
                    values,
                },
                old,
                old_seq,
            });
        }
    }
    let count = replacements.len();
    match &s.txn {
        Some(txn) => txn.replace(&def, &scope, replacements)?,
        None => write_versions(s, &def, &scope, replacements)?,
    }
    Ok(StatementResult::affected(&s.caller, count, "Updated"))
}

/// The rows as a query read them (one array per column of `def`, then
/// `_seq`), as the versions they were.
fn old_rows(def: &TableDef, arrays: &[ArrayRef]) -> Result<Vec<(RowVersion, u64)>> {
    if arrays.len() != def.columns.len() + 1 {
        // A plan of another schema version: never used by design (plans of
        // row changes are kept by schema version), refused if it were.
        return Err(CoreError::SchemaChanged(def.qualified_name()));
    }
    let rows = arrays.first().map_or(0, |a| a.len());
    let mut columns = Vec::with_capacity(arrays.len());
    for (array, column) in arrays.iter().zip(&def.columns) {
        columns.push(cast_to_column(array, column.data_type)?);
    }
    let seqs = cast_to_column(
        &arrays[def.columns.len()],
        kalamdb_commons::KalamType::BigInt,
    )?;
    (0..rows)
        .map(|r| {
            let values = columns
                .iter()
                .zip(&def.columns)
                .map(|(array, column)| value_at(array, r, column.data_type))
                .collect::<Result<Vec<_>>>()?;
            let seq = match value_at(&seqs, r, kalamdb_commons::KalamType::BigInt)? {
                Value::I64(seq) => seq as u64,
                _ => 0,
            };
            Ok((
                RowVersion {
                    deleted: false,
                    schema_version: def.schema_version,
                    values,
                },
                seq,
            ))
        })
        .collect()
}

/// `text` as for [`update`].
pub async fn delete(
    s: &Session<'_>,
    delete: &Delete,
    text: Option<&Arc<str>>,
) -> Result<StatementResult> {
    if delete.using.is_some()
        || delete.returning.is_some()
        || delete.limit.is_some()
        || !delete.order_by.is_empty()
        || !delete.tables.is_empty()
    {
        return Err(CoreError::exec(
            "DELETE ... USING/RETURNING/ORDER BY/LIMIT is not supported",
        ));
    }
    let tables = match &delete.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let [table] = tables.as_slice() else {
        return Err(CoreError::exec("DELETE needs exactly one table"));
    };
    let (def, from) = single_table(s, table)?;

    let scope = s.write_scope(&def)?;
    // Whole rows: each delete carries the row it removed.
    let planned = plan_matches(
        s,
        &def,
        from,
        def.columns
            .iter()
            .map(|c| c.name.as_str())
            .chain([crate::schema::SEQ_COLUMN])
            .map(|name| SelectItem::UnnamedExpr(column_ref(name)))
            .collect(),
        delete.selection.as_ref(),
        text,
    )
    .await
    .map_err(|e| super::write::overtaken(&def, e))?;
    let _locks = match &s.txn {
        None => Some(lock_and_gate(s, &def, &scope).await?),
        Some(_) => None,
    };
    let batches = collect_changes(s, planned).await?;
    let mut replacements = Vec::new();
    for batch in batches {
        for (old, old_seq) in old_rows(&def, batch.columns())? {
            // The tombstone keeps the row as it was: `WHERE _deleted = true`
            // reads deleted rows back, as KalamDB's soft delete does.
            replacements.push(Replacement {
                new: RowVersion {
                    deleted: true,
                    schema_version: def.schema_version,
                    values: old.values.clone(),
                },
                old,
                old_seq,
            });
        }
    }
    let count = replacements.len();
    match &s.txn {
        Some(txn) => txn.replace(&def, &scope, replacements)?,
        None => write_versions(s, &def, &scope, replacements)?,
    }
    Ok(StatementResult::affected(&s.caller, count, "Deleted"))
}
