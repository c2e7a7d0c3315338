//! Turning rows into new versions in the hot tier.

use super::Session;
use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use crate::provider::{scope_key_for, RequestScope};
use kalamdb_commons::Value;
use kalamdb_store::{RowVersion, ScopeKey};
use std::collections::HashSet;

/// How a value reads in an error message.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::I16(v) => v.to_string(),
        Value::I32(v) => v.to_string(),
        Value::I64(v) | Value::Timestamp(v) => v.to_string(),
        Value::F32(v) => v.to_string(),
        Value::F64(v) => v.to_string(),
        Value::Decimal(v) => v.to_string(),
        Value::Text(s) => format!("'{}'", s.chars().take(64).collect::<String>()),
        Value::Bytes(b) => format!("<{} bytes>", b.len()),
        Value::Date(d) => d.to_string(),
    }
}

impl Session<'_> {
    /// The scope this caller writes in `def`.
    pub(super) fn write_scope(&self, def: &TableDef) -> Result<ScopeKey> {
        scope_key_for(
            def,
            &RequestScope {
                caller: self.caller.clone(),
                system_columns: false,
            },
        )
    }
}

/// Inserts rows whose primary keys must not exist yet, atomically: either
/// every row is written or none is.
pub async fn write_new_rows(s: &Session<'_>, def: &TableDef, rows: Vec<Vec<Value>>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let scope = s.write_scope(def)?;
    let pk = def.pk_index();
    let store = &s.ctx.store;
    let _guard = s.ctx.lock_scope(&scope).await;
    let mut seen = HashSet::with_capacity(rows.len());
    let duplicate = |key: &Value| {
        CoreError::AlreadyExists(format!(
            "duplicate primary key: {} = {} already exists in '{}'",
            def.primary_key,
            display_value(key),
            def.qualified_name()
        ))
    };
    for row in &rows {
        if !seen.insert(scope.pk_prefix(&row[pk])?) {
            return Err(duplicate(&row[pk]));
        }
    }
    let keys: Vec<&Value> = rows.iter().map(|row| &row[pk]).collect();
    for (key, latest) in keys.iter().zip(store.latest_versions(&scope, &keys)?) {
        if latest.is_some_and(|(_, version)| !version.deleted) {
            return Err(duplicate(key));
        }
    }
    let first_seq = store.next_seqs(rows.len() as u64)?;
    let mut batch = store.batch();
    for (i, values) in rows.into_iter().enumerate() {
        let version = RowVersion {
            deleted: false,
            schema_version: def.schema_version,
            values,
        };
        batch.put_version(&scope, &version.values[pk], first_seq + i as u64, &version)?;
    }
    store.write(batch)?;
    Ok(())
}

/// Writes new versions (updates or tombstones) of rows the caller already
/// read under the scope lock.
pub fn write_versions(
    s: &Session<'_>,
    def: &TableDef,
    scope: &ScopeKey,
    versions: Vec<RowVersion>,
) -> Result<()> {
    if versions.is_empty() {
        return Ok(());
    }
    let pk = def.pk_index();
    let store = &s.ctx.store;
    let first_seq = store.next_seqs(versions.len() as u64)?;
    let mut batch = store.batch();
    for (i, version) in versions.iter().enumerate() {
        batch.put_version(scope, &version.values[pk], first_seq + i as u64, version)?;
    }
    store.write(batch)?;
    Ok(())
}
